"""Choosing a head's capacity and regularisation on validation data, and the linear baseline shown beside it.

:func:`search_head` fits every candidate of :meth:`TrainOptions.grid` (linear heads over four L2 strengths,
then one-hidden-layer heads over L2 and dropout) on the training rows and scores it on the validation rows
by the task's score at the default decisions (argmax, threshold 0.5, raw values; no smoothing). The best
wins; ties go to the simpler, earlier candidate. Both splits take part with at most ``search_rows`` rows
(a uniform subsample), and a winner chosen on a subsample is refitted on all training rows, so the search
costs the same on Aff-Wild2's millions of frames as on a hundred thousand.

:func:`fit_baseline` is the textbook model on the same standardised inputs and split: logistic regression
with balanced class weights (multinomial for expr, one per AU for au) or ridge regression (va, emi), its L2
strength chosen on validation the same way, fitted exactly (L-BFGS).

>>> fitted = search_head(config, train, val, TrainOptions())  # doctest: +SKIP
>>> fitted.head.config.describe(), fitted.record["model"]  # doctest: +SKIP
('linear', 'linear, L2 0.01')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from faceaffect.downstream.data import Samples
from faceaffect.downstream.fit import (
    FitResult,
    Loss,
    fit_hidden,
    fit_linear,
    squared_loss,
    task_loss,
    torch_threads,
)
from faceaffect.downstream.heads import Head, HeadConfig, predict_array
from faceaffect.downstream.options import LINEAR_WEIGHT_DECAY, Candidate, CandidateCallback, TrainOptions
from faceaffect.downstream.scores import decisions, task_score
from faceaffect.errors import InputError

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
    with torch_threads(options.threads):
        return _search(config, train, val, options, on_candidate)


def _search(
    config: HeadConfig,
    train: Samples,
    val: Samples,
    options: TrainOptions,
    on_candidate: CandidateCallback | None,
) -> Fitted:
    _check_sizes(config.task, train, val)
    search_train, search_val = _search_rows(train, val, options)
    mean, std = _standardisation(train.x)
    loss = task_loss(config.task, search_train.y, options.max_class_weight)
    grid = options.grid()
    records: list[dict[str, Any]] = []
    best: tuple[float, Head, Candidate] | None = None
    for index, candidate in enumerate(grid, start=1):
        head, fit = _fit(config, candidate, loss, search_train, search_val, (mean, std), options)
        score = _score(head, search_val)
        records.append({"model": candidate.describe(), **asdict(candidate), "score": score, **_steps(fit)})
        if on_candidate is not None:
            on_candidate(index, len(grid), records[-1])
        if best is None or score > best[0] + 1e-9:
            best = (score, head, candidate)
    assert best is not None
    score, head, chosen = best
    refit = None
    if len(search_train) < len(train):
        loss = task_loss(config.task, train.y, options.max_class_weight)
        head, fit = _fit(config, chosen, loss, train, search_val, (mean, std), options)
        refit = {"rows": len(train), **_steps(fit)}
    record = {
        "model": chosen.describe(),
        "chosen_on": "validation",
        "validation_score": score,
        "weight_decay": chosen.weight_decay,
        "max_class_weight": options.max_class_weight,
        "search_rows": {"train": len(search_train), "validation": len(search_val)},
        "refitted": refit,
        "candidates": records,
    }
    if any(c.hidden for c in grid):
        record["adam"] = {k: getattr(options, k) for k in ("epochs", "patience", "lr", "batch_size", "seed")}
    head.config = head.config.replace(training=record)
    return Fitted(head, record)


def fit_baseline(config: HeadConfig, train: Samples, val: Samples, options: TrainOptions) -> Fitted:
    """The linear baseline of ``config.task`` on the same inputs and split, its L2 chosen on validation."""
    with torch_threads(options.threads):
        return _baseline(config, train, val, options)


def _baseline(config: HeadConfig, train: Samples, val: Samples, options: TrainOptions) -> Fitted:
    _check_sizes(config.task, train, val)
    task = config.task
    regression = task in ("va", "emi")
    shape = config.replace(hidden=0, dropout=0.0, activation="identity" if regression else config.activation)
    search_train, search_val = _search_rows(train, val, options)
    mean, std = _standardisation(train.x)
    loss = squared_loss if regression else task_loss(task, search_train.y)
    records = []
    best: tuple[float, Head, float] | None = None
    for decay in LINEAR_WEIGHT_DECAY:
        head, _ = _fit(shape, Candidate(0, decay), loss, search_train, search_val, (mean, std), options)
        score = _score(head, search_val)
        records.append({"weight_decay": decay, "score": score})
        if best is None or score > best[0] + 1e-9:
            best = (score, head, decay)
    assert best is not None
    score, head, decay = best
    if len(search_train) < len(train):
        loss = squared_loss if regression else task_loss(task, train.y)
        head, _ = _fit(shape, Candidate(0, decay), loss, train, search_val, (mean, std), options)
    record = {
        "model": f"{BASELINE_MODELS[task]}, L2 {decay:g}",
        "weight_decay": decay,
        "chosen_on": "validation",
        "validation_score": score,
        "search_rows": {"train": len(search_train), "validation": len(search_val)},
        "candidates": records,
    }
    if not regression:
        record["C"] = 1.0 / (decay * len(train))  # the same model in scikit-learn's terms
    head.config = head.config.replace(training=record)
    return Fitted(head, record)


def _check_sizes(task: str, train: Samples, val: Samples) -> None:
    if len(train) < 2 or len(val) < 1:
        raise InputError(f"too few samples to train a {task} head: {len(train)} train, {len(val)} validation")


def _search_rows(train: Samples, val: Samples, options: TrainOptions) -> tuple[Samples, Samples]:
    if options.search_rows < 2:
        raise InputError(f"search_rows must be at least 2, got {options.search_rows}")
    rows, seed = options.search_rows, options.seed
    return train.subsample(rows, seed), val.subsample(rows, seed)


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
    fit = fit_hidden(
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
    return head, fit


def _score(head: Head, val: Samples) -> float:
    task = head.config.task
    return task_score(task, val.y, decisions(task, predict_array(head, val.x)))


def _steps(fit: FitResult) -> dict[str, Any]:
    if fit.best_epoch:
        return {"epochs_run": fit.steps, "best_epoch": fit.best_epoch}
    return {"iterations": fit.steps}
