"""Losses of the multi-task recipe: class-weighted cross-entropy (hard, smoothed or soft targets) and CCC.

Total (METHOD.md): ``CE + (1 - CCC_valence) / 2 + (1 - CCC_arousal) / 2``, CCC over the labelled samples.

>>> class_weights([0, 0, 0, 1], num_classes=2).tolist()
[1.0, 3.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F


def class_weights(labels: Sequence[int] | np.ndarray, num_classes: int) -> torch.Tensor:
    """``max_count / count_c`` per class (the largest class gets 1); classes with no samples get 0."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    weights = np.divide(counts.max(), counts, out=np.zeros_like(counts), where=counts > 0)
    return torch.tensor(weights, dtype=torch.float32)


def weighted_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Class-weighted cross-entropy, weighted mean over the batch.

    ``target`` is class indices (B,) or distributions (B, C). With smoothing ``e`` the target becomes
    ``q = (1 - e) q + e / C``; then ``loss = sum_ic w_c q_ic (-log p_ic) / sum_ic w_c q_ic``. For one-hot
    targets without smoothing this is ``torch.nn.functional.cross_entropy(logits, target, weight)``.
    """
    num_classes = logits.shape[1]
    q = F.one_hot(target, num_classes).to(logits.dtype) if target.ndim == 1 else target.to(logits.dtype)
    if label_smoothing > 0:
        q = (1 - label_smoothing) * q + label_smoothing / num_classes
    if weight is not None:
        q = q * weight.to(logits.dtype)
    log_p = F.log_softmax(logits, dim=1)
    return -(q * log_p).sum() / q.sum().clamp_min(torch.finfo(logits.dtype).tiny)


def concordance(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """CCC = 2 cov(x, y) / (var x + var y + (mean x - mean y)^2), population moments, differentiable."""
    mx, my = x.mean(), y.mean()
    cov = ((x - mx) * (y - my)).mean()
    return 2 * cov / (x.var(unbiased=False) + y.var(unbiased=False) + (mx - my) ** 2 + eps)


def ccc_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - CCC`` over the batch (one variable: 1-d tensors)."""
    return 1 - concordance(prediction, target)


class LossParts(NamedTuple):
    total: torch.Tensor
    expression: torch.Tensor
    valence_arousal: torch.Tensor | None


def multitask_loss(
    logits: torch.Tensor,
    valence_arousal: torch.Tensor | None,
    targets: dict[str, torch.Tensor],
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    soft_targets: bool = False,
) -> LossParts:
    """Weighted CE (+ (1 - CCC_V)/2 + (1 - CCC_A)/2 when the model has VA and >= 2 samples are labelled).

    ``targets`` as :class:`faceaffect.train.datasets.FaceDataset` yields them; with ``soft_targets`` rows that
    have a vote distribution use it instead of the one-hot majority label.
    """
    target: torch.Tensor = targets["expression"]
    if soft_targets:
        votes = targets["votes"].to(logits.dtype)
        has_votes = torch.isfinite(votes).all(dim=1, keepdim=True)
        one_hot = F.one_hot(target, logits.shape[1]).to(logits.dtype)
        target = torch.where(has_votes, votes.nan_to_num(0.0), one_hot)
    ce = weighted_cross_entropy(logits, target, weight, label_smoothing)
    if valence_arousal is None:
        return LossParts(ce, ce, None)
    va_target = targets["valence_arousal"].to(valence_arousal.dtype)
    labelled = torch.isfinite(va_target).all(dim=1)
    if int(labelled.sum()) < 2:
        return LossParts(ce, ce, None)
    pred, true = valence_arousal[labelled].float(), va_target[labelled].float()
    va = (ccc_loss(pred[:, 0], true[:, 0]) + ccc_loss(pred[:, 1], true[:, 1])) / 2
    return LossParts(ce + va, ce, va)
