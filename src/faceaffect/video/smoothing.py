"""Temporal smoothing: a centred moving mean of each track's probabilities, valence and arousal, computed as
frames stream by (:class:`SmoothingWindow` holds only the frames of one window) or over a list of frames
(:meth:`Smoothing.apply`).

>>> from faceaffect.core.types import FacePrediction, FrameResult
>>> def frame(i, p): return FrameResult(i, i / 25, (FacePrediction(("a", "b"), np.array([p, 1 - p]),
...     np.zeros(2), track_id=0),))
>>> smoothed = Smoothing(window_frames=3).apply([frame(i, i % 2) for i in range(4)])
>>> [round(float(f.faces[0].probabilities[0]), 3) for f in smoothed]
[0.5, 0.333, 0.667, 0.5]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any, Generic, TypeVar

import numpy as np

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.types import FacePrediction, FrameResult

T = TypeVar("T")
Context = list[tuple[float, dict[int, np.ndarray]]]  # (key, raw values by track) of frames already out


@dataclass(frozen=True)
class Smoothing:
    """A centred window of ``window_frames`` source frames or ``window_seconds`` seconds (at most one set;
    neither: no smoothing).

    >>> Smoothing(window_seconds=0.5).active, Smoothing().active
    (True, False)
    """

    window_frames: int = 0
    window_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.window_frames < 0 or self.window_seconds < 0:
            raise FaceaffectError("smoothing windows cannot be negative")
        if self.window_frames and self.window_seconds:
            raise FaceaffectError("give one smoothing window, in frames or in seconds, not both")

    @property
    def active(self) -> bool:
        return bool(self.window_frames or self.window_seconds)

    @property
    def half_width(self) -> float:
        """How far the window reaches on each side, in frames or seconds."""
        return self.window_seconds / 2 if self.window_seconds else (self.window_frames - 1) / 2

    def apply(self, frames: Iterable[FrameResult]) -> list[FrameResult]:
        """Each track's predictions averaged over the window (frames in order). Probabilities stay
        distributions, logits become their logs, so the top label follows the smoothed probabilities;
        boxes are unchanged."""
        window: SmoothingWindow[None] = SmoothingWindow(self)
        out = [done for frame in frames for done, _, _ in window.push(frame, None)]
        return out + [done for done, _, _ in window.flush()]


@dataclass
class _Entry(Generic[T]):
    key: float
    values: dict[int, np.ndarray]  # raw probabilities (+ valence, arousal) by track id
    frame: FrameResult | None = None  # None once released (or for restored context)
    payload: T | None = None
    faces: list[FacePrediction] = field(default_factory=list)


class SmoothingWindow(Generic[T]):
    """Smoothing of a stream of frame results: :meth:`push` a frame (with any ``payload`` to carry along, such
    as its image) and get back the frames whose window is now complete, smoothed, in order; :meth:`flush` at
    the end. Holds the frames of one window, never more. Each released frame comes with the context that a
    run resumed after it needs (:meth:`restore`): the raw values of the frames that can still reach later
    windows. Without an active ``smoothing`` frames come back at once, unchanged."""

    def __init__(self, smoothing: Smoothing) -> None:
        self.active = smoothing.active
        self.by_time = smoothing.window_seconds > 0
        self.half = smoothing.half_width + 1e-9 * max(1.0, smoothing.half_width)
        self.entries: deque[_Entry[T]] = deque()
        self.released = 0  # the first ``released`` entries are out (kept as context)

    def restore(self, context: Context) -> None:
        """Go on after a frame released by an earlier run, with the context that came with it."""
        self.entries = deque(
            _Entry(key, {track: np.asarray(v, np.float64) for track, v in by_track.items()})
            for key, by_track in context
        )
        self.released = len(self.entries)

    def push(self, frame: FrameResult, payload: T) -> list[tuple[FrameResult, T, Context]]:
        """Add the next frame; returns (smoothed frame, its payload, context) for every frame now final."""
        if not self.active:
            return [(frame, payload, [])]
        key = frame.timestamp if self.by_time else float(frame.index)
        values = {face.track_id: _values(face) for face in frame.faces if face.track_id is not None}
        self.entries.append(_Entry(key, values, frame, payload, list(frame.faces)))
        done = []
        while self.released < len(self.entries) and self.entries[self.released].key + self.half < key:
            done.append(self._release())
        return done

    def flush(self) -> list[tuple[FrameResult, T, Context]]:
        """At the end of the stream: every frame still held."""
        return [self._release() for _ in range(self.released, len(self.entries))] if self.active else []

    def _release(self) -> tuple[FrameResult, T, Context]:
        entry = self.entries[self.released]
        near = [e for e in self.entries if abs(e.key - entry.key) <= self.half]
        faces = [self._smoothed(face, near) for face in entry.faces]
        frame, payload = replace(entry.frame, faces=tuple(faces)), entry.payload  # type: ignore[arg-type]
        entry.frame, entry.payload, entry.faces = None, None, []
        self.released += 1
        following = self.entries[self.released].key if self.released < len(self.entries) else entry.key
        while self.released and self.entries[0].key + self.half < following:  # out of every later window
            self.entries.popleft()
            self.released -= 1
        context = [(e.key, e.values) for e in islice(self.entries, self.released) if e.values]
        return frame, payload, context  # type: ignore[return-value]

    @staticmethod
    def _smoothed(face: FacePrediction, near: list[_Entry[Any]]) -> FacePrediction:
        if face.track_id is None:
            return face
        row = np.mean([e.values[face.track_id] for e in near if face.track_id in e.values], axis=0)
        count = len(face.labels)
        has_va = face.valence is not None
        return replace(
            face,
            probabilities=row[:count],
            logits=np.log(np.maximum(row[:count], 1e-12)).astype(face.logits.dtype),
            valence=float(row[count]) if has_va else None,
            arousal=float(row[count + 1]) if has_va else None,
        )


def _values(face: FacePrediction) -> np.ndarray:
    va = [face.valence, face.arousal] if face.valence is not None else []
    return np.concatenate([np.asarray(face.probabilities, np.float64), np.asarray(va, dtype=np.float64)])
