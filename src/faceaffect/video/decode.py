"""Video decoding with PyAV, one frame at a time: files (mp4, mov, avi, mkv, flv, ...) and live cameras.

Frames are decoded lazily, so memory stays flat however long the video; ``stride`` or ``target_fps`` pick
which frames to keep. Unreadable and truncated files are clear ``InputError``\\ s.

>>> reader = VideoReader.open("clip.mp4", target_fps=10)  # doctest: +SKIP
>>> for frame in reader:  # doctest: +SKIP
...     frame.index, frame.time, frame.image.shape
(0, 0.0, (360, 640, 3))
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from faceaffect.core.errors import FaceaffectError, InputError, LimitError
from faceaffect.core.limits import current_limits, env_name


class SourceKind(StrEnum):
    """What an input is: one ``image``, a folder of ``images``, a ``video`` file, or a live ``camera``
    (webcam or network stream: read once, frames as they come)."""

    IMAGE = "image"
    IMAGES = "images"
    VIDEO = "video"
    CAMERA = "camera"


@dataclass(frozen=True)
class DecodedFrame:
    """One frame: its index in the source (decode order), time in seconds, RGB uint8 pixels (H, W, 3).

    ``source`` names the file a frame came from when a source has several (a folder of images).
    """

    index: int
    time: float
    image: np.ndarray
    source: str | None = None


@dataclass(frozen=True)
class InputFailure:
    """An input that was skipped, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Sampling:
    """Which frames to keep: every ``stride``-th, or about ``target_fps`` per second; at most ``max_frames``.

    >>> Sampling(stride=2).expected(100, fps=25.0), Sampling(target_fps=5).expected(100, fps=25.0)
    (50, 20)
    """

    stride: int = 1
    target_fps: float | None = None
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise FaceaffectError(f"stride must be at least 1, got {self.stride}")
        if self.target_fps is not None and self.target_fps <= 0:
            raise FaceaffectError(f"target fps must be positive, got {self.target_fps}")
        if self.target_fps is not None and self.stride != 1:
            raise FaceaffectError("give either a stride or a target fps, not both")
        if self.max_frames is not None and self.max_frames < 1:
            raise FaceaffectError(f"max frames must be at least 1, got {self.max_frames}")

    def select(self, frames: Iterator[DecodedFrame]) -> Iterator[DecodedFrame]:
        """The kept frames of a stream, in order."""
        kept = 0
        next_time = -math.inf
        for frame in frames:
            if self.max_frames is not None and kept >= self.max_frames:
                return
            if self.target_fps is not None:
                if frame.time < next_time - 1e-6:
                    continue
                period = 1 / self.target_fps
                next_time = next_time + period if frame.time - next_time < period else frame.time + period
            elif frame.index % self.stride:
                continue
            kept += 1
            yield frame

    def expected(self, frames: int | None, fps: float | None) -> int | None:
        """How many frames a source of ``frames`` frames at ``fps`` yields (None when unknown)."""
        if not frames:
            return self.max_frames
        if self.target_fps is not None and fps:
            count = math.ceil(frames * min(1.0, self.target_fps / fps))
        else:
            count = math.ceil(frames / self.stride)
        return count if self.max_frames is None else min(count, self.max_frames)

    def output_fps(self, fps: float | None) -> float | None:
        """The frame rate of the kept frames."""
        if fps is None:
            return None
        return min(fps, self.target_fps) if self.target_fps is not None else fps / self.stride


def camera_input(device: str | int) -> tuple[str, str]:
    """(url, PyAV format) of a webcam: ``/dev/videoN`` with v4l2 on Linux, avfoundation on macOS, and on
    Windows dshow, which needs the camera's name (``video=NAME``) rather than an index."""
    name = str(device)
    if sys.platform == "darwin":
        return name, "avfoundation"
    if sys.platform == "win32":
        if name.isdigit():
            raise InputError(f"on Windows name the camera, e.g. 'video=Integrated Camera', not {name}")
        return name, "dshow"
    return (f"/dev/video{name}" if name.isdigit() else name), "v4l2"


class VideoReader:
    """Frames of one video file or live stream, decoded lazily; use :meth:`open` or :meth:`camera`."""

    def __init__(self, container: Any, name: str, sampling: Sampling, live: bool) -> None:
        self.container = container
        self.name = name
        self.sampling = sampling
        self.live = live
        self.kind = SourceKind.CAMERA if live else SourceKind.VIDEO
        self.failures: list[InputFailure] = []  # nothing is skipped: a decoding error is fatal
        self.stream = container.streams.video[0]
        self.stream.thread_type = "AUTO"
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.source_fps = float(rate) if rate else None
        self.declared_frames = int(self.stream.frames or 0)
        start = self.stream.start_time
        self.start_time = float(start * self.stream.time_base) if start is not None else 0.0

    @classmethod
    def open(cls, path: str | Path, sampling: Sampling | None = None) -> VideoReader:
        """A video file; InputError when it is missing, unreadable, without video or truncated."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no such video file: {path}")
        _check_complete(str(path))
        return cls(
            _open_container(str(path), None, f"video {path}"), str(path), sampling or Sampling(), False
        )

    @classmethod
    def camera(cls, device: str | int, sampling: Sampling | None = None) -> VideoReader:
        """A webcam by index (or platform device name) or a stream URL (rtsp://, http://, ...)."""
        url, fmt = (str(device), None) if "://" in str(device) else camera_input(device)
        return cls(_open_container(url, fmt, f"camera {device}"), url, sampling or Sampling(), True)

    @property
    def fps(self) -> float | None:
        """Frame rate of the kept frames (None when the stream does not say)."""
        return self.sampling.output_fps(self.source_fps)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        return self.stream.width, self.stream.height

    def expected_frames(self) -> int | None:
        """How many frames iteration yields, when known (not for live streams)."""
        return self.sampling.expected(None if self.live else self.declared_frames, self.source_fps)

    def __iter__(self) -> Iterator[DecodedFrame]:
        try:
            yield from self.sampling.select(self._decode())
        finally:
            self.close()

    def close(self) -> None:
        self.container.close()

    def _decode(self) -> Iterator[DecodedFrame]:
        index = 0
        try:
            for frame in self.container.decode(self.stream):
                yield DecodedFrame(index, self._time(frame, index), frame.to_ndarray(format="rgb24"))
                index += 1
        except _av_errors() as error:
            raise InputError(f"cannot decode {self.name} after frame {index}: {_reason(error)}") from None

    def _time(self, frame: Any, index: int) -> float:
        if frame.time is not None:
            return float(frame.time) - self.start_time
        return index / self.source_fps if self.source_fps else float(index)


def _check_complete(path: str) -> None:
    """InputError for a truncated file, whose index lists more frames than its data holds (demuxing only,
    no decoding: fast, and before any work is spent on the file)."""
    container = _open_container(path, None, f"video {path}")
    try:
        stream = container.streams.video[0]
        declared = int(stream.frames or 0)
        packets = sum(1 for packet in container.demux(stream) if packet.size) if declared else 0
    except _av_errors() as error:
        raise InputError(f"cannot read video {path}: {_reason(error)}") from None
    finally:
        container.close()
    if packets < declared:
        raise InputError(
            f"video {path} is truncated: its index lists {declared} frames but the file holds {packets}"
        )


def _av_errors() -> tuple[type[Exception], ...]:
    import av

    return (av.FFmpegError, OSError)


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)


def _open_container(url: str, fmt: str | None, what: str) -> Any:
    import av

    try:
        container = av.open(url, format=fmt)
    except _av_errors() as error:
        raise InputError(f"cannot open {what}: {_reason(error)}") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{what} has no video stream")
    width, height = container.streams.video[0].width, container.streams.video[0].height
    limit = current_limits().max_frame_pixels
    if width * height > limit:
        container.close()
        raise LimitError(f"{what} has frames of {width}x{height} pixels, more than the limit of {limit}; "
                         f"raise it with {env_name('max_frame_pixels')}")  # fmt: skip
    return container
