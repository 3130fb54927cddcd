"""The one home of every default: how a model runs (:class:`RuntimeOptions`) and how an input is analysed
(:class:`AnalyzerOptions`). The CLI builds them from its flags, the Python API from keywords, the service
and corpus runs from JSON; ``Recognizer`` and ``Analyzer`` take them.

>>> AnalyzerOptions(target_fps=10).sampling
Sampling(stride=1, target_fps=10, max_frames=None)
>>> AnalyzerOptions.from_dict({"max_gap": 2}).tracking.max_gap
2
>>> AnalyzerOptions.from_dict({"max_gapp": 2})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
faceaffect.core.errors.FaceaffectError: unknown option 'max_gapp'; the options are: detector, ...
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, fields
from typing import Any, Self, TypeVar

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.validate import check_fields, check_range
from faceaffect.hub.registry import DEFAULT_MODEL
from faceaffect.runtime.base import ENGINES
from faceaffect.video.decode import Sampling, StreamTimeouts
from faceaffect.video.smoothing import Smoothing
from faceaffect.video.tracking import TrackingOptions

Options = TypeVar("Options", "RuntimeOptions", "AnalyzerOptions")
LIMIT_OPTIONS = ("open_timeout", "read_timeout")  # bound waits, never change results


class _JsonOptions:
    """What both kinds of options share: ``replace``, and a round trip through JSON-like data."""

    replace = dataclasses.replace
    to_dict = asdict

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Options from JSON-like data; unknown keys and wrong types are one-line errors."""
        return _from_dict(cls, data)


@dataclass(frozen=True)
class RuntimeOptions(_JsonOptions):
    """How a model runs.

    ``model``: a registered name or a saved model folder. ``device``: cpu, cuda, cuda:N or auto. ``engine``:
    onnx (ONNX Runtime), torch, or auto (ONNX Runtime on CPU when an ONNX file exists, torch on GPU).
    ``threads``: ONNX Runtime threads per batch (default: 1, with one batch in flight per physical core).
    ``batch_size``: faces per batch at most. ``offline``: never download (None: ``FACEAFFECT_OFFLINE``).
    ``cores``: CPU cores ONNX Runtime fills, ``cores // threads`` batches in flight (default: the physical
    cores this process may run on; a corpus worker that shares a machine with others gets its share).
    """

    model: str = DEFAULT_MODEL
    device: str = "cpu"
    engine: str = "auto"
    threads: int | None = None
    batch_size: int = 32
    offline: bool | None = None
    cores: int | None = None

    def __post_init__(self) -> None:
        check_fields(self, "option")
        if self.engine not in ENGINES:
            raise FaceaffectError(f"unknown engine {self.engine!r}; use {', '.join(ENGINES)}")
        check_range(self, "option", "batch_size", 1)
        check_range(self, "option", "threads", 1)
        check_range(self, "option", "cores", 1)


@dataclass(frozen=True)
class AnalyzerOptions(_JsonOptions):
    """How an input is analysed: detection, frame sampling, tracking, smoothing, embeddings.

    ``detector``: blazeface (offline) or dlib; ``min_score``, ``min_face_size``: detector thresholds (None
    keeps the detector's own). ``margin``: grow each box by this fraction of its size on every side before
    cropping (0: the box, as the published models were trained). ``stride``, ``target_fps``, ``max_frames``:
    which video frames to analyse. ``detect_every``: run the detector on every N-th analysed frame, follow
    the tracks in between. ``max_gap``: frames a tracked face may go undetected (interpolated there).
    ``small_face_every``: BlazeFace's small-face search on every N-th detection of a video (and on every one
    while a tracked face is small). ``track_iou``: least IoU to continue a track. ``min_track_score``: report
    a track once one of its detections scores this much (0: all). ``smooth_frames``, ``smooth_seconds``:
    centred moving mean per track (one of them). ``embeddings``: keep each face's embedding.
    ``open_timeout``, ``read_timeout``: seconds a camera or network stream may take to answer, and to send
    the next data. (Sizes of inputs are bounded by ``faceaffect.core.limits``.)
    """

    detector: str = "blazeface"
    min_score: float | None = None
    min_face_size: float | None = None
    margin: float = 0.0
    stride: int = 1
    target_fps: float | None = None
    max_frames: int | None = None
    detect_every: int = 1
    max_gap: int = 5
    small_face_every: int = 10
    track_iou: float = 0.3
    min_track_score: float = 0.65
    smooth_frames: int = 0
    smooth_seconds: float = 0.0
    embeddings: bool = False
    open_timeout: float = 10.0
    read_timeout: float = 10.0

    def __post_init__(self) -> None:
        check_fields(self, "option")
        check_range(self, "option", "margin", 0)
        for name in ("open_timeout", "read_timeout"):
            check_range(self, "option", name, 0.001)
        _ = self.sampling, self.tracking, self.smoothing  # each checks its own values

    @property
    def sampling(self) -> Sampling:
        return Sampling(self.stride, self.target_fps, self.max_frames)

    @property
    def tracking(self) -> TrackingOptions:
        return TrackingOptions(
            self.detect_every, self.max_gap, self.track_iou, self.min_track_score, self.small_face_every
        )

    @property
    def smoothing(self) -> Smoothing:
        return Smoothing(self.smooth_frames, self.smooth_seconds)

    def result_settings(self) -> dict[str, Any]:
        """The options that decide the results (all but the limits): what a resumed run must share."""
        return {name: value for name, value in self.to_dict().items() if name not in LIMIT_OPTIONS}

    @property
    def timeouts(self) -> StreamTimeouts:
        return StreamTimeouts(self.open_timeout, self.read_timeout)

    @property
    def detector_thresholds(self) -> dict[str, float]:
        """The detector options that were set (the others keep the detector's defaults)."""
        chosen = {"min_score": self.min_score, "min_face_size": self.min_face_size}
        return {key: value for key, value in chosen.items() if value is not None}


def split_settings(
    settings: dict[str, Any],
    runtime: RuntimeOptions | None = None,
    options: AnalyzerOptions | None = None,
) -> tuple[RuntimeOptions, AnalyzerOptions]:
    """``runtime`` and ``options`` (default: the defaults) changed by keyword ``settings`` of both kinds (as
    ``faceaffect.analyze(..., device="cpu", target_fps=5)`` takes them); an unknown name is a one-line error.
    """
    runtime_names = {field.name for field in fields(RuntimeOptions)}
    runtime_changes = {key: value for key, value in settings.items() if key in runtime_names}
    other = {key: value for key, value in settings.items() if key not in runtime_names}
    return with_settings(runtime or RuntimeOptions(), runtime_changes), with_settings(
        options or AnalyzerOptions(), other
    )


def with_settings(options: Options, settings: dict[str, Any]) -> Options:
    """A copy of ``options`` with ``settings`` changed; unknown names and bad values are one-line errors."""
    _from_dict(type(options), settings)  # names known
    return dataclasses.replace(options, **settings)


def _from_dict(cls: type[Options], data: dict[str, Any]) -> Options:
    names = [field.name for field in fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise FaceaffectError(f"unknown option {unknown[0]!r}; the options are: {', '.join(names)}")
    return cls(**data)
