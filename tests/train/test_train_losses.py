"""Losses equal values worked out with numpy straight from their formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from faceaffect.metrics import ccc
from faceaffect.train.losses import ccc_loss, class_weights, multitask_loss, weighted_cross_entropy

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(6, 4))
TARGET = np.array([0, 1, 1, 2, 3, 3])
WEIGHT = np.array([1.0, 0.5, 2.0, 1.5])


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _ccc(x: np.ndarray, y: np.ndarray) -> float:
    cov = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_class_weights_are_max_count_over_count() -> None:
    assert class_weights([0, 0, 0, 1, 1, 2], num_classes=4).tolist() == [1.0, 1.5, 3.0, 0.0]


def test_weighted_cross_entropy_hard_targets() -> None:
    log_p = _log_softmax(LOGITS)
    w = WEIGHT[TARGET]
    expected = -(w * log_p[np.arange(6), TARGET]).sum() / w.sum()
    logits, target, weight = torch.tensor(LOGITS), torch.tensor(TARGET), torch.tensor(WEIGHT)
    loss = weighted_cross_entropy(logits, target, weight)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, target, weight).item(), rel=1e-12)


def test_weighted_cross_entropy_with_label_smoothing_and_soft_targets() -> None:
    log_p = _log_softmax(LOGITS)
    q = 0.9 * np.eye(4)[TARGET] + 0.1 / 4
    expected = -(WEIGHT * q * log_p).sum() / (WEIGHT * q).sum()
    loss = weighted_cross_entropy(torch.tensor(LOGITS), torch.tensor(TARGET), torch.tensor(WEIGHT), 0.1)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    votes = RNG.dirichlet(np.ones(4), size=6)
    expected_soft = -(WEIGHT * votes * log_p).sum() / (WEIGHT * votes).sum()
    soft = weighted_cross_entropy(torch.tensor(LOGITS), torch.tensor(votes), torch.tensor(WEIGHT))
    assert soft.item() == pytest.approx(expected_soft, rel=1e-12)


def test_ccc_loss_is_one_minus_ccc() -> None:
    x, y = RNG.normal(size=32), RNG.normal(size=32) * 0.5 + 0.2
    loss = ccc_loss(torch.tensor(x), torch.tensor(y)).item()
    assert loss == pytest.approx(1 - _ccc(x, y), rel=1e-7)
    assert loss == pytest.approx(1 - ccc(y, x), rel=1e-7)
    assert ccc_loss(torch.tensor(x), torch.tensor(x)).item() == pytest.approx(0.0, abs=1e-7)


def test_multitask_total_uses_labelled_rows_only() -> None:
    va_pred = RNG.normal(size=(6, 2))
    va_true = RNG.uniform(-1, 1, size=(6, 2))
    va_true[4] = np.nan  # unlabelled row
    targets = {"expression": torch.tensor(TARGET), "valence_arousal": torch.tensor(va_true)}
    parts = multitask_loss(torch.tensor(LOGITS), torch.tensor(va_pred), targets, torch.tensor(WEIGHT))
    keep = np.isfinite(va_true).all(axis=1)
    ce = weighted_cross_entropy(torch.tensor(LOGITS), torch.tensor(TARGET), torch.tensor(WEIGHT)).item()
    va = (1 - _ccc(va_pred[keep, 0], va_true[keep, 0])) / 2 + (
        1 - _ccc(va_pred[keep, 1], va_true[keep, 1])
    ) / 2
    assert parts.expression.item() == pytest.approx(ce, rel=1e-12)
    assert parts.valence_arousal.item() == pytest.approx(va, rel=1e-6)
    assert parts.total.item() == pytest.approx(ce + va, rel=1e-6)
    no_va = multitask_loss(torch.tensor(LOGITS), None, targets)
    assert no_va.valence_arousal is None and no_va.total is no_va.expression


def test_multitask_soft_targets_fall_back_to_one_hot_without_votes() -> None:
    votes = RNG.dirichlet(np.ones(4), size=6)
    votes[1] = np.nan
    targets = {"expression": torch.tensor(TARGET), "votes": torch.tensor(votes)}
    loss = multitask_loss(torch.tensor(LOGITS), None, targets, soft_targets=True).total.item()
    q = votes.copy()
    q[1] = np.eye(4)[TARGET[1]]
    expected = -(q * _log_softmax(LOGITS)).sum() / q.sum()
    assert loss == pytest.approx(expected, rel=1e-12)
