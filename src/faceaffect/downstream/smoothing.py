"""Per-video temporal post-processing: filling frames without a face, centred mean smoothing, window search.

METHOD.md: predictions of frames without a face are linearly interpolated from their neighbours and, beyond
the last (or before the first) face, repeated; smoothing is a centred mean over frames ``[i - d, i + d]``.

>>> fill_missing([2, 4], np.array([[0.0], [1.0]]), n_frames=5).ravel().tolist()
[0.0, 0.0, 0.5, 1.0, 1.0]
>>> centred_mean(np.array([0.0, 3.0, 0.0]), 1).tolist()
[1.5, 1.0, 1.5]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

DEFAULT_WINDOWS: tuple[int, ...] = (0, 1, 2, 3, 5, 8, 12, 20, 30, 50, 75, 100)


def fill_missing(
    frames: ArrayLike,
    values: np.ndarray,
    n_frames: int,
    *,
    first_frame: int = 1,
    default: ArrayLike | None = None,
) -> np.ndarray:
    """Values for every frame ``first_frame .. first_frame + n_frames - 1`` from those of some frames.

    ``frames`` (M,) are frame numbers (sorted or not, no repeats) with ``values`` (M, ...). Frames between two
    known ones are linearly interpolated, frames before the first / after the last known one repeat it; known
    frames outside the range are ignored. With no known frame at all every row is ``default`` (zeros if None).
    """
    frames = np.asarray(frames, dtype=np.int64).ravel()
    values = np.asarray(values, dtype=np.float64)
    if len(frames) != len(values):
        raise ValueError(f"{len(frames)} frame numbers for {len(values)} rows of values")
    if len(np.unique(frames)) != len(frames):
        raise ValueError("frame numbers repeat; choose one face per frame first")
    rows = frames - first_frame
    keep = (rows >= 0) & (rows < n_frames)
    rows, values = rows[keep], values[keep]
    order = np.argsort(rows)
    rows, values = rows[order], values[order]
    tail = values.shape[1:]
    if len(rows) == 0:
        fill = np.zeros(tail) if default is None else np.broadcast_to(np.asarray(default, float), tail)
        return np.broadcast_to(fill, (n_frames, *tail)).copy()
    flat = values.reshape(len(rows), -1)
    grid = np.arange(n_frames)
    out = np.stack([np.interp(grid, rows, flat[:, j]) for j in range(flat.shape[1])], axis=1)
    return out.reshape(n_frames, *tail)


def centred_mean(values: np.ndarray, d: int) -> np.ndarray:
    """Mean over frames ``[i - d, i + d]`` along axis 0 (the window is cut at both ends of the video)."""
    if d < 0:
        raise ValueError(f"the smoothing half-width must be >= 0, got {d}")
    values = np.asarray(values, dtype=np.float64)
    if d == 0 or len(values) == 0:
        return values.copy()
    n = len(values)
    padded = np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0)])
    index = np.arange(n)
    lo, hi = np.maximum(index - d, 0), np.minimum(index + d + 1, n)
    counts = (hi - lo).reshape(-1, *([1] * (values.ndim - 1)))
    return (padded[hi] - padded[lo]) / counts


@dataclass(frozen=True)
class WindowSearch:
    """The best half-width ``d`` and the validation score of every candidate."""

    best: int
    scores: dict[int, float]


def search_window(
    series: Sequence[np.ndarray],
    score: Callable[[list[np.ndarray]], float],
    windows: Sequence[int] = DEFAULT_WINDOWS,
) -> WindowSearch:
    """Smooth every video's series with each ``d`` and keep the ``d`` whose ``score`` (higher is better) wins.

    Ties go to the smaller window.
    """
    if not windows:
        raise ValueError("no smoothing windows to search")
    scores = {int(d): float(score([centred_mean(s, int(d)) for s in series])) for d in sorted(set(windows))}
    best = max(scores, key=lambda d: (scores[d], -d))
    return WindowSearch(best, scores)
