"""Late fusion of two models' outputs with one weight per class, chosen on validation data.

``fused[:, c] = w[c] * first[:, c] + (1 - w[c]) * second[:, c]``. The weights are searched by coordinate
ascent over a grid (a few sweeps), which is exact for metrics that are a mean of per-class scores and a good
search for argmax-based ones such as macro-F1.

>>> fuse(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), np.array([0.25, 0.5])).tolist()
[[0.25, 0.5]]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DEFAULT_GRID: np.ndarray = np.round(np.linspace(0.0, 1.0, 11), 2)


def fuse(first: np.ndarray, second: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-class weighted mean of two (N, K) outputs."""
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if first.shape != second.shape:
        raise ValueError(f"outputs to fuse differ in shape: {first.shape} vs {second.shape}")
    weights = np.asarray(weights, dtype=np.float64)
    return weights * first + (1.0 - weights) * second


def search_fusion_weights(
    first: np.ndarray,
    second: np.ndarray,
    score: Callable[[np.ndarray], float],
    *,
    grid: np.ndarray = DEFAULT_GRID,
    sweeps: int = 3,
) -> tuple[np.ndarray, float]:
    """Per-class weights maximising ``score(fused)``; returns (weights, score).

    The search starts from the best of 0.5, 1 (first only) and 0 (second only) for every class, so the fused
    score is never below that of either input on the data it was chosen on.
    """
    starts = [np.full(np.asarray(first).shape[1], value) for value in (0.5, 1.0, 0.0)]
    results = [score(fuse(first, second, start)) for start in starts]
    chosen = int(np.argmax(results))  # the first maximum: 0.5 wins ties
    weights, best = starts[chosen], results[chosen]
    for _ in range(sweeps):
        improved = False
        for c in range(len(weights)):
            for value in grid:
                trial = weights.copy()
                trial[c] = value
                result = score(fuse(first, second, trial))
                if result > best + 1e-12:
                    best, weights, improved = result, trial, True
        if not improved:
            break
    return weights, float(best)
