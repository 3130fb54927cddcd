"""The challenge score of each downstream task, and its per-label detail, from numpy arrays.

- va: mean of CCC(valence) and CCC(arousal); expr: macro-F1 over the 8 classes; au: mean F1 over the 12 AUs;
  ce: macro-F1 over the 7 compound classes; emi: mean Pearson r over the 6 intensities.

Macro-F1 leaves out classes that occur neither in the labels nor in the predictions (their F1 is undefined;
sklearn's macro average does the same); on the challenge validation sets every class occurs.

``outputs`` are the final decisions for classification tasks (class indices, or 0/1 for AUs) and the values
for regression tasks; only labelled rows may be passed.

>>> round(task_score("expr", np.array([0, 1, 1]), np.array([0, 1, 0])), 4)
0.6667
"""

from __future__ import annotations

import numpy as np

from faceaffect.downstream.abaw import ABAW_AU, ABAW_EXPR, ABAW_VA, COMPOUND, EMI
from faceaffect.downstream.thresholds import per_label_f1
from faceaffect.metrics import ccc, pearson, per_class_f1

TASK_LABELS: dict[str, tuple[str, ...]] = {
    "va": ABAW_VA,
    "expr": ABAW_EXPR,
    "au": ABAW_AU,
    "ce": COMPOUND,
    "emi": EMI,
}


def decisions(task: str, outputs: np.ndarray, thresholds: np.ndarray | float = 0.5) -> np.ndarray:
    """Final predictions from head outputs: argmax for classes, thresholds for AUs, values otherwise."""
    if task in ("expr", "ce"):
        return outputs.argmax(axis=1)
    if task == "au":
        return (outputs >= np.asarray(thresholds)).astype(np.int8)
    return np.clip(outputs, -1.0, 1.0) if task == "va" else outputs


def per_label_scores(task: str, labels: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """One score per label of ``task`` (CCC, F1 or Pearson r)."""
    if task == "va":
        return np.array([ccc(labels[:, j], outputs[:, j]) for j in range(2)])
    if task == "emi":
        return np.array([pearson(labels[:, j], outputs[:, j]) for j in range(labels.shape[1])])
    if task == "au":
        return per_label_f1(labels, outputs)
    count = len(TASK_LABELS[task])
    f1 = per_class_f1(labels, outputs, num_classes=count)
    seen = np.isin(np.arange(count), np.concatenate([np.ravel(labels), np.ravel(outputs)]))
    return np.where(seen, f1, np.nan)


def task_score(task: str, labels: np.ndarray, outputs: np.ndarray) -> float:
    """The task's challenge score: the mean of :func:`per_label_scores` (over the classes that occur)."""
    return float(np.nanmean(per_label_scores(task, labels, outputs)))


def score_report(task: str, labels: np.ndarray, outputs: np.ndarray) -> dict[str, float | None]:
    """The score and one entry per label (None for a class absent from labels and predictions), for JSON."""
    detail = per_label_scores(task, labels, outputs)
    return {
        "score": float(np.nanmean(detail)),
        **{
            name: None if np.isnan(v) else float(v) for name, v in zip(TASK_LABELS[task], detail, strict=True)
        },
    }
