"""Fitting one head: its task's loss (METHOD.md) plus an L2 penalty, exactly for linear heads, by Adam else.

Losses on a head's raw outputs:

- va: ``1 - mean(CCC_valence, CCC_arousal)`` over the batch (after tanh);
- expr: cross-entropy with class weights ``max_count / count_c``, capped at ``max_class_weight``;
- au: binary cross-entropy weighting each AU's positives and negatives by ``n / (2 * count)``, the ratio of
  the two capped at ``max_class_weight`` (a rare AU's positives weigh at most that many negatives);
- emi: ``1 - mean Pearson r`` over the 6 intensities, over the batch (after sigmoid);
- the ridge baselines: half the mean squared error of the raw outputs.

The L2 penalty is ``weight_decay / 2`` times the squared norm of the layers' weights (not the biases), on
standardised inputs. A linear head's problem is small and (but for CCC and Pearson) convex, so
:func:`fit_linear` solves it with full-batch L-BFGS (it holds a standardised copy of its rows: the search
gives it at most ``search_rows``); heads with a hidden layer, and every head refitted on more rows than
that, train with Adam on mini-batches and stop early on the validation loss (:func:`fit_adam`).

>>> result = fit_adam(head, loss, x_train, y_train, x_val, y_val, weight_decay=1e-3)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceaffect.core.errors import InputError
from faceaffect.downstream.heads import Head
from faceaffect.downstream.scores import TASK_LABELS
from faceaffect.train.losses import class_weights, concordance, weighted_cross_entropy

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LBFGS_ITERATIONS = 300


def _pearson(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    xc, yc = x - x.mean(), y - y.mean()
    return (xc * yc).sum() / torch.sqrt((xc**2).sum() * (yc**2).sum() + eps)


def expr_weights(labels: np.ndarray, cap: float | None = None) -> torch.Tensor:
    """METHOD.md's class weights ``max_count / count_c`` of the ABAW classes, at most ``cap`` (None: no cap).

    >>> expr_weights(np.array([0] * 20 + [1] * 2 + [2]), cap=5.0).tolist()
    [1.0, 5.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    weights = class_weights(labels, len(TASK_LABELS["expr"]))
    return weights if cap is None else weights.clamp(max=cap)


def au_weights(labels: np.ndarray, cap: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-AU weights of positives and negatives, ``n / (2 * count)`` (1 for a side with no samples).

    With ``cap``, a positive weighs at most ``cap`` negatives (or the other way round); the weights are then
    scaled so that they still average 1 over the samples.

    >>> [round(float(w[0]), 3) for w in au_weights(np.array([[1], [0], [0], [0]]))]
    [2.0, 0.667]
    """
    labels = np.asarray(labels, dtype=np.float64)
    n = len(labels)
    positives = labels.sum(axis=0)
    negatives = n - positives
    both = (positives > 0) & (negatives > 0)
    ratio = np.divide(negatives, positives, out=np.ones_like(positives), where=both)
    if cap is not None:
        ratio = np.clip(ratio, 1.0 / cap, cap)
    neg = np.where(both, n / (ratio * positives + negatives), 1.0)
    return torch.tensor(ratio * neg, dtype=torch.float32), torch.tensor(neg, dtype=torch.float32)


def task_loss(task: str, y_train: np.ndarray, max_class_weight: float | None = None) -> Loss:
    """The loss of ``task`` on a head's raw outputs, with class weights taken from the training labels."""
    if task == "va":
        return lambda raw, y: (
            1
            - (concordance(torch.tanh(raw[:, 0]), y[:, 0]) + concordance(torch.tanh(raw[:, 1]), y[:, 1])) / 2
        )
    if task == "expr":
        weight = expr_weights(y_train, max_class_weight)
        return lambda raw, y: weighted_cross_entropy(raw, y.long(), weight)
    if task == "au":
        pos, neg = au_weights(y_train, max_class_weight)
        return lambda raw, y: F.binary_cross_entropy_with_logits(raw, y, weight=y * pos + (1 - y) * neg)
    if task == "emi":

        def pearson_loss(raw: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            p = torch.sigmoid(raw)
            return 1 - torch.stack([_pearson(p[:, j], y[:, j]) for j in range(y.shape[1])]).mean()

        return pearson_loss
    raise InputError(f"no training loss for task {task!r}")


def squared_loss(raw: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Half the mean squared error (the ridge regressions' data term)."""
    return 0.5 * ((raw - y) ** 2).sum(dim=1).mean()


def l2_penalty(head: Head) -> torch.Tensor:
    """Half the squared norm of the weights of the head's layers (biases are not penalised)."""
    return 0.5 * sum((layer.weight**2).sum() for layer in head.net if isinstance(layer, nn.Linear))


@dataclass
class FitResult:
    """How a fit ended: its method, iterations (L-BFGS) or epochs run (Adam), and Adam's best epoch (0: the
    starting weights) with its validation loss."""

    method: str
    steps: int
    best_epoch: int | None = None
    val_loss: float = math.nan


def fit_linear(
    head: Head,
    loss: Loss,
    x: np.ndarray,
    y: np.ndarray,
    *,
    weight_decay: float,
    max_iterations: int = LBFGS_ITERATIONS,
) -> FitResult:
    """Minimise ``loss + weight_decay * l2_penalty`` over all of ``x`` with L-BFGS (strong Wolfe line search).

    The head's standardisation must already be set. For a convex loss the result does not depend on the
    starting weights.
    """
    if head.config.hidden != 0:
        raise ValueError("fit_linear fits heads without a hidden layer")
    y_t = torch.as_tensor(y, dtype=torch.float32)
    with torch.no_grad():  # standardised once: a linear head has no dropout, so raw() is net() of these
        z = (torch.as_tensor(x, dtype=torch.float32) - head.mean) / head.std
    optimiser = torch.optim.LBFGS(
        head.parameters(),
        lr=1.0,
        max_iter=max_iterations,
        history_size=20,
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        value = loss(head.net(z), y_t) + weight_decay * l2_penalty(head)
        value.backward()
        return value

    optimiser.step(closure)
    head.eval()
    return FitResult("L-BFGS", int(optimiser.state[next(head.parameters())].get("n_iter", 0)))


def fit_adam(
    head: Head,
    loss: Loss,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    weight_decay: float,
    epochs: int = 100,
    patience: int = 10,
    lr: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
) -> FitResult:
    """Train ``head`` in place with Adam; it ends with the weights of the epoch of lowest validation loss
    (its starting weights count as epoch 0, so a warm start is never made worse).

    Early stopping on the loss rather than on the task score keeps the chosen epoch from riding the noise of
    a small validation set's score, so the score it is then judged by stays honest. The head's
    standardisation must already be set; only mini-batches are standardised, so memory stays flat.
    """
    generator = torch.Generator().manual_seed(seed)
    x, y = torch.as_tensor(x_train, dtype=torch.float32), torch.as_tensor(y_train, dtype=torch.float32)
    xv, yv = torch.as_tensor(x_val, dtype=torch.float32), torch.as_tensor(y_val, dtype=torch.float32)
    optimiser = torch.optim.Adam(head.parameters(), lr=lr)
    batch = max(2, min(batch_size, len(x)))

    def validation_loss() -> float:
        head.eval()
        with torch.inference_mode():
            return float(loss(head.raw(xv), yv))

    result = FitResult("Adam", 0, best_epoch=0, val_loss=validation_loss())
    best_state = copy.deepcopy(head.state_dict())
    for epoch in range(1, epochs + 1):
        head.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch):
            index = order[start : start + batch]
            if len(index) < 2:
                continue
            value = loss(head.raw(x[index]), y[index]) + weight_decay * l2_penalty(head)
            optimiser.zero_grad()
            value.backward()
            optimiser.step()
        val_loss = validation_loss()
        result.steps = epoch
        if val_loss < result.val_loss - 1e-7:
            result.best_epoch, result.val_loss = epoch, val_loss
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
