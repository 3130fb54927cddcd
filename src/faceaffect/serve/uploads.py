"""Uploads, streamed to disk as they arrive (never held whole in memory), with a size limit, and identified
by their content: an image, a video, or neither.

The client's file name is kept only to show and label results; files are stored under names of our own.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from faceaffect.core.errors import InputError, LimitError
from faceaffect.images import IMAGE_SUFFIXES, image_header, load_image
from faceaffect.serve.errors import NoSpace, RequestError, TooLarge, UnsupportedMedia, UploadStalled
from faceaffect.video.decode import SourceKind, VideoReader
from faceaffect.video.sources import VIDEO_SUFFIXES

FILE_FIELD = "file"
MAX_FIELD_BYTES = 64 * 1024  # a form field other than the file (options, outputs)
MAX_FIELDS = 8
VIDEO_SUFFIX = ".video"  # stored videos: the decoder reads the container from the content


@dataclass
class Upload:
    """An upload on disk: ``path`` (our name), the client's ``name`` (display only), its declared content
    type, the other form fields, and its size in bytes."""

    path: Path
    name: str = "upload"
    declared_type: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    size: int = 0

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix.lower()

    def claims_media(self) -> bool:
        """Whether the client says it is an image or a video (by content type or file name)."""
        media_suffix = self.suffix in IMAGE_SUFFIXES + VIDEO_SUFFIXES
        return media_suffix or self.declared_type.startswith(("image/", "video/"))


def display_name(raw: str) -> str:
    """The last part of a client's file name, without control characters, at most 200 characters."""
    name = re.split(r"[/\\]", raw)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()[:200]
    return name if name.strip(".") else "upload"


class _Form:
    """The callbacks of python-multipart's streaming parser: the file part goes to ``out``, the other
    parts (small) to ``fields``."""

    def __init__(self, upload: Upload, out: BinaryIO, max_bytes: int) -> None:
        self.upload, self.out, self.max_bytes = upload, out, max_bytes
        self.headers: dict[str, str] = {}
        self.header_name = self.header_value = b""
        self.part: str | None = None
        self.is_file = self.ended = self.seen_file = False
        self.value = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in dir(self) if name.startswith("on_")}

    def on_part_begin(self) -> None:
        self.headers, self.value = {}, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        name = self.header_name.decode("latin-1").lower()
        self.headers[name] = self.header_value.decode("utf-8", "replace")
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self.headers.get("content-disposition", ""))
        self.part = options.get(b"name", b"").decode("utf-8", "replace")
        self.is_file = self.part == FILE_FIELD
        if self.is_file:
            if self.seen_file:
                raise RequestError(f"send one file (form field {FILE_FIELD!r})")
            self.seen_file = True
            self.upload.name = display_name(options.get(b"filename", b"").decode("utf-8", "replace"))
            self.upload.declared_type = self.headers.get("content-type", "").strip().lower()
        elif len(self.upload.fields) >= MAX_FIELDS:
            raise RequestError(f"too many form fields (at most {MAX_FIELDS})")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.is_file:
            self.upload.size += end - start
            if self.upload.size > self.max_bytes:
                raise TooLarge(f"the upload is larger than the limit of {_megabytes(self.max_bytes)}")
            self.out.write(data[start:end])
            return
        self.value += data[start:end]
        if len(self.value) > MAX_FIELD_BYTES:
            raise TooLarge(f"form field {self.part!r} is larger than {MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        if not self.is_file and self.part:
            self.upload.fields[self.part] = self.value.decode("utf-8", "replace")

    def on_end(self) -> None:
        self.ended = True


async def receive(
    content_type: str,
    content_length: str | None,
    body: AsyncIterator[bytes],
    folder: Path,
    max_bytes: int,
    idle_seconds: float,
) -> Upload:
    """Stream a multipart/form-data body (the file in field ``file``) into a new file in ``folder``.

    Refused before reading: no multipart body (415), a declared length over the limit (413). While reading:
    more than ``max_bytes`` of file (413), nothing sent for ``idle_seconds`` (408). The file is removed on
    any failure.
    """
    from python_multipart import MultipartParser
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import parse_options_header

    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UnsupportedMedia(f"send the file as multipart/form-data, in form field {FILE_FIELD!r}")
    allowed = max_bytes + MAX_FIELDS * MAX_FIELD_BYTES + 64 * 1024  # the file, the fields, the part headers
    if content_length and content_length.isdigit() and int(content_length) > allowed:
        raise TooLarge(f"the upload is larger than the limit of {_megabytes(max_bytes)}")
    folder.mkdir(parents=True, exist_ok=True)
    upload = Upload(folder / f"{secrets.token_hex(16)}.part")
    try:
        with open(upload.path, "xb") as out:
            form = _Form(upload, out, max_bytes)
            parser = MultipartParser(boundary, form.callbacks(), max_size=allowed)  # type: ignore[arg-type]
            async for chunk in _within(body, idle_seconds):
                parser.write(chunk)
            parser.finalize()
        if not form.ended:
            raise RequestError("the multipart body ended early")
        if not form.seen_file:
            raise RequestError(f"no file: send it in form field {FILE_FIELD!r}")
        if upload.size == 0:
            raise RequestError("the uploaded file is empty")
        return upload
    except FormParserError as error:
        upload.path.unlink(missing_ok=True)
        raise RequestError(f"malformed multipart body: {error}") from None
    except OSError as error:
        upload.path.unlink(missing_ok=True)
        raise NoSpace(f"cannot store the upload: {error.strerror or error}") from None
    except BaseException:
        upload.path.unlink(missing_ok=True)
        raise


async def _within(body: AsyncIterator[bytes], idle_seconds: float) -> AsyncIterator[bytes]:
    """The chunks of ``body``; UploadStalled when the next one takes more than ``idle_seconds``."""
    while True:
        try:
            chunk = await asyncio.wait_for(anext(body), idle_seconds)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UploadStalled(f"the upload sent nothing for {idle_seconds:g} s") from None
        yield chunk


def identify(upload: Upload, *, decode: bool = False) -> tuple[SourceKind, str]:
    """(image or video, the suffix to store it under) from the file's content, within the library's limits
    (pixels of an image or of a video's frames: 413); ``decode``: decode an image whole now (refused now
    rather than in a job). The client's name and type only decide whether a file that cannot be read is a
    broken image or video (422) or something else (415)."""
    try:
        image_format, _, _ = image_header(upload.path)
    except LimitError as error:
        raise _renamed(error, upload) from None
    except InputError as not_an_image:
        return SourceKind.VIDEO, _check_video(upload, not_an_image)
    if image_format not in _IMAGE_FORMATS:  # e.g. a GIF: the decoder reads it as a video
        return SourceKind.VIDEO, _check_video(upload, None)
    if decode:
        try:
            load_image(upload.path)
        except InputError as error:
            raise _renamed(error, upload) from None
    return SourceKind.IMAGE, _IMAGE_FORMATS[image_format]


def _check_video(upload: Upload, image_error: InputError | None) -> str:
    try:
        VideoReader.open(upload.path).close()
    except InputError as error:
        if isinstance(error, LimitError) or upload.claims_media():
            claims_image = upload.declared_type.startswith("image/") or upload.suffix in IMAGE_SUFFIXES
            raise _renamed(image_error if claims_image and image_error else error, upload) from None
        kinds = ", ".join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        raise UnsupportedMedia(f"{upload.name} is neither an image nor a video ({kinds})") from None
    return VIDEO_SUFFIX


def _renamed(error: InputError, upload: Upload) -> InputError:
    """The library's error about the stored file, naming the upload as the client did."""
    return type(error)(str(error).replace(str(upload.path), upload.name))


def _image_formats() -> dict[str, str]:
    """Pillow's format name -> our suffix for it, for the image suffixes faceaffect reads."""
    Image.init()
    formats = {"MPO": ".jpg"}  # camera JPEGs with several pictures
    for suffix in IMAGE_SUFFIXES:
        formats.setdefault(Image.registered_extensions()[suffix], suffix)
    return formats


_IMAGE_FORMATS = _image_formats()


def _megabytes(size: int) -> str:
    return f"{round(size / 1024 / 1024, 3):g} MB"
