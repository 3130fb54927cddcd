"""Annotated output: the input drawn with each face's box, label and valence-arousal marker, written as an
H.264 video (frame by frame, atomically) or as images.

>>> with AnnotatedVideo("out.mp4", fps=25) as video:  # doctest: +SKIP
...     for image, frame in analyzer.stream_images("clip.mp4"):
...         video.write(image, frame)
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from PIL import Image

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.io import atomic_path, disk_errors
from faceaffect.core.types import FrameResult
from faceaffect.images import load_image
from faceaffect.render.draw import draw_faces
from faceaffect.video.decode import Sampling, VideoReader

VIDEO_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}


class AnnotatedVideo:
    """An H.264 video (.mp4, .mov, .mkv) written frame by frame, atomically: the file appears on close.

    With ``extend=True`` an existing annotated video at ``path`` (of an interrupted run, same frame size and
    rate) is continued: its packets are copied as they are, new frames follow.
    """

    def __init__(self, path: str | Path, fps: float | None, *, extend: bool = False) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_FORMATS:
            raise FaceaffectError(
                f"annotated videos are written as {', '.join(VIDEO_FORMATS)}, got {self.path}"
            )
        self.rate = Fraction(fps or 25.0).limit_denominator(1001)
        self.extend = extend
        self.frames = 0
        self._atomic = atomic_path(self.path)
        self.container: Any = None
        self.stream: Any = None

    def __enter__(self) -> AnnotatedVideo:
        import av

        tmp = self._atomic.__enter__()
        try:
            self.container = av.open(str(tmp), mode="w", format=VIDEO_FORMATS[self.path.suffix.lower()])
            if self.extend:
                self._copy_previous()
        except BaseException as error:
            self.__exit__(type(error), error, error.__traceback__)
            raise
        return self

    def _copy_previous(self) -> None:
        """Copy the packets of the video at ``path`` (as Annex B, like a fresh encoder's, so that the muxer
        treats old and new alike); the encoder then opens with the same settings and frame size."""
        import av
        from av.bitstream import BitStreamFilterContext

        try:
            with av.open(str(self.path)) as old:
                source = old.streams.video[0]
                self._open_stream(source.width, source.height)
                annexb = BitStreamFilterContext("h264_mp4toannexb", source)
                for packet in old.demux(source):  # ends with an empty packet: flush the filter
                    for out in annexb.filter(packet if packet.size else None):
                        out.stream = self.stream
                        self.container.mux(out)
                        self.frames += 1
        except (av.FFmpegError, OSError, IndexError) as error:
            raise FaceaffectError(f"cannot continue the annotated video {self.path}: {error}") from None

    def _open_stream(self, width: int, height: int) -> None:
        self.stream = self.container.add_stream("libx264", rate=self.rate, options={"crf": "23"})
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.codec_context.time_base = 1 / self.rate
        self.stream.codec_context.open()

    def write(self, image: np.ndarray, frame: FrameResult) -> None:
        """Draw ``frame``'s faces on ``image`` and append it (cropped to even sides, as H.264 needs)."""
        import av

        height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
        if self.stream is None:
            self._open_stream(width, height)
        drawn = draw_faces(np.ascontiguousarray(image[:height, :width]), frame.faces)
        picture = av.VideoFrame.from_ndarray(drawn, format="rgb24")
        picture.pts, picture.time_base = self.frames, 1 / self.rate
        with disk_errors(self.path):
            self.container.mux(self.stream.encode(picture))
        self.frames += 1

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> bool | None:
        try:
            if kind is None and self.stream is not None:
                self.container.mux(self.stream.encode(None))  # the encoder's last frames
            self.container.close()
        except Exception as failure:  # finishing the file failed (a full disk): it is not kept either
            if kind is not None:  # already failing: that first error is the one to report
                return self._atomic.__exit__(kind, error, trace)
            self._atomic.__exit__(type(failure), failure, failure.__traceback__)
            raise
        return self._atomic.__exit__(kind, error, trace)


def annotate_video(
    source: str, frames: Iterable[FrameResult], fps: float | None, sampling: Sampling, path: str | Path
) -> Path:
    """Decode a video again and write it with ``frames`` (its analysed frames, by index) drawn on it."""
    by_index = {frame.index: frame for frame in frames}
    with AnnotatedVideo(path, fps) as video:
        for decoded in VideoReader.open(source, sampling):
            if decoded.index in by_index:
                video.write(decoded.image, by_index[decoded.index])
    return Path(path)


class AnnotatedImages:
    """Annotated images written one by one (each atomically): ``path`` is one file for a ``single`` image,
    otherwise a folder mirroring the input folder ``root``."""

    def __init__(self, path: str | Path, root: str, single: bool) -> None:
        self.path, self.root, self.single = Path(path), root, single

    def write(self, image: np.ndarray, frame: FrameResult) -> None:
        source = Path(frame.source or self.root)
        target = self.path if self.single else self.path / source.relative_to(self.root)
        drawn = Image.fromarray(draw_faces(image, frame.faces))
        with atomic_path(target) as tmp:
            drawn.save(tmp, format=Image.registered_extensions().get(target.suffix.lower(), "PNG"))


def annotate_images(frames: Iterable[FrameResult], root: str, single: bool, path: str | Path) -> Path:
    """Draw each frame on its image file again (see :class:`AnnotatedImages`)."""
    images = AnnotatedImages(path, root, single)
    for frame in frames:
        images.write(load_image(frame.source or root), frame)
    return images.path
