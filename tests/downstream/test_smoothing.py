"""Frames without a face, centred mean smoothing, and the window search on a noisy signal."""

from __future__ import annotations

import numpy as np
import pytest

from faceaffect.downstream.smoothing import centred_mean, fill_missing, search_window
from faceaffect.metrics import ccc


def test_missing_frames_are_interpolated_and_repeated_at_the_ends() -> None:
    values = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 0.0]])
    filled = fill_missing([3, 5, 9], values, n_frames=11)
    assert filled.shape == (11, 2)
    np.testing.assert_allclose(filled[:, 0], [1, 1, 1, 2, 3, 3.5, 4, 4.5, 5, 5, 5])
    np.testing.assert_allclose(filled[3:5, 1], [20, 30])


def test_fill_missing_edge_cases() -> None:
    np.testing.assert_allclose(
        fill_missing([], np.zeros((0, 3)), 4, default=[0.2, 0.3, 0.5]), [[0.2, 0.3, 0.5]] * 4
    )
    np.testing.assert_allclose(fill_missing([2, 99], np.array([[7.0], [1.0]]), 3).ravel(), [7, 7, 7])
    np.testing.assert_allclose(
        fill_missing([1, 0], np.array([[4.0], [2.0]]), 3, first_frame=0).ravel(), [2, 4, 4]
    )
    with pytest.raises(ValueError, match="repeat"):
        fill_missing([1, 1], np.zeros((2, 1)), 3)


def naive_mean(values: np.ndarray, d: int) -> np.ndarray:
    return np.stack([values[max(0, i - d) : i + d + 1].mean(axis=0) for i in range(len(values))])


@pytest.mark.parametrize("d", [0, 1, 3, 50])
def test_centred_mean_matches_direct_windows(d: int) -> None:
    values = np.random.default_rng(d).normal(size=(37, 3))
    np.testing.assert_allclose(centred_mean(values, d), naive_mean(values, d))
    assert centred_mean(values[:, 0], d).shape == (37,)


def test_window_search_improves_a_noisy_signal() -> None:
    rng = np.random.default_rng(0)
    truths, noisy = [], []
    for _ in range(4):
        t = np.arange(600)
        truth = np.sin(2 * np.pi * t / rng.uniform(150, 250)) * 0.8
        truths.append(truth)
        noisy.append(truth + rng.normal(scale=0.8, size=t.shape))

    def score(series: list[np.ndarray]) -> float:
        return ccc(np.concatenate(truths), np.concatenate(series))

    search = search_window(noisy, score, windows=(0, 2, 5, 10, 20, 40, 200))
    assert search.scores[0] < 0.5 < search.scores[search.best]
    assert 5 <= search.best <= 40  # neither no smoothing nor over-smoothing
    assert search.scores[200] < search.scores[search.best]
