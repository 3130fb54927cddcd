"""Per-label decision thresholds for multi-label outputs (action units), searched on validation data.

METHOD.md: per-AU thresholds searched over 0.1-0.9; the AU score is the mean F1 over the 12 AUs.

>>> y = np.array([[1], [1], [0], [0]]); p = np.array([[0.4], [0.3], [0.2], [0.1]])
>>> search_thresholds(y, p).round(2).tolist()
[0.3]
"""

from __future__ import annotations

import numpy as np

from faceaffect.metrics import binary_f1

DEFAULT_GRID: np.ndarray = np.round(np.arange(0.10, 0.9001, 0.05), 2)


def apply_thresholds(probabilities: np.ndarray, thresholds: np.ndarray | float) -> np.ndarray:
    """0/1 decisions (int8): probability >= threshold, one threshold per column or one for all."""
    return (np.asarray(probabilities) >= np.asarray(thresholds, dtype=np.float64)).astype(np.int8)


def per_label_f1(labels: np.ndarray, decisions: np.ndarray) -> np.ndarray:
    """F1 of each column; entries labelled -1 are left out of their column."""
    labels, decisions = np.atleast_2d(labels), np.atleast_2d(decisions)
    scores = []
    for j in range(labels.shape[1]):
        known = labels[:, j] >= 0
        scores.append(binary_f1(labels[known, j], decisions[known, j]) if known.any() else 0.0)
    return np.asarray(scores)


def mean_f1(labels: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray | float = 0.5) -> float:
    """Mean per-label F1 after thresholding."""
    return float(per_label_f1(labels, apply_thresholds(probabilities, thresholds)).mean())


def search_thresholds(
    labels: np.ndarray, probabilities: np.ndarray, grid: np.ndarray = DEFAULT_GRID
) -> np.ndarray:
    """For each column, the grid value with the best F1 (ties: the one nearest 0.5).

    ``labels`` (N, K) of 0/1 with -1 for unknown entries; ``probabilities`` (N, K).
    """
    labels, probabilities = np.atleast_2d(labels), np.atleast_2d(probabilities)
    if labels.shape != probabilities.shape:
        raise ValueError(f"labels {labels.shape} and probabilities {probabilities.shape} differ in shape")
    grid = np.asarray(grid, dtype=np.float64)
    thresholds = np.full(labels.shape[1], 0.5)
    for j in range(labels.shape[1]):
        known = labels[:, j] >= 0
        if not known.any():
            continue
        y = labels[known, j].astype(bool)
        decided = probabilities[known, j][:, None] >= grid[None, :]  # (n, G)
        tp = (decided & y[:, None]).sum(axis=0)
        denominator = decided.sum(axis=0) + y.sum()
        f1 = np.divide(2 * tp, denominator, out=np.zeros(len(grid)), where=denominator > 0)
        best = np.flatnonzero(f1 >= f1.max() - 1e-12)
        thresholds[j] = grid[best[np.argmin(np.abs(grid[best] - 0.5))]]
    return thresholds
