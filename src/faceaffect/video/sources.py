"""Every input of ``faceaffect analyze`` as a stream of frames: an image, a folder of images, a video file,
a webcam (by index), a network stream (by URL), or an image in memory (an RGB array or a PIL image).

>>> source = open_source("photos/")  # doctest: +SKIP
>>> source.kind, [frame.source for frame in source]  # doctest: +SKIP
('images', ['photos/a.jpg', 'photos/b.png'])
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from faceaffect.core.errors import InputError
from faceaffect.images import IMAGE_SUFFIXES, ImageLike, expand_images, load_image, to_rgb_array
from faceaffect.video.decode import (
    DecodedFrame,
    InputFailure,
    Sampling,
    SourceKind,
    StartAfter,
    StreamTimeouts,
    VideoReader,
)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")


class Source(Protocol):
    """Frames from one input. ``kind`` is ``image``, ``images``, ``video`` or ``camera`` (live: webcam or
    stream); ``failures`` lists the files skipped so far (folders of images only). ``resume`` (before
    iterating) starts after a frame an interrupted run finished: a video frame, or an image's number."""

    name: str
    kind: SourceKind
    fps: float | None
    failures: list[InputFailure]

    def expected_frames(self) -> int | None: ...

    def resume(self, after: StartAfter | int) -> None: ...

    def __iter__(self) -> Iterator[DecodedFrame]: ...


class ImageFiles:
    """Image files as frames (``time`` is NaN); unreadable files are skipped and listed in ``failures``.
    ``start`` skips the first files (those an interrupted run finished)."""

    fps = None

    def __init__(self, paths: list[Path], name: str, kind: SourceKind, start: int = 0) -> None:
        self.paths = paths
        self.name = name
        self.kind = kind
        self.start = start
        self.failures: list[InputFailure] = []

    def expected_frames(self) -> int:
        return len(self.paths)

    def resume(self, after: StartAfter | int) -> None:
        if isinstance(after, StartAfter):
            raise InputError(f"cannot resume: the interrupted run analysed a video, not {self.name}")
        self.start = after + 1

    def __iter__(self) -> Iterator[DecodedFrame]:
        for index, path in enumerate(self.paths[self.start :], start=self.start):
            try:
                image = load_image(path)
            except InputError as error:
                self.failures.append(InputFailure(str(path), str(error), index))
                continue
            yield DecodedFrame(index, math.nan, image, source=str(path))


class ImageInMemory:
    """One image given as an array or a PIL image, as a one-frame source named ``<array>`` or ``<image>``;
    its shape and type are checked when the source is made, before any work."""

    fps = None
    kind = SourceKind.IMAGE

    def __init__(self, image: ImageLike) -> None:
        self.image = to_rgb_array(image)
        self.name = "<image>" if isinstance(image, Image.Image) else "<array>"
        self.failures: list[InputFailure] = []

    def expected_frames(self) -> int:
        return 1

    def resume(self, after: StartAfter | int) -> None:
        raise InputError("an image in memory is analysed at once: there is nothing to resume")

    def __iter__(self) -> Iterator[DecodedFrame]:
        yield DecodedFrame(0, math.nan, self.image, source=self.name)


def open_source(
    source: str | Path | int | ImageLike,
    sampling: Sampling | None = None,
    timeouts: StreamTimeouts | None = None,
) -> Source:
    """The frames of ``source``: a path (image, folder of images, video), a camera index, a URL, or an
    image in memory (an RGB uint8 array (H, W, 3) or a PIL image).

    ``sampling`` (stride, target fps, frame limit) applies to videos and cameras, ``timeouts`` to cameras
    and streams. A path that exists wins over a camera index of the same name.
    """
    if isinstance(source, np.ndarray | Image.Image):
        return ImageInMemory(source)
    if isinstance(source, bool) or not isinstance(source, str | Path | int):
        raise InputError(
            f"cannot analyse a {type(source).__name__}: give a path, a camera index, a URL, an RGB uint8 "
            "array (H, W, 3) or a PIL image"
        )
    text = str(source)
    path = Path(text)
    if not isinstance(source, int) and path.exists():
        if path.is_dir():
            files = expand_images([path])
            if not files:
                raise InputError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
            return ImageFiles(files, text, SourceKind.IMAGES)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return ImageFiles([path], text, SourceKind.IMAGE)
        return VideoReader.open(path, sampling)
    if isinstance(source, int) or text.isdigit() or "://" in text or text.startswith("video="):
        return VideoReader.camera(text, sampling, timeouts)
    raise InputError(f"no such file or folder: {path}")
