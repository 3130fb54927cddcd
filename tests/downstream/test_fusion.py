"""Late fusion with per-class weights."""

from __future__ import annotations

import numpy as np

from faceaffect.downstream.fusion import fuse, search_fusion_weights
from faceaffect.metrics import pearson


def test_fuse_is_a_per_class_weighted_mean() -> None:
    a, b = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[5.0, 6.0], [7.0, 8.0]])
    np.testing.assert_allclose(fuse(a, b, np.array([1.0, 0.25])), [[1.0, 5.0], [3.0, 7.0]])


def test_weights_follow_the_better_source_of_each_class() -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 1, size=(400, 4))
    noise_a, noise_b = np.array([0.05, 0.05, 1.0, 1.0]), np.array([1.0, 1.0, 0.05, 0.05])
    a = truth + rng.normal(size=truth.shape) * noise_a
    b = truth + rng.normal(size=truth.shape) * noise_b

    def score(fused: np.ndarray) -> float:
        return float(np.mean([pearson(truth[:, j], fused[:, j]) for j in range(4)]))

    weights, best = search_fusion_weights(a, b, score)
    assert (weights[:2] >= 0.8).all() and (weights[2:] <= 0.2).all()
    assert best > max(score(a), score(b)) + 0.1


def test_fusion_is_never_worse_than_either_input() -> None:
    rng = np.random.default_rng(1)
    truth = rng.uniform(0, 1, size=(300, 3))
    good, useless = truth + rng.normal(scale=0.1, size=truth.shape), rng.uniform(0, 1, size=truth.shape)

    def score(fused: np.ndarray) -> float:
        return float(np.mean([pearson(truth[:, j], fused[:, j]) for j in range(3)]))

    for first, second in ((good, useless), (useless, good)):
        _, best = search_fusion_weights(first, second, score, sweeps=0)
        assert best >= score(good)
