"""Evaluate a multi-task model on labelled faces: accuracy-8/-7, macro-F1, recall, confusion, VA CCC/RMSE."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from faceaffect import metrics
from faceaffect.hub.registry import ModelConfig


def model_outputs(model: nn.Module, inputs: torch.Tensor, config: ModelConfig) -> tuple[torch.Tensor, ...]:
    """Split ``model(inputs)`` (B, num_outputs) into logits (B, C) and valence-arousal (B, 2) or None.

    ``model`` is a MultiTaskModel, its head (fed embeddings) or either wrapped (e.g. DistributedDataParallel).
    """
    out = model(inputs)
    n = config.num_classes
    return out[:, :n], (out[:, n:] if config.has_va else None)


@torch.inference_mode()
def predict(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    *,
    batch_size: int = 128,
    device: str = "cpu",
    num_workers: int = 0,
    amp: bool = False,
) -> dict[str, np.ndarray]:
    """Logits, valence-arousal (NaN when the model has none) and the dataset's targets, as numpy arrays."""
    config: ModelConfig = model.config
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    was_training = model.training
    model.eval()
    parts: dict[str, list[np.ndarray]] = {"logits": [], "va": [], "expression": [], "va_true": []}
    try:
        for images, targets in loader:
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device.startswith("cuda")):
                logits, va = model_outputs(model, images.to(device), config)
            parts["logits"].append(logits.float().cpu().numpy())
            parts["va"].append(np.full((len(images), 2), np.nan) if va is None else va.float().cpu().numpy())
            parts["expression"].append(targets["expression"].numpy())
            parts["va_true"].append(targets["valence_arousal"].numpy())
    finally:
        model.train(was_training)
    return {key: np.concatenate(value) if value else np.zeros((0,)) for key, value in parts.items()}


def classification_report(logits: np.ndarray, true: np.ndarray, labels: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy over the model's labels (``accuracy_8`` or ``accuracy_7``), accuracy-7 of an 8-class model
    (Contempt images and the Contempt logit dropped), macro-F1, per-class recall and the confusion matrix.
    """
    num_classes = len(labels)
    pred = logits.argmax(axis=1)
    report: dict[str, Any] = {f"accuracy_{num_classes}": metrics.accuracy(true, pred)}
    if num_classes == 8 and "Contempt" in labels:
        c = labels.index("Contempt")
        keep = true != c
        if keep.any():
            pred7 = np.delete(logits[keep], c, axis=1).argmax(axis=1)
            pred7 = pred7 + (pred7 >= c)  # back to 8-class indices
            report["accuracy_7"] = metrics.accuracy(true[keep], pred7)
    report["macro_f1"] = metrics.macro_f1(true, pred, num_classes)
    recall = metrics.per_class_recall(true, pred, num_classes)
    report["per_class_recall"] = dict(zip(labels, map(float, recall), strict=True))
    report["confusion_matrix"] = metrics.confusion_matrix(true, pred, num_classes).tolist()
    return report


def regression_report(va_pred: np.ndarray, va_true: np.ndarray) -> dict[str, float]:
    """CCC and RMSE of valence and arousal over the labelled rows; predictions clipped to [-1, 1]."""
    labelled = np.isfinite(va_true).all(axis=1) & np.isfinite(va_pred).all(axis=1)
    if labelled.sum() < 2:
        return {}
    pred, true = np.clip(va_pred[labelled], -1.0, 1.0), va_true[labelled]
    report = {}
    for i, name in enumerate(("valence", "arousal")):
        report[f"{name}_ccc"] = metrics.ccc(true[:, i], pred[:, i])
        report[f"{name}_rmse"] = metrics.rmse(true[:, i], pred[:, i])
    return report


def evaluate(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    *,
    batch_size: int = 128,
    device: str = "cpu",
    num_workers: int = 0,
    amp: bool = False,
) -> dict[str, Any]:
    """Metrics of ``model`` (a MultiTaskModel) on ``dataset`` (a FaceDataset with the model's labels).

    Keys: ``n``, ``accuracy_8`` (8-class models) and/or ``accuracy_7``, ``macro_f1``, ``per_class_recall``
    (label -> recall), ``confusion_matrix`` (rows true, columns predicted), and ``valence_ccc``,
    ``arousal_ccc``, ``valence_rmse``, ``arousal_rmse`` when both model and data have valence-arousal.
    """
    if len(dataset) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    out = predict(model, dataset, batch_size=batch_size, device=device, num_workers=num_workers, amp=amp)
    report: dict[str, Any] = {"n": len(out["expression"])}
    report.update(classification_report(out["logits"], out["expression"], model.config.labels))
    report.update(regression_report(out["va"], out["va_true"]))
    return report
