"""Evaluation metrics as pure numpy functions.

>>> round(ccc([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]), 6)
1.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike


def _pair(y_true: ArrayLike, y_pred: ArrayLike, dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Targets and predictions as flat arrays of ``dtype``, of the same non-zero length."""
    a, b = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if a.shape != b.shape:
        raise ValueError(f"length mismatch: {a.size} targets vs {b.size} predictions")
    if a.size == 0:
        raise ValueError("cannot compute a metric over zero samples")
    return a.astype(dtype), b.astype(dtype)


def ccc(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Concordance correlation coefficient: 2 cov(x, y) / (var x + var y + (mean x - mean y)^2).

    Population (biased) moments, as in the ABAW challenges. 0.0 when both series are constant and equal-mean
    is undefined; it returns 1.0 only for identical series.
    """
    x, y = _pair(y_true, y_pred)
    mx, my = x.mean(), y.mean()
    cov = np.mean((x - mx) * (y - my))
    denominator = x.var() + y.var() + (mx - my) ** 2
    if denominator == 0.0:
        return 1.0
    return float(2.0 * cov / denominator)


def pearson(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Pearson correlation coefficient; 0.0 when either series is constant."""
    x, y = _pair(y_true, y_pred)
    xc, yc = x - x.mean(), y - y.mean()
    denominator = np.sqrt((xc**2).sum() * (yc**2).sum())
    return float((xc * yc).sum() / denominator) if denominator > 0 else 0.0


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error."""
    x, y = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((x - y) ** 2)))


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of exact matches between integer labels."""
    a, b = _pair(y_true, y_pred, np.int64)
    return float(np.mean(a == b))


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """Counts with rows = true class, columns = predicted class."""
    a, b = _pair(y_true, y_pred, np.int64)
    n = num_classes if num_classes is not None else int(max(a.max(), b.max())) + 1
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (a, b), 1)
    return matrix


def per_class_f1(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """F1 of each class (0 where a class has neither true nor predicted samples)."""
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(matrix).astype(np.float64)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


def per_class_recall(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """Recall of each class (0 where a class has no true samples)."""
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    support = matrix.sum(axis=1).astype(np.float64)
    return np.divide(np.diag(matrix), support, out=np.zeros_like(support), where=support > 0)


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> float:
    """Unweighted mean of the per-class F1 scores over ``num_classes`` (default: classes seen)."""
    return float(per_class_f1(y_true, y_pred, num_classes).mean())


def binary_f1(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """F1 of the positive class for 0/1 labels (0 when there are no positives at all)."""
    return float(per_class_f1(y_true, y_pred, num_classes=2)[1])


def kl_divergence(
    p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray, eps: float = 1e-12
) -> float:
    """KL(p || q) in nats between two distributions (each normalised to sum 1; q floored at ``eps``)."""
    p_arr, q_arr = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p_arr.shape != q_arr.shape:
        raise ValueError(f"shape mismatch: {p_arr.shape} vs {q_arr.shape}")
    if (p_arr < 0).any() or (q_arr < 0).any():
        raise ValueError("distributions must be non-negative")
    p_arr, q_arr = p_arr / p_arr.sum(), np.maximum(q_arr / q_arr.sum(), eps)
    mask = p_arr > 0
    return float(np.sum(p_arr[mask] * np.log(p_arr[mask] / q_arr[mask])))
