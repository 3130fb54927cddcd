"""Temporal smoothing: a centred moving mean of each track's probabilities, valence and arousal.

>>> centred_mean(np.array([0.0, 1, 2, 3]), np.array([[0.0], [3], [0], [3]]), half_width=1).ravel().tolist()
[1.5, 1.0, 2.0, 1.5]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.types import FacePrediction, FrameResult


def centred_mean(keys: np.ndarray, values: np.ndarray, half_width: float) -> np.ndarray:
    """For each row, the mean of ``values`` (N, K) over the rows whose key lies within ``half_width`` of its
    own; ``keys`` (N,) ascending (frame numbers or seconds). Near the ends the window is one-sided."""
    keys = np.asarray(keys, dtype=np.float64)
    tolerance = 1e-9 * max(1.0, half_width)
    low = np.searchsorted(keys, keys - half_width - tolerance, side="left")
    high = np.searchsorted(keys, keys + half_width + tolerance, side="right")
    sums = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0, dtype=np.float64)])
    return (sums[high] - sums[low]) / (high - low)[:, None]


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

    def apply(self, frames: Sequence[FrameResult]) -> list[FrameResult]:
        """Each track's predictions averaged over the window. Probabilities stay distributions, logits
        become their logs, so the top label follows the smoothed probabilities; boxes are unchanged."""
        if not self.active:
            return list(frames)
        by_time = self.window_seconds > 0
        half_width = self.window_seconds / 2 if by_time else (self.window_frames - 1) / 2
        places: dict[int | None, list[tuple[int, int]]] = defaultdict(list)
        for i, frame in enumerate(frames):
            for j, face in enumerate(frame.faces):
                places[face.track_id].append((i, j))
        faces = [list(frame.faces) for frame in frames]
        for track in places.values():
            keys = np.array([frames[i].timestamp if by_time else frames[i].index for i, _ in track])
            smoothed = _smooth_track([faces[i][j] for i, j in track], keys, half_width)
            for (i, j), face in zip(track, smoothed, strict=True):
                faces[i][j] = face
        return [replace(frame, faces=tuple(new)) for frame, new in zip(frames, faces, strict=True)]


def _smooth_track(faces: list[FacePrediction], keys: np.ndarray, half_width: float) -> list[FacePrediction]:
    order = np.argsort(keys, kind="stable")
    has_va = faces[0].valence is not None
    values = np.array([_values(faces[k], has_va) for k in order])
    means = np.empty_like(values)
    means[order] = centred_mean(keys[order], values, half_width)
    count = len(faces[0].labels)
    return [
        replace(
            face,
            probabilities=row[:count],
            logits=np.log(np.maximum(row[:count], 1e-12)).astype(face.logits.dtype),
            valence=float(row[count]) if has_va else None,
            arousal=float(row[count + 1]) if has_va else None,
        )
        for face, row in zip(faces, means, strict=True)
    ]


def _values(face: FacePrediction, has_va: bool) -> np.ndarray:
    va = [face.valence, face.arousal] if has_va else []
    return np.concatenate([face.probabilities, np.asarray(va, dtype=np.float64)])
