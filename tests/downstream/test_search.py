"""Choosing heads on validation data, and the linear baselines, checked against scikit-learn and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceaffect.downstream.data import Samples
from faceaffect.downstream.fit import au_weights, expr_weights
from faceaffect.downstream.heads import HeadConfig, predict_array
from faceaffect.downstream.options import Candidate, TrainOptions
from faceaffect.downstream.search import fit_baseline, search_head

FAST = TrainOptions(epochs=60, patience=10)


def samples(x: np.ndarray, y: np.ndarray) -> Samples:
    return Samples(x.astype(np.float32), y, np.array([f"v{i}" for i in range(len(x))]))


def linear_classes(
    rng: np.random.Generator, n: int, dim: int = 12, classes: int = 8
) -> tuple[Samples, Samples]:
    """(train, validation) halves of classes from one noisy linear map of the features: a linear head is the
    right model."""
    x = rng.normal(size=(n, dim)) * rng.uniform(0.5, 3.0, size=dim) + rng.normal(size=dim)
    scores = x @ rng.normal(size=(dim, classes)) + rng.gumbel(size=(n, classes))
    y = scores.argmax(axis=1)
    return samples(x[: n // 2], y[: n // 2]), samples(x[n // 2 :], y[n // 2 :])


def test_logistic_baseline_is_scikit_learns(tmp_path) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    train, val = linear_classes(rng, 800)
    config = HeadConfig.for_task("expr", in_dim=12)
    fitted = fit_baseline(config, train, val, TrainOptions())
    assert (
        fitted.record["model"]
        == f"logistic regression, balanced class weights, L2 {fitted.record['weight_decay']:g}"
    )
    assert fitted.record["validation_score"] > 0.5
    x = (train.x - train.x.mean(axis=0)) / train.x.std(axis=0)
    reference = LogisticRegression(C=fitted.record["C"], class_weight="balanced", tol=1e-10, max_iter=10_000)
    reference.fit(x, train.y)
    expected = reference.predict_proba((val.x - train.x.mean(axis=0)) / train.x.std(axis=0))
    np.testing.assert_allclose(predict_array(fitted.head, val.x), expected, atol=2e-3)


def test_ridge_baseline_is_the_closed_form() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 6)) * 4 + 2
    y = np.clip(x @ rng.normal(size=(6, 2)) * 0.1 + rng.normal(scale=0.2, size=(400, 2)), -1, 1)
    train, val = samples(x[:300], y[:300].astype(np.float32)), samples(x[300:], y[300:].astype(np.float32))
    fitted = fit_baseline(HeadConfig.for_task("va", in_dim=6), train, val, TrainOptions(weight_decay=5.0))
    decay = fitted.record["weight_decay"]  # the baseline ignores the head's pins: its own L2 grid
    assert (
        fitted.head.config.activation == "identity"
        and fitted.record["model"] == f"ridge regression, L2 {decay:g}"
    )
    assert [c["weight_decay"] for c in fitted.record["candidates"]] == [0.1, 0.01, 0.001, 0.0001]
    z = (train.x - train.x.mean(axis=0)) / train.x.std(axis=0)
    centred = train.y - train.y.mean(axis=0)
    weights = np.linalg.solve(z.T @ z / len(z) + decay * np.eye(6), z.T @ centred / len(z))
    expected = ((val.x - train.x.mean(axis=0)) / train.x.std(axis=0)) @ weights + train.y.mean(axis=0)
    np.testing.assert_allclose(predict_array(fitted.head, val.x), expected, atol=5e-4)


def test_search_keeps_linear_heads_for_linear_data_and_a_hidden_layer_for_xor() -> None:
    rng = np.random.default_rng(2)
    linear = search_head(HeadConfig.for_task("expr", in_dim=12), *linear_classes(rng, 1200), FAST)
    assert linear.head.config.hidden == 0 and linear.record["model"].startswith("linear")
    assert linear.record["validation_score"] > 0.5
    x = rng.normal(size=(1200, 2))
    y = (np.sign(x[:, 0]) != np.sign(x[:, 1])).astype(np.int8)[:, None].repeat(12, axis=1)  # XOR, 12 "AUs"
    train, val = samples(x[:800], y[:800]), samples(x[800:], y[800:])
    xor = search_head(HeadConfig.for_task("au", in_dim=2), train, val, FAST)
    scores = {c["model"]: c["score"] for c in xor.record["candidates"]}
    assert xor.head.config.hidden == 128 and xor.record["validation_score"] > 0.9
    assert max(s for m, s in scores.items() if m.startswith("linear")) < 0.75
    assert len(scores) == len(FAST.grid()) == 8


def test_search_on_a_subsample_refits_the_winner_on_all_rows() -> None:
    rng = np.random.default_rng(3)
    train, val = linear_classes(rng, 1800)
    options = TrainOptions(hidden=0, search_rows=300)
    record = search_head(HeadConfig.for_task("expr", in_dim=12), train, val, options).record
    assert record["search_rows"] == {"train": 300, "validation": 300}
    assert record["refitted"]["rows"] == 900 and len(record["candidates"]) == 4


def test_grid_pins_and_order() -> None:
    grid = TrainOptions().grid()
    assert grid[:4] == [Candidate(0, d) for d in (1e-1, 1e-2, 1e-3, 1e-4)]  # simplest first: ties go to them
    assert {c.dropout for c in grid[4:]} == {0.0, 0.5} and {c.hidden for c in grid[4:]} == {128}
    assert TrainOptions(hidden=64, weight_decay=0.0, dropout=0.1).grid() == [Candidate(64, 0.0, 0.1)]


def test_class_weights_are_capped() -> None:
    labels = np.array([0] * 100 + [1] * 50 + [2] * 2)
    assert expr_weights(labels).tolist()[:4] == [1.0, 2.0, 50.0, 0.0]  # METHOD.md's max_count / count_c
    assert expr_weights(labels, cap=5.0).tolist()[:4] == [1.0, 2.0, 5.0, 0.0]
    au = np.zeros((100, 3), np.int8)
    au[:2, 0], au[:50, 1], au[:, 2] = 1, 1, 1
    pos, neg = au_weights(au)
    np.testing.assert_allclose(pos[:2], [25.0, 1.0]) and np.testing.assert_allclose(neg[:2], [100 / 196, 1.0])
    pos, neg = au_weights(au, cap=5.0)
    np.testing.assert_allclose(pos[0] / neg[0], 5.0, rtol=1e-6)
    np.testing.assert_allclose(2 * pos[0] + 98 * neg[0], 100.0, rtol=1e-6)  # weights still average 1
    assert pos[2] == neg[2] == 1.0  # no negatives: nothing to balance


def test_linear_heads_do_not_depend_on_the_seed() -> None:
    rng = np.random.default_rng(4)
    train, val = linear_classes(rng, 600)
    config = HeadConfig.for_task("expr", in_dim=12)
    heads = [search_head(config, train, val, TrainOptions(hidden=0, seed=s)).head for s in (0, 1)]
    with torch.no_grad():
        np.testing.assert_allclose(predict_array(heads[0], val.x), predict_array(heads[1], val.x), atol=5e-3)


def test_too_few_samples_is_a_clear_error() -> None:
    from faceaffect.core.errors import InputError

    one = samples(np.zeros((1, 3)), np.zeros(1, np.int64))
    with pytest.raises(InputError, match="too few samples"):
        search_head(HeadConfig.for_task("expr", in_dim=3), one, one, FAST)
