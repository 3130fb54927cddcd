"""What a sink is told by the analysis run it serves: the run (:class:`RunInfo`), where it stands after each
frame (:class:`Mark`, enough to resume after it) and how it ended (:class:`RunEnd`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faceaffect.video.decode import InputFailure, SourceKind, StartAfter
from faceaffect.video.faults import DecodeReport
from faceaffect.video.smoothing import Context
from faceaffect.video.tracking import TrackerState


@dataclass(frozen=True)
class RunInfo:
    """The run a sink serves: input name and kind, the model's labels and name, the frame rate of the
    analysed frames, the embedding size, and the analysis options (what a resumed run must share)."""

    source: str
    kind: SourceKind
    labels: tuple[str, ...]
    model: str
    fps: float | None
    embedding_dim: int
    options: dict[str, Any]


@dataclass(frozen=True)
class Mark:
    """Where a run stands right after the frame it comes with: the frame's number in the source (the image
    number in a folder), its time stamp, the tracker's state and the smoothing context (videos)."""

    index: int
    pts: int | None = None
    tracker: TrackerState | None = None
    context: Context = field(default_factory=list)

    def start_after(self, report: DecodeReport | None) -> StartAfter | int:
        """Where a resumed run starts: after this video frame (with the faults met up to it), or after
        this image."""
        if self.tracker is None:
            return self.index
        return StartAfter(self.index, self.pts, self.tracker.released_position + 1, report or DecodeReport())


@dataclass(frozen=True)
class RunEnd:
    """How a run ended: ``stopped`` by an interrupt or an error (None: it went through), the faults met
    decoding a video (``report``), and the files that could not be read (``failures``)."""

    stopped: BaseException | None = None
    report: DecodeReport | None = None
    failures: list[InputFailure] = field(default_factory=list)
