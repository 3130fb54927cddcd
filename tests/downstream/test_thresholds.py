"""Per-AU threshold search: agrees with brute force, ignores unlabelled entries, helps biased scores."""

from __future__ import annotations

import numpy as np

from faceaffect.downstream.thresholds import DEFAULT_GRID, apply_thresholds, mean_f1, search_thresholds
from faceaffect.metrics import binary_f1


def test_search_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=(300, 4))
    scores = np.clip(labels * 0.3 + rng.uniform(0, 0.7, size=labels.shape), 0, 1)
    found = search_thresholds(labels, scores)
    for j in range(4):
        best = max(binary_f1(labels[:, j], scores[:, j] >= t) for t in DEFAULT_GRID)
        assert binary_f1(labels[:, j], scores[:, j] >= found[j]) == best
        assert found[j] in DEFAULT_GRID


def test_unlabelled_entries_are_ignored() -> None:
    labels = np.array([[1], [1], [0], [0], [-1], [-1]])
    scores = np.array([[0.8], [0.7], [0.2], [0.3], [0.9], [0.0]])
    assert 0.3 < search_thresholds(labels, scores)[0] <= 0.7
    assert mean_f1(labels, scores, 0.5) == 1.0


def test_tuning_improves_biased_noisy_scores() -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random((2000, 12)) < np.linspace(0.05, 0.5, 12)).astype(np.int8)
    shift = np.linspace(-0.3, 0.3, 12)  # each AU's scores are off by its own bias
    probabilities = np.clip(
        0.5 + shift + 0.25 * (labels - 0.5) + rng.normal(scale=0.15, size=labels.shape), 0, 1
    )
    validation, test = slice(0, 1000), slice(1000, 2000)
    thresholds = search_thresholds(labels[validation], probabilities[validation])
    assert (
        mean_f1(labels[test], probabilities[test], thresholds)
        > mean_f1(labels[test], probabilities[test], 0.5) + 0.05
    )
    assert np.corrcoef(thresholds, shift)[0, 1] > 0.9  # the thresholds follow the biases
    assert apply_thresholds(probabilities, thresholds).dtype == np.int8
