"""Choosing a head's capacity and regularisation on validation data, and the linear baseline shown beside it.

:func:`search_head` fits every candidate of :meth:`TrainOptions.grid` (linear heads over four L2 strengths,
then one-hidden-layer heads over L2 and dropout) on the training rows and scores it on the validation rows
by the task's score at the default decisions (argmax, threshold 0.5, raw values; no smoothing). The best
wins; ties go to the simpler, earlier candidate. Both splits take part with at most ``search_rows`` rows
(a uniform subsample); a winner chosen on a subsample then continues training on all training rows (Adam
on mini-batches from its search weights, early stopping on the validation loss), so the search costs the
same on Aff-Wild2's millions of frames as on 200,000 and memory stays at one copy of the rows.

:func:`fit_baseline` is the textbook model on the same standardised inputs and split: logistic regression
with balanced class weights (multinomial for expr, one per AU for au) or ridge regression (va, emi), its L2
strength chosen on validation the same way, fitted exactly (L-BFGS).

>>> fitted = search_head(config, train, val, TrainOptions())  # doctest: +SKIP
>>> fitted.head.config.hidden, fitted.record["model"]  # doctest: +SKIP
(0, 'linear, L2 0.01')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from faceaffect.core.errors import InputError
from faceaffect.downstream.data import Samples
from faceaffect.downstream.fit import (
    FitResult,
    Loss,
    fit_adam,
    fit_linear,
    squared_loss,
    task_loss,
    torch_threads,
)
from faceaffect.downstream.heads import Head, HeadConfig, predict_array
from faceaffect.downstream.options import LINEAR_WEIGHT_DECAY, Candidate, CandidateCallback, TrainOptions
from faceaffect.downstream.scores import decisions, task_score

BASELINE_MODELS = {
    "expr": "logistic regression, balanced class weights",
    "au": "logistic regression per AU, balanced class weights",
    "va": "ridge regression",
    "emi": "ridge regression",
}


@dataclass
class Fitted:
    """A fitted head and the record of how it was chosen (saved as its config's ``training``)."""

    head: Head
    record: dict[str, Any]


def search_head(
    config: HeadConfig,
    train: Samples,
    val: Samples,
    options: TrainOptions,
    on_candidate: CandidateCallback | None = None,
) -> Fitted:
    """The best candidate head on validation; ``on_candidate(index, total, record)`` after each fit."""
    task, cap = config.task, options.max_class_weight
    with torch_threads(options.threads):
        head, chosen, search = _choose(
            config, options.grid(), lambda y: task_loss(task, y, cap), train, val, options, on_candidate
        )
    record = {"model": chosen.describe(), **search, "max_class_weight": cap}
    if any(candidate.hidden for candidate in options.grid()):
        record["adam"] = {k: getattr(options, k) for k in ("epochs", "patience", "lr", "batch_size", "seed")}
    head.config = head.config.replace(training=record)
    return Fitted(head, record)


def fit_baseline(config: HeadConfig, train: Samples, val: Samples, options: TrainOptions) -> Fitted:
    """The linear baseline of ``config.task`` on the same inputs and split, its L2 chosen on validation."""
    task = config.task
    regression = task in ("va", "emi")
    shape = config.replace(hidden=0, dropout=0.0, activation="identity" if regression else config.activation)
    candidates = [Candidate(0, decay) for decay in LINEAR_WEIGHT_DECAY]
    with torch_threads(options.threads):
        head, chosen, search = _choose(
            shape,
            candidates,
            lambda y: squared_loss if regression else task_loss(task, y),
            train,
            val,
            options,
        )
    record = {"model": f"{BASELINE_MODELS[task]}, L2 {chosen.weight_decay:g}", **search}
    if not regression:
        record["C"] = 1.0 / (chosen.weight_decay * len(train))  # the same model in scikit-learn's terms
    head.config = head.config.replace(training=record)
    return Fitted(head, record)


def _choose(
    config: HeadConfig,
    candidates: list[Candidate],
    loss_of: Callable[[np.ndarray], Loss],
    train: Samples,
    val: Samples,
    options: TrainOptions,
    on_candidate: CandidateCallback | None = None,
) -> tuple[Head, Candidate, dict[str, Any]]:
    """Fit each candidate on the (subsampled) training rows, keep the best on the (subsampled) validation
    rows, refit it on all training rows when the search saw a subsample; the head, its candidate, a record."""
    if len(train) < 2 or len(val) < 1:
        raise InputError(
            f"too few samples to train a {config.task} head: {len(train)} train, {len(val)} validation"
        )
    if options.search_rows < 2:
        raise InputError(f"search_rows must be at least 2, got {options.search_rows}")
    search_train = train.subsample(options.search_rows, options.seed)
    search_val = val.subsample(options.search_rows, options.seed)
    standardisation = _standardisation(train.x)
    loss = loss_of(search_train.y)
    records: list[dict[str, Any]] = []
    best: tuple[float, Head, Candidate] | None = None
    for index, candidate in enumerate(candidates, start=1):
        head, fit = _fit(config, candidate, loss, search_train, search_val, standardisation, options)
        score = _score(head, search_val)
        records.append({"model": candidate.describe(), **asdict(candidate), "score": score, **_steps(fit)})
        if on_candidate is not None:
            on_candidate(index, len(candidates), records[-1])
        if best is None or score > best[0] + 1e-9:
            best = (score, head, candidate)
    assert best is not None
    score, head, chosen = best
    refit = None
    if len(search_train) < len(train):
        fit = _adam(head, loss_of(train.y), train, search_val, chosen, options)
        refit = {"rows": len(train), **_steps(fit)}
    record = {
        "chosen_on": "validation",
        "validation_score": score,
        "weight_decay": chosen.weight_decay,
        "search_rows": {"train": len(search_train), "validation": len(search_val)},
        "refitted": refit,
        "candidates": records,
    }
    return head, chosen, record


def _standardisation(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x64 = np.asarray(x, dtype=np.float64)
    return torch.tensor(x64.mean(axis=0)).float(), torch.tensor(x64.std(axis=0)).float()


def _fit(
    config: HeadConfig,
    candidate: Candidate,
    loss: Loss,
    train: Samples,
    val: Samples,
    standardisation: tuple[torch.Tensor, torch.Tensor],
    options: TrainOptions,
) -> tuple[Head, FitResult]:
    torch.manual_seed(options.seed)  # the initial weights too: the same seed gives the same head
    head = Head(config.replace(hidden=candidate.hidden, dropout=candidate.dropout))
    head.set_standardisation(*standardisation)
    if candidate.hidden == 0:
        return head, fit_linear(head, loss, train.x, train.y, weight_decay=candidate.weight_decay)
    return head, _adam(head, loss, train, val, candidate, options)


def _adam(
    head: Head, loss: Loss, train: Samples, val: Samples, candidate: Candidate, options: TrainOptions
) -> FitResult:
    return fit_adam(
        head,
        loss,
        train.x,
        train.y,
        val.x,
        val.y,
        weight_decay=candidate.weight_decay,
        epochs=options.epochs,
        patience=options.patience,
        lr=options.lr,
        batch_size=options.batch_size,
        seed=options.seed,
    )


def _score(head: Head, val: Samples) -> float:
    task = head.config.task
    return task_score(task, val.y, decisions(task, predict_array(head, val.x)))


def _steps(fit: FitResult) -> dict[str, Any]:
    if fit.best_epoch is None:
        return {"fit": fit.method, "iterations": fit.steps}
    return {"fit": fit.method, "epochs_run": fit.steps, "best_epoch": fit.best_epoch}
