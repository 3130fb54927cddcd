"""Video decoding with PyAV, one frame at a time: files (mp4, mov, avi, mkv, flv, ...) and live cameras.

Frames are decoded lazily, so memory stays flat however long the video; ``stride`` or ``target_fps`` pick
which frames to keep. Frames come upright (the video's display matrix applied). Damaged packets are skipped
and counted in ``report`` (with the frames they took and a video shorter than declared), not fatal; a video
that decodes no frame at all, or cannot be opened, is a clear ``InputError``; frames over the pixel limit
(``faceaffect.core.limits``) a ``LimitError`` before decoding. :class:`StreamTimeouts` bound the waits of
network streams.

>>> reader = VideoReader.open("clip.mp4", target_fps=10)  # doctest: +SKIP
>>> for frame in reader:  # doctest: +SKIP
...     frame.index, frame.time, frame.image.shape
(0, 0.0, (360, 640, 3))
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from faceaffect.core.errors import FaceaffectError, InputError, LimitError
from faceaffect.core.limits import current_limits, env_name
from faceaffect.video.faults import DecodeReport
from faceaffect.video.orientation import display_matrix, orient

DAMAGE_REACH = 32  # frames after a damaged packet within which frames it took can come out missing


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

    ``source`` names the file a frame came from when a source has several (a folder of images); ``pts`` is
    a video frame's presentation time stamp, in its stream's time base.
    """

    index: int
    time: float
    image: np.ndarray
    source: str | None = None
    pts: int | None = None


@dataclass(frozen=True)
class InputFailure:
    """An input that was skipped, and why (``index``: its number among the inputs, where it has one)."""

    path: str
    reason: str
    index: int | None = None


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

    def select(
        self, frames: Iterable[DecodedFrame], kept: int = 0, previous: float | None = None
    ) -> Iterator[DecodedFrame]:
        """The kept frames of a stream, in order: every ``stride``-th by index, or the first frame of each
        ``1 / target_fps`` seconds (a frame is kept when its time falls in a later slot than the time
        ``previous`` of the frame before it). ``kept`` frames were kept before these (to continue a run)."""
        for frame in frames:
            if self.max_frames is not None and kept >= self.max_frames:
                return
            if self.target_fps is not None:
                keep = previous is None or self._slot(frame.time) > self._slot(previous)
                previous = frame.time
            else:
                keep = frame.index % self.stride == 0
            if keep:
                kept += 1
                yield frame

    def _slot(self, time: float) -> int:
        return math.floor(time * self.target_fps + 1e-6)  # type: ignore[operator]

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


@dataclass(frozen=True)
class StreamTimeouts:
    """How long a camera or network stream may keep us waiting: ``open`` seconds to answer, ``read``
    seconds between data (None: no bound). The analysis defaults live in
    ``faceaffect.options.AnalyzerOptions`` (``open_timeout``, ``read_timeout``)."""

    open: float | None = None
    read: float | None = None


@dataclass(frozen=True)
class StartAfter:
    """Where a resumed run picks a video up: after source frame ``index`` (time stamp ``pts``), with ``kept``
    frames kept by the sampling so far and the faults ``report`` met up to there."""

    index: int
    pts: int | None
    kept: int
    report: DecodeReport


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
    """Frames of one video file or live stream, decoded lazily; use :meth:`open` or :meth:`camera`.

    ``report`` tells the faults met so far (damaged packets skipped, frames lost, fewer frames than
    declared). :meth:`resume` continues a run after a given frame (the reader seeks to it).
    """

    def __init__(
        self,
        container: Any,
        name: str,
        sampling: Sampling,
        live: bool,
        timeouts: StreamTimeouts | None = None,
    ) -> None:
        self.container = container
        self.name = name
        self.sampling = sampling
        self.live = live
        self.timeouts = timeouts or StreamTimeouts()
        self.after: StartAfter | None = None
        self.kind = SourceKind.CAMERA if live else SourceKind.VIDEO
        self.failures: list[InputFailure] = []  # a video is one input: its faults are in ``report``
        self.stream = container.streams.video[0]
        self.stream.thread_type = "AUTO"
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.source_fps = float(rate) if rate else None
        start = self.stream.start_time
        self.start_time = float(start * self.stream.time_base) if start is not None else 0.0
        self.report = DecodeReport(declared=None if live else self._declared())
        self._next_index = 0

    @classmethod
    def open(cls, path: str | Path, sampling: Sampling | None = None) -> VideoReader:
        """A video file; InputError when it is missing, cannot be opened or has no video, LimitError when its
        frames are over the pixel limit."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no such video file: {path}")
        container = _open_container(str(path), None, f"video {path}")
        return _closing_on_error(container, lambda: cls(container, str(path), sampling or Sampling(), False))

    @classmethod
    def camera(
        cls, device: str | int, sampling: Sampling | None = None, timeouts: StreamTimeouts | None = None
    ) -> VideoReader:
        """A webcam by index (or platform device name) or a stream URL (rtsp://, http://, ...), given up after
        ``timeouts.open`` seconds without an answer (Ctrl-C stops the wait)."""
        timeouts = timeouts or StreamTimeouts()
        url, fmt = (str(device), None) if "://" in str(device) else camera_input(device)
        container = _open_container(url, fmt, f"camera {device}", timeouts)
        return _closing_on_error(
            container, lambda: cls(container, url, sampling or Sampling(), True, timeouts)
        )

    @property
    def fps(self) -> float | None:
        """Frame rate of the kept frames (None when the stream does not say)."""
        return self.sampling.output_fps(self.source_fps)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the coded frames (before any rotation)."""
        return self.stream.width, self.stream.height

    @property
    def declared_frames(self) -> int:
        """Frames the container declares (0 when it does not say)."""
        return self.report.declared or 0

    def expected_frames(self) -> int | None:
        """How many frames iteration yields, when known (not for live streams)."""
        return self.sampling.expected(None if self.live else self.report.declared, self.source_fps)

    def resume(self, after: StartAfter | int) -> None:
        """Start after a frame an interrupted run finished (before iterating)."""
        if self.live:
            raise InputError(f"cannot resume {self.name}: a live stream is read once")
        if not isinstance(after, StartAfter):
            raise InputError(f"cannot resume {self.name}: the interrupted run analysed images")
        self.after = after

    def __iter__(self) -> Iterator[DecodedFrame]:
        try:
            if self.after is None:
                yield from self.sampling.select(self._decode(self._frames(), 0, None))
            else:
                yield from self._resumed(self.after)
        finally:
            self.close()

    def close(self) -> None:
        self.container.close()

    def _declared(self) -> int | None:
        """Frames the container announces: its count, or else duration x frame rate."""
        if self.stream.frames:
            return int(self.stream.frames)
        duration, base = self.stream.duration, self.stream.time_base
        if duration and base and self.source_fps:
            return round(float(duration * base) * self.source_fps)
        return None

    def _frames(self) -> Iterator[Any]:
        """PyAV frames in order; a packet the decoder refuses is skipped and counted in ``report``."""
        packets = self.container.demux(self.stream)
        while True:
            asked = time.monotonic()
            try:
                packet = next(packets)
            except StopIteration:
                return
            except _av_errors() as error:
                if self.live:
                    raise self._read_error(error, time.monotonic() - asked) from None
                self.report.damaged(self._next_index)  # the file cannot be read further
                return
            try:
                frames = self.stream.decode(packet)
            except _av_errors():
                self.report.damaged(self._next_index)
                continue
            yield from frames

    def _read_error(self, error: Exception, waited: float) -> InputError:
        """The error of a stream that failed: a timeout when it came after ``timeouts.read`` seconds without
        data (PyAV's ExitError, or the I/O error the network protocols turn it into)."""
        import av

        timeout = self.timeouts.read
        if isinstance(error, av.ExitError) or (timeout is not None and waited >= timeout):
            return InputError(
                f"{self.name}: no data for {timeout:g} s (raise --read-timeout, option read_timeout)"
            )
        return InputError(f"cannot read {self.name}: {_reason(error)}")

    def _decode(self, frames: Iterator[Any], index: int, last_time: float | None) -> Iterator[DecodedFrame]:
        """Decoded frames numbered from ``index``: where damaged packets took frames with them, the numbers
        skip as many frames as the time stamps say are missing, and the gap goes into ``report``. (Frames
        come out of the decoder some packets after theirs went in, so a gap in the time stamps counts as a
        loss for ``DAMAGE_REACH`` frames after a damaged packet; elsewhere it is a variable frame rate.)"""
        damaged, reach, self._next_index = self.report.packets, 0, index
        for frame in frames:
            time = self._time(frame, index)
            if self.report.packets > damaged:
                damaged, reach = self.report.packets, DAMAGE_REACH
            missing = self._missing(last_time, time) if reach and last_time is not None else 0
            if missing:
                self.report.missing(index, missing, last_time, time)  # type: ignore[arg-type]
                index += missing
            reach = max(0, reach - 1)
            if frame.is_corrupt:  # output by the decoder but marked damaged: left out like a lost one
                self.report.missing(index, 1, last_time if last_time is not None else time, time)
            else:
                check_frame_size(frame.width, frame.height, self.name)  # streams may change size
                image = orient(frame.to_ndarray(format="rgb24"), display_matrix(frame))
                yield DecodedFrame(index, time, image, pts=frame.pts)
            last_time, index = time, index + 1
            self._next_index = index
        self.report.ended(index)
        if index == 0 and self.after is None:
            count = self.report.packets
            reason = f" ({count} damaged packet{'s' if count > 1 else ''})" if count else ""
            raise InputError(f"cannot decode any frame of {self.name}{reason}")

    def _missing(self, before: float, after: float) -> int:
        return max(0, round((after - before) * self.source_fps) - 1) if self.source_fps else 0

    def _resumed(self, after: StartAfter) -> Iterator[DecodedFrame]:
        """The kept frames after source frame ``after.index``: seek to its time stamp and decode from the key
        frame before it; where that fails (no time stamps, an inexact index), decode from the start."""
        if after.pts is not None:
            self.container.seek(after.pts, stream=self.stream, backward=True, any_frame=False)
            frames = self._frames()
            for frame in frames:
                if frame.pts is None or frame.pts > after.pts:
                    break
                if frame.pts == after.pts:
                    self.report = DecodeReport(
                        self.report.declared, [*after.report.skipped], [*after.report.gaps]
                    )
                    time = self._time(frame, after.index)
                    decoded = self._decode(frames, after.index + 1, time)
                    yield from self.sampling.select(decoded, after.kept, time)
                    return
            self.container.seek(0, stream=self.stream, backward=True)
        self.report = DecodeReport(self.report.declared)
        decoded = self._decode(self._frames(), 0, None)
        for frame in decoded:
            if frame.index == after.index:
                yield from self.sampling.select(decoded, after.kept, frame.time)
                return
        raise InputError(f"cannot resume {self.name}: frame {after.index} is not in it any more")

    def _time(self, frame: Any, index: int) -> float:
        if frame.time is not None:
            return float(frame.time) - self.start_time
        return index / self.source_fps if self.source_fps else float(index)


def _closing_on_error(container: Any, make: Any) -> Any:
    try:
        return make()
    except BaseException:
        container.close()
        raise


def _av_errors() -> tuple[type[Exception], ...]:
    import av

    return (av.FFmpegError, OSError)


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)


def _open_container(url: str, fmt: str | None, what: str, timeouts: StreamTimeouts | None = None) -> Any:
    """Open a file (``timeouts`` None) or a camera or stream: on a helper thread, so that Ctrl-C stops the
    wait at once, and given up after ``timeouts.open`` seconds (later reads: ``timeouts.read``)."""
    import av

    if timeouts is None:
        opened = _attempt(lambda: av.open(url, format=fmt))
    else:
        timeout = (timeouts.open, timeouts.read)
        opened = _in_thread(lambda: av.open(url, format=fmt, timeout=timeout))
    if isinstance(opened, av.ExitError) and timeouts is not None:
        raise InputError(f"cannot open {what}: no answer within {timeouts.open:g} s "
                         "(raise --open-timeout, option open_timeout)")  # fmt: skip
    if isinstance(opened, _av_errors()):
        raise InputError(f"cannot open {what}: {_reason(opened)}")
    if isinstance(opened, BaseException):
        raise opened
    if not opened.streams.video:
        opened.close()
        raise InputError(f"{what} has no video stream")
    try:
        check_frame_size(opened.streams.video[0].width, opened.streams.video[0].height, what)
    except LimitError:
        opened.close()
        raise
    return opened


def check_frame_size(width: int, height: int, what: str) -> None:
    """LimitError when ``width`` x ``height`` frames are over the frame-pixel limit in force
    (``faceaffect.core.limits``): checked from a video's header, before any frame is decoded."""
    limit = current_limits().max_frame_pixels
    if width * height > limit:
        raise LimitError(f"{what} has frames of {width}x{height} pixels, more than the limit of {limit}; "
                         f"raise it with --max-frame-pixels or {env_name('max_frame_pixels')}")  # fmt: skip


def _attempt(work: Any) -> Any:
    """``work()``, or the exception it raised."""
    try:
        return work()
    except Exception as error:
        return error


OPEN_THREAD = "faceaffect-open"


def opening() -> bool:
    """Whether a stream is still being opened on a helper thread: after Ctrl-C it may stay blocked in FFmpeg,
    and it can crash the interpreter's shutdown (SIGSEGV), so a command ends its process without one."""
    return any(thread.name == OPEN_THREAD and thread.is_alive() for thread in threading.enumerate())


def _in_thread(work: Any) -> Any:
    """``work()`` on a daemon thread, waited for in short steps (a signal can interrupt the wait)."""
    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(_attempt(work)), name=OPEN_THREAD, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.05)
    return done[0]
