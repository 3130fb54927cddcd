"""Heads learn a known signal from synthetic ABAW folders; losses, save/load, ONNX export."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_abaw import MODEL, Synthetic, make_emi_dataset

from faceaffect.core.errors import InputError
from faceaffect.downstream.abaw import read_annotations, read_emi_csv
from faceaffect.downstream.features import FeatureStore
from faceaffect.downstream.fit import au_weights, task_loss
from faceaffect.downstream.heads import Head, HeadConfig, export_onnx, load_head, save_head
from faceaffect.downstream.predictors import HeadPredictor, load_predictor
from faceaffect.downstream.workflow import TrainOptions, evaluate, train_head
from faceaffect.metrics import ccc, pearson

MINIMUM = {"va": 0.4, "expr": 0.6, "au": 0.6}  # per-frame validation scores the heads must beat
OPTIONS = TrainOptions(epochs=30, windows=(0, 1, 2, 3, 5, 8, 12, 20))


@pytest.fixture(scope="module")
def trained(synthetic: Synthetic) -> dict[str, tuple[HeadPredictor, dict]]:
    out = {}
    for task in ("va", "expr", "au"):
        train = read_annotations(synthetic.annotations, task, "train")
        validation = read_annotations(synthetic.annotations, task, "validation")
        out[task] = train_head(task, synthetic.store, train, validation, options=OPTIONS)
    return out


@pytest.mark.parametrize("task", ["va", "expr", "au"])
def test_frame_heads_learn_the_signal_and_smoothing_helps(
    synthetic: Synthetic, trained: dict[str, tuple[HeadPredictor, dict]], task: str
) -> None:
    predictor, report = trained[task]
    figures = report["head"]
    assert report["train"]["videos"] == 8 and report["validation"]["videos"] == 4
    assert figures["per_frame"] > MINIMUM[task]
    assert figures["smoothed"] > figures["per_frame"] + 0.02 and predictor.window > 0
    if task == "au":
        assert figures["tuned"] >= figures["per_frame"]
    validation = read_annotations(synthetic.annotations, task, "validation")
    assert evaluate(predictor, synthetic.store, validation)["head"]["final"]["score"] == pytest.approx(
        figures["smoothed"]
    )
    shuffled = {video: labels[::-1] for video, labels in validation.items()}  # same labels, wrong frames
    chance = evaluate(predictor, synthetic.store, shuffled)["head"]["final"]["score"]
    assert chance < figures["smoothed"] - 0.3


def test_emi_head_learns_intensities(tmp_path: Path) -> None:
    store, train_csv, valid_csv = make_emi_dataset(tmp_path)
    validation = read_emi_csv(valid_csv)
    options = TrainOptions(epochs=50, patience=20, batch_size=32, lr=0.01)
    predictor, report = train_head("emi", store, read_emi_csv(train_csv), validation, options=options)
    assert predictor.head.config.in_dim == 4 * 10 and predictor.head.config.pooled
    assert report["head"]["score"] > 0.5
    shuffled = dict(zip(validation, np.roll(np.stack(list(validation.values())), 1, axis=0), strict=True))
    assert evaluate(predictor, store, shuffled)["head"]["score"] < 0.25


def test_training_is_reproducible(tmp_path: Path) -> None:
    store, train_csv, valid_csv = make_emi_dataset(tmp_path, videos=30)
    train, validation = read_emi_csv(train_csv), read_emi_csv(valid_csv)
    options = TrainOptions(
        hidden=8, epochs=5, batch_size=8
    )  # a hidden layer: seeds matter (linear: exact fits)
    heads = []
    for draws in (3, 5):
        torch.rand(draws)  # other code using torch's global generator must not change the result
        heads.append(train_head("emi", store, train, validation, options=options)[0].head)
    other = train_head("emi", store, train, validation, options=replace(options, seed=1))[0]
    x = torch.randn(4, heads[0].config.in_dim)
    with torch.no_grad():
        torch.testing.assert_close(heads[0](x), heads[1](x))
        assert not torch.allclose(heads[0](x), other.head(x))


def test_saved_heads_reload_with_their_config(
    synthetic: Synthetic, trained: dict[str, tuple[HeadPredictor, dict]], tmp_path: Path
) -> None:
    predictor, _ = trained["au"]
    predictor.save(tmp_path / "au")
    loaded = load_predictor(tmp_path / "au")
    assert loaded.window == predictor.window
    np.testing.assert_allclose(loaded.thresholds, predictor.thresholds)
    as_json = json.loads(json.dumps(predictor.head.config.to_dict()))  # tuples become lists, keys strings
    assert loaded.head.config.to_dict() == {
        **as_json,
        "outputs": tuple(as_json["outputs"]),
        "thresholds": tuple(as_json["thresholds"]),
    }
    assert loaded.metrics["task"] == "au" and loaded.splits == predictor.splits
    assert loaded.head.config.training["model"] == predictor.metrics["head"]["model"]
    video = synthetic.videos[-1]
    for mine, theirs in ((loaded, predictor), (loaded.baseline, predictor.baseline)):
        np.testing.assert_allclose(
            mine.series(synthetic.store, video, 240), theirs.series(synthetic.store, video, 240)
        )
    assert loaded.baseline.head.config.training["model"].startswith("logistic regression per AU")


def test_evaluation_says_which_videos_tuned_the_head(
    synthetic: Synthetic, trained: dict[str, tuple[HeadPredictor, dict]]
) -> None:
    predictor, report = trained["va"]
    validation = read_annotations(synthetic.annotations, "va", "validation")
    on_validation = evaluate(predictor, synthetic.store, validation)
    assert on_validation["tuned_on"] == {
        "split": "validation",
        "videos": 4,
        "evaluated_videos_in_it": 4,
        "evaluated_videos_in_training_split": 0,
    }
    assert on_validation["baseline"]["final"]["score"] == pytest.approx(report["baseline"]["smoothed"])
    assert on_validation["baseline"]["model"].startswith("ridge regression")
    on_train = evaluate(predictor, synthetic.store, read_annotations(synthetic.annotations, "va", "train"))
    assert on_train["tuned_on"]["evaluated_videos_in_training_split"] == 8


def test_onnx_export_matches_torch(trained: dict[str, tuple[HeadPredictor, dict]], tmp_path: Path) -> None:
    import onnxruntime

    head = trained["expr"][0].head
    path = export_onnx(head, tmp_path / "expr.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(5, head.config.in_dim)).astype(np.float32)
    (out,) = session.run(["output"], {"features": x})
    with torch.no_grad():
        np.testing.assert_allclose(out, head(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_losses_are_the_papers() -> None:
    rng = np.random.default_rng(0)
    raw, y = rng.normal(size=(64, 2)), rng.uniform(-1, 1, size=(64, 2))
    loss = float(task_loss("va", y)(torch.tensor(raw), torch.tensor(y)))
    pred = np.tanh(raw)
    assert loss == pytest.approx(1 - (ccc(y[:, 0], pred[:, 0]) + ccc(y[:, 1], pred[:, 1])) / 2, abs=1e-6)
    raw6, y6 = rng.normal(size=(32, 6)), rng.uniform(0, 1, size=(32, 6))
    loss = float(task_loss("emi", y6)(torch.tensor(raw6), torch.tensor(y6)))
    sig = 1 / (1 + np.exp(-raw6))
    assert loss == pytest.approx(1 - np.mean([pearson(y6[:, j], sig[:, j]) for j in range(6)]), abs=1e-6)
    labels = np.array([0, 0, 0, 1])
    logits = torch.tensor(rng.normal(size=(4, 8)))
    log_p = torch.log_softmax(logits, dim=1)
    expected = -(log_p[[0, 1, 2], 0].sum() * 1.0 + log_p[3, 1] * 3.0) / (3 * 1.0 + 3.0)
    assert float(task_loss("expr", labels)(logits, torch.tensor(labels))) == pytest.approx(
        float(expected), rel=1e-6
    )
    positive, negative = au_weights(np.array([[1, 0], [0, 0], [0, 0], [0, 1]]))
    np.testing.assert_allclose(positive, [2.0, 2.0])
    np.testing.assert_allclose(negative, [2 / 3, 2 / 3])


def test_head_refuses_features_of_another_model(
    trained: dict[str, tuple[HeadPredictor, dict]], tmp_path: Path
) -> None:
    other = FeatureStore.create(tmp_path / "other", {**MODEL, "name": "another", "embedding_dim": 16})
    with pytest.raises(InputError, match="reads features of synthetic"):
        trained["expr"][0].check(other)


def test_bad_head_folders(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such head folder"):
        load_predictor(tmp_path / "missing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text('{"kind": "head",\n "task": }')
    with pytest.raises(InputError, match=r"config.json:2: not valid JSON"):
        load_predictor(tmp_path / "broken")
    head = Head(HeadConfig.for_task("va", in_dim=10))
    with pytest.raises(InputError, match="no trainable head"):
        HeadConfig.for_task("ce", in_dim=3)
    assert head(torch.zeros(3, 10)).abs().max() <= 1
    with pytest.raises(InputError, match="not a saved head"):
        load_head(tmp_path)


def test_heads_saved_before_the_search_still_load(tmp_path: Path) -> None:
    head = Head(HeadConfig.for_task("expr", in_dim=6, hidden=4))
    save_head(head, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for key in ("dropout", "training"):  # fields added with the search
        del config[key]
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = load_predictor(tmp_path)
    assert loaded.head.config.dropout == 0.0 and loaded.baseline is None and loaded.splits is None
    x = torch.randn(3, 6)
    with torch.no_grad():
        torch.testing.assert_close(loaded.head(x), head.eval()(x))


def test_undefined_scores_are_saved_as_null(tmp_path: Path) -> None:
    predictor = HeadPredictor(Head(HeadConfig.for_task("va", in_dim=4)))
    predictor.metrics = {"per_frame": float("nan"), "window_scores": {0: float("inf"), 3: 0.5}}
    predictor.save(tmp_path)  # configs are read back strictly: NaN or infinite numbers are refused
    assert load_predictor(tmp_path).metrics == {"per_frame": None, "window_scores": {"0": None, "3": 0.5}}
