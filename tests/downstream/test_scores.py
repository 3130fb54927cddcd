"""Challenge scores against scikit-learn and scipy references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import f1_score

from faceaffect.downstream.scores import decisions, score_report, task_score
from faceaffect.metrics import ccc


def test_macro_f1_is_sklearns_over_the_classes_that_occur() -> None:
    rng = np.random.default_rng(0)
    labels = rng.choice([0, 2, 4, 5], size=300)
    predicted = np.where(rng.random(300) < 0.6, labels, rng.choice([0, 1, 4], size=300))
    assert task_score("expr", labels, predicted) == pytest.approx(
        f1_score(labels, predicted, average="macro")
    )
    report = score_report("expr", labels, predicted)
    assert report["Fear"] is None and report["Anger"] == 0.0  # Fear never occurs; Anger is only predicted


def test_regression_and_multilabel_scores() -> None:
    rng = np.random.default_rng(1)
    truth = rng.uniform(-1, 1, size=(200, 2))
    guess = truth * 0.5 + rng.normal(scale=0.3, size=truth.shape)
    assert task_score("va", truth, guess) == pytest.approx(
        (ccc(truth[:, 0], guess[:, 0]) + ccc(truth[:, 1], guess[:, 1])) / 2
    )
    intensities = rng.uniform(0, 1, size=(50, 6))
    noisy = intensities + rng.normal(scale=0.3, size=intensities.shape)
    assert task_score("emi", intensities, noisy) == pytest.approx(
        np.mean([pearsonr(intensities[:, j], noisy[:, j])[0] for j in range(6)])
    )
    au = rng.integers(0, 2, size=(100, 12))
    flipped = np.where(rng.random(au.shape) < 0.2, 1 - au, au)
    assert task_score("au", au, flipped) == pytest.approx(
        np.mean([f1_score(au[:, j], flipped[:, j]) for j in range(12)])
    )


def test_decisions() -> None:
    outputs = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.9]])
    assert decisions("expr", outputs).tolist() == [1, 2]
    assert decisions("au", outputs, np.array([0.5, 0.5, 0.95])).tolist() == [[0, 1, 0], [1, 0, 0]]
    assert decisions("va", np.array([[1.3, -2.0]])).tolist() == [[1.0, -1.0]]
