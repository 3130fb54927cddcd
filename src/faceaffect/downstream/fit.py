"""Training a head with its task's loss (METHOD.md), Adam, and early stopping on the validation score.

- va: ``1 - mean(CCC_valence, CCC_arousal)`` over the batch;
- expr: cross-entropy with class weights ``max_count / count_c``;
- au: binary cross-entropy weighting each AU's positives and negatives by ``n / (2 * count)``;
- emi: ``1 - mean Pearson r`` over the 6 intensities, over the batch.

>>> result = fit_head(head, x_train, y_train, x_val, y_val)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from faceaffect.core.errors import InputError
from faceaffect.downstream.heads import Head
from faceaffect.downstream.scores import TASK_LABELS, decisions, task_score
from faceaffect.train.losses import class_weights, concordance, weighted_cross_entropy

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
EpochCallback = Callable[[int, int, dict[str, float]], None]


def _pearson(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    xc, yc = x - x.mean(), y - y.mean()
    return (xc * yc).sum() / torch.sqrt((xc**2).sum() * (yc**2).sum() + eps)


def au_weights(labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-AU weights of positives and negatives, ``n / (2 * count)`` (1 for a class with no samples)."""
    labels = np.asarray(labels, dtype=np.float64)
    n = len(labels)
    positives = labels.sum(axis=0)
    negatives = n - positives
    pos = np.divide(n, 2 * positives, out=np.ones_like(positives), where=positives > 0)
    neg = np.divide(n, 2 * negatives, out=np.ones_like(negatives), where=negatives > 0)
    return torch.tensor(pos, dtype=torch.float32), torch.tensor(neg, dtype=torch.float32)


def task_loss(task: str, y_train: np.ndarray) -> Loss:
    """The loss of ``task`` on a head's raw outputs, with weights taken from the training labels."""
    if task == "va":
        return lambda raw, y: (
            1
            - (concordance(torch.tanh(raw[:, 0]), y[:, 0]) + concordance(torch.tanh(raw[:, 1]), y[:, 1])) / 2
        )
    if task == "expr":
        weight = class_weights(y_train, len(TASK_LABELS["expr"]))
        return lambda raw, y: weighted_cross_entropy(raw, y.long(), weight)
    if task == "au":
        pos, neg = au_weights(y_train)
        return lambda raw, y: F.binary_cross_entropy_with_logits(raw, y, weight=y * pos + (1 - y) * neg)
    if task == "emi":

        def pearson_loss(raw: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            p = torch.sigmoid(raw)
            return 1 - torch.stack([_pearson(p[:, j], y[:, j]) for j in range(y.shape[1])]).mean()

        return pearson_loss
    raise InputError(f"no training loss for task {task!r}")


@dataclass
class FitResult:
    """Best epoch (1-based), its validation score, and per-epoch figures."""

    best_epoch: int
    best_score: float
    history: list[dict[str, float]] = field(default_factory=list)


def predict_array(head: Head, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Head outputs for a (N, in_dim) array, in batches, without autograd."""
    head.eval()
    with torch.inference_mode():
        parts = [
            head(torch.as_tensor(x[i : i + batch_size], dtype=torch.float32)).numpy()
            for i in range(0, len(x), batch_size)
        ]
    return np.concatenate(parts) if parts else np.zeros((0, len(head.config.outputs)), np.float32)


def fit_head(
    head: Head,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    epochs: int = 100,
    patience: int = 10,
    lr: float = 1e-3,
    batch_size: int = 256,
    weight_decay: float = 0.0,
    seed: int = 0,
    threads: int | None = 1,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Train ``head`` in place; its weights end as those of the epoch with the best validation score.

    ``threads`` caps torch's CPU threads while training (restored afterwards; None leaves them): heads are so
    small that one thread is fastest, several cost up to 10x more per step on a busy 2-core machine.
    """
    with torch_threads(threads):
        task = head.config.task
        if len(x_train) < 2 or len(x_val) < 1:
            raise InputError(
                f"too few samples to train a {task} head: {len(x_train)} train, {len(x_val)} validation"
            )
        torch.manual_seed(seed)
        x = torch.as_tensor(x_train, dtype=torch.float32)
        y = torch.as_tensor(y_train, dtype=torch.float32)
        head.set_standardisation(x.mean(dim=0), x.std(dim=0, unbiased=False))
        loss_fn = task_loss(task, y_train)
        optimiser = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
        generator = torch.Generator().manual_seed(seed)
        batch = max(2, min(batch_size, len(x)))
        result = FitResult(best_epoch=0, best_score=-np.inf)
        best_state = copy.deepcopy(head.state_dict())
        for epoch in range(1, epochs + 1):
            head.train()
            order = torch.randperm(len(x), generator=generator)
            losses = []
            for start in range(0, len(x), batch):
                index = order[start : start + batch]
                if len(index) < 2:
                    continue
                loss = loss_fn(head.raw(x[index]), y[index])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
            score = task_score(task, y_val, decisions(task, predict_array(head, x_val)))
            metrics = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_score": score}
            result.history.append(metrics)
            if on_epoch is not None:
                on_epoch(epoch, epochs, metrics)
            if score > result.best_score + 1e-6:
                result.best_epoch, result.best_score = epoch, score
                best_state = copy.deepcopy(head.state_dict())
            elif epoch - result.best_epoch >= patience:
                break
        head.load_state_dict(best_state)
        head.eval()
        return result


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Cap torch's CPU threads inside the block (None: leave them), restoring the previous number after."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
