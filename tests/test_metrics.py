"""Metrics against numpy/scipy/scikit-learn references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from faceaffect import metrics

RNG = np.random.default_rng(0)


def reference_ccc(x: np.ndarray, y: np.ndarray) -> float:
    covariance = np.cov(x, y, bias=True)[0, 1]
    return 2 * covariance / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


@pytest.mark.parametrize("seed", range(5))
def test_ccc_and_pearson_match_references(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=200)
    y = 0.6 * x + rng.normal(scale=0.5, size=200) + 0.3
    assert metrics.ccc(x, y) == pytest.approx(reference_ccc(x, y), abs=1e-12)
    assert metrics.pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert metrics.rmse(x, y) == pytest.approx(np.sqrt(skm.mean_squared_error(x, y)), abs=1e-12)


def test_ccc_penalises_bias_and_scale_unlike_pearson() -> None:
    x = RNG.normal(size=100)
    assert metrics.pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert metrics.ccc(x, 2 * x + 1) < 0.7
    assert metrics.ccc(x, x) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 8, size=300)
    y_pred = np.where(rng.random(300) < 0.5, y_true, rng.integers(0, 8, size=300))
    labels = list(range(8))
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert metrics.macro_f1(y_true, y_pred, 8) == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)
    )
    np.testing.assert_allclose(
        metrics.per_class_f1(y_true, y_pred, 8),
        skm.f1_score(y_true, y_pred, average=None, labels=labels, zero_division=0),
    )
    np.testing.assert_allclose(
        metrics.per_class_recall(y_true, y_pred, 8),
        skm.recall_score(y_true, y_pred, average=None, labels=labels, zero_division=0),
    )
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred, 8), skm.confusion_matrix(y_true, y_pred, labels=labels)
    )


def test_binary_f1_matches_sklearn() -> None:
    y_true = RNG.integers(0, 2, size=100)
    y_pred = RNG.integers(0, 2, size=100)
    assert metrics.binary_f1(y_true, y_pred) == pytest.approx(skm.f1_score(y_true, y_pred))


def test_kl_divergence_matches_scipy() -> None:
    p = np.array([14445, 24915, 10780, 10637, 10535, 10112, 8878], dtype=float)
    q = RNG.random(7) + 0.1
    assert metrics.kl_divergence(p, q) == pytest.approx(stats.entropy(p, q), abs=1e-12)
    assert metrics.kl_divergence(p, p) == pytest.approx(0.0)


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="length mismatch"):
        metrics.ccc([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="zero samples"):
        metrics.accuracy([], [])
