"""The two-stage recipe on a tiny synthetic set: it learns, checkpoints, saves the best model and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from colour_faces import MODEL

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.labels import AFFECTNET_8
from faceaffect.hub import load_pretrained_files, save_pretrained
from faceaffect.hub.registry import get_config
from faceaffect.models import create_model
from faceaffect.models.mobilefacenet import MobileFaceNet
from faceaffect.train import (
    FaceDataset,
    ImageTransform,
    TrainConfig,
    TrainEvent,
    evaluate,
    read_samples,
    train,
)
from faceaffect.train.checkpoint import load_init_weights
from faceaffect.train.evaluate import classification_report, regression_report


class _Interrupt(Exception):
    pass


def _config(data: dict[str, str], output_dir: Path, **options: object) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "model": MODEL,
            "data": data,
            "stages": [{"epochs": 1, "lr": 1e-3, "freeze_backbone": True}, {"epochs": 1, "lr": 1e-3}],
            "batch_size": 16,
            "num_workers": 0,
            "device": "cpu",
            "tensorboard": False,
            "output_dir": str(output_dir),
            **options,
        }
    )


@pytest.fixture(scope="module")
def full_run(
    data: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[object, list[TrainEvent]]:
    events: list[TrainEvent] = []
    result = train(_config(data, tmp_path_factory.mktemp("full")), progress=events.append)
    return result, events


def test_two_stage_run_learns_and_saves(full_run: tuple, data: dict[str, str]) -> None:
    result, events = full_run
    assert [(row["epoch"], row["stage"]) for row in result.history] == [("1", "1"), ("2", "2")]
    assert float(result.history[1]["train_loss"]) < float(result.history[0]["train_loss"])
    assert [e.kind for e in events].count("batch") == 8 and [e.kind for e in events].count("epoch") == 2
    state = torch.load(result.last_checkpoint, weights_only=True)
    assert (state["epoch"], state["stage"]) == (2, 1)
    config, weights = load_pretrained_files(result.best_model_dir)
    assert config.input_size == 32 and config.arch == "mobilefacenet"
    model = create_model(config)
    model.load_state_dict(weights)
    report = evaluate(model, FaceDataset(read_samples("csv", data["val"]), ImageTransform(config)))
    assert report["accuracy_8"] == pytest.approx(
        float(result.history[result.best_epoch - 1]["val_accuracy_8"])
    )
    assert {"accuracy_7", "macro_f1", "valence_ccc", "arousal_rmse"} <= set(report)


def test_resume_continues_where_it_stopped(full_run: tuple, data: dict[str, str], tmp_path: Path) -> None:
    def stop_after_first_epoch(event: TrainEvent) -> None:
        if event.kind == "epoch":
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(_config(data, tmp_path), progress=stop_after_first_epoch)
    after_stage_1 = torch.load(tmp_path / "last.pt", weights_only=True)["model"]
    torch.manual_seed(0)
    initial = create_model(_config(data, tmp_path).model_config()).state_dict()
    frozen = [k for k in initial if k.startswith("backbone.")]
    assert all(torch.equal(initial[k], after_stage_1[k]) for k in frozen)  # stage 1 trains the head only

    events: list[TrainEvent] = []
    result = train(_config(data, tmp_path, resume=True), progress=events.append)
    assert any("after epoch 1" in e.message for e in events if e.kind == "note")
    assert {e.epoch for e in events if e.kind in ("batch", "epoch")} == {2}
    assert [row["epoch"] for row in result.history] == ["1", "2"]
    resumed = torch.load(result.last_checkpoint, weights_only=True)["model"]
    uninterrupted = torch.load(full_run[0].last_checkpoint, weights_only=True)["model"]
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)


def test_config_from_yaml_and_json(tmp_path: Path) -> None:
    text = "model: {name: mbf_va_mtl, input_size: 64}\ndata: {kind: ferplus, train: FER2013Train.tar.gz}\n"
    (tmp_path / "train.yaml").write_text(text + "sam: false\naugment: false\n")
    config = TrainConfig.from_file(tmp_path / "train.yaml")
    assert (config.model_config().input_size, config.sam, config.augment) == (64, False, None)
    assert [s.epochs for s in config.stages] == [3, 6]
    (tmp_path / "train.json").write_text(json.dumps(config.to_dict()))
    assert TrainConfig.from_file(tmp_path / "train.json") == config
    with pytest.raises(FaceaffectError, match="unknown training option"):
        TrainConfig.from_dict({"epochs": 3})


def test_reports_drop_contempt_for_accuracy_7_and_clip_va() -> None:
    logits = np.full((3, 8), -5.0)
    contempt, anger, fear = (AFFECTNET_8.index(x) for x in ("Contempt", "Anger", "Fear"))
    logits[0, [contempt, anger]] = [2.0, 1.0]  # true Anger: wrong with 8 classes, right with 7
    logits[1, contempt] = 3.0  # true Contempt: left out of accuracy-7
    logits[2, fear] = 1.0  # true Fear: right
    report = classification_report(logits, np.array([anger, contempt, fear]), AFFECTNET_8)
    assert (report["accuracy_8"], report["accuracy_7"]) == (pytest.approx(2 / 3), 1.0)
    assert report["per_class_recall"]["Anger"] == 0.0 and report["confusion_matrix"][anger][contempt] == 1
    va = regression_report(
        np.array([[2.0, 0.0], [-1.0, 0.5], [0.0, 0.0]]), np.array([[1.0, 0.0], [-1.0, 0.5], [0, 0]])
    )
    assert va["valence_ccc"] == pytest.approx(1.0) and va["valence_rmse"] == 0.0


def test_init_weights_from_saved_folder_and_backbone_only_state_dict(tmp_path: Path) -> None:
    def tiny() -> torch.nn.Module:
        return torch.nn.ModuleDict({"backbone": torch.nn.Linear(3, 4), "head": torch.nn.Linear(4, 2)})

    source = tiny()
    save_pretrained(source.state_dict(), get_config("mbf_va_mtl"), tmp_path / "saved")
    target = tiny()
    assert load_init_weights(target, tmp_path / "saved") == (4, 0)
    assert all(torch.equal(a, b) for a, b in zip(source.parameters(), target.parameters(), strict=True))
    torch.save({**source.backbone.state_dict(), "extra": torch.zeros(1)}, tmp_path / "backbone.pt")
    assert load_init_weights(tiny(), tmp_path / "backbone.pt") == (2, 1)


def test_init_weights_resize_a_global_depthwise_kernel_for_another_input_size(tmp_path: Path) -> None:
    """A MobileFaceNet trained at 48 px starts a 64 px one: its GDC kernel (over a 3x3, then 4x4 final map)
    is resized and rescaled so a constant map still gives the same output; all else is copied."""
    small, large = MobileFaceNet(input_size=48), MobileFaceNet(input_size=64)
    state = small.state_dict()
    (key,) = [k for k, v in state.items() if v.shape != large.state_dict()[k].shape]
    ramp = torch.linspace(-1, 1, 3)
    state[key] = (0.5 + ramp[:, None] + 2 * ramp[None, :]).expand_as(state[key]).clone()  # bilinear-exact
    torch.save(state, tmp_path / "mbf48.pt")

    loaded, skipped = load_init_weights(torch.nn.ModuleDict({"backbone": large}), tmp_path / "mbf48.pt")

    assert (loaded, skipped) == (len(state), 0)
    resized = large.state_dict()[key]
    assert resized.shape[-2:] == (4, 4)
    torch.testing.assert_close(resized.sum(dim=(2, 3)), state[key].sum(dim=(2, 3)))  # 4.5 per channel
    torch.testing.assert_close(
        large.state_dict()["layers.0.layers.0.weight"], state["layers.0.layers.0.weight"]
    )


def test_cosine_stage_decays_to_lr_end(data: dict[str, str], tmp_path: Path) -> None:
    stages = [{"epochs": 1, "lr": 1e-3}, {"epochs": 2, "lr": 1e-3, "lr_end": 1e-5}]
    result = train(_config(data, tmp_path, stages=stages, max_steps_per_epoch=2))
    rates = [float(row["lr"]) for row in result.history]
    assert rates[0] == pytest.approx(1e-3)
    # last step of epoch 2 sits at progress 1/4 of the cosine, of epoch 3 at 3/4
    cosine = TrainConfig.from_dict({"stages": stages[1:]}).stages[0]
    assert rates[1:] == pytest.approx([cosine.lr_at(0.25), cosine.lr_at(0.75)])
    assert rates[0] > rates[1] > rates[2] > 1e-5
    assert cosine.lr_at(0.0) == pytest.approx(1e-3) and cosine.lr_at(1.0) == pytest.approx(1e-5)
