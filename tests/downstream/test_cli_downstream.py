"""The ``features`` and ``heads`` commands end to end on synthetic ABAW folders and a tiny random model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic_abaw import Synthetic
from typer.testing import CliRunner

from faceaffect.cli import app
from faceaffect.downstream.abaw import ABAW_VA, read_frame_annotation
from faceaffect.hub.registry import get_config
from faceaffect.models import create_model, save_model

runner = CliRunner()


def test_va_train_evaluate_predict_export(synthetic: Synthetic, tmp_path: Path) -> None:
    store, labels, head = str(synthetic.store.root), str(synthetic.annotations), tmp_path / "va"
    args = ["heads", "train", "va", "-f", store, "--labels", labels, "-o", str(head), "--epochs", "15"]
    result = runner.invoke(
        app, [*args, "--windows", "0,3,8", "--report", str(tmp_path / "report.json"), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert "smoothed are tuned on this same split (optimistic)" in " ".join(result.output.split())
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["validation"]["videos"] == 4 and report["head"]["window"] in (3, 8)
    assert json.loads((head / "config.json").read_text())["window"] == report["head"]["window"]

    result = runner.invoke(
        app,
        [
            "heads",
            "evaluate",
            str(head),
            "-f",
            store,
            "--labels",
            labels,
            "--report",
            str(tmp_path / "eval.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "eval.json").read_text())["head"]["final"]["score"] == pytest.approx(
        report["head"]["smoothed"]
    )

    out = tmp_path / "predictions"
    result = runner.invoke(
        app, ["heads", "predict", str(head), "-f", store, "-o", str(out), "--lengths-from", labels]
    )
    assert result.exit_code == 0, result.output
    for video in synthetic.videos[8:]:
        predicted = read_frame_annotation(out / f"{video}.txt", "va")
        assert predicted.shape == (240, 2) and np.abs(predicted).max() <= 1
    lines = (out / "predictions.txt").read_text().splitlines()
    assert lines[0] == "image_location," + ",".join(ABAW_VA) and len(lines) == 1 + 4 * 240
    assert lines[1].startswith(f"{sorted(synthetic.videos[8:])[0]}/00001.jpg,")

    result = runner.invoke(app, ["heads", "export", str(head), "-o", str(tmp_path / "va.onnx")])
    assert result.exit_code == 0 and (tmp_path / "va.onnx").stat().st_size > 0


def test_zero_shot_heads_need_no_training(synthetic: Synthetic, tmp_path: Path) -> None:
    store = str(synthetic.store.root)
    result = runner.invoke(
        app, ["heads", "evaluate", "zero-shot-ce", "-f", store, "--report", str(tmp_path / "ce.json")]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "ce.json").read_text())
    assert (
        report["frames"] == 12 * 240
        and report["kl_to_prior"] > 0
        and sum(report["histogram"].values()) == 12 * 240
    )
    result = runner.invoke(
        app, ["heads", "predict", "zero-shot-expr", "-f", store, "-o", str(tmp_path / "expr")]
    )
    assert result.exit_code == 0, result.output
    assert len(read_frame_annotation(tmp_path / "expr" / f"{synthetic.videos[0]}.txt", "expr")) == 240
    result = runner.invoke(app, ["heads", "train", "ce", "-f", store, "-o", str(tmp_path / "clusters")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["heads", "evaluate", str(tmp_path / "clusters"), "-f", store])
    assert result.exit_code == 0 and "kl_to_prior" in result.output


def test_malformed_annotations_are_one_line_errors(synthetic: Synthetic, tmp_path: Path) -> None:
    labels = tmp_path / "Annotations"
    shutil.copytree(
        synthetic.annotations / "EXPR_Recognition_Challenge", labels / "EXPR_Recognition_Challenge"
    )
    broken = labels / "EXPR_Recognition_Challenge" / "Train_Set" / f"{synthetic.videos[2]}.txt"
    lines = broken.read_text().splitlines()
    lines[41] = "9"
    broken.write_text("\n".join(lines) + "\n")
    args = [
        "heads",
        "train",
        "expr",
        "-f",
        str(synthetic.store.root),
        "--labels",
        str(labels),
        "-o",
        str(tmp_path / "h"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    message = result.output.strip()
    assert (
        len(message.splitlines()) == 1 and f"{broken}:42: class 9 is not an integer in 0..7 or -1" in message
    )
    assert not (tmp_path / "h").exists()


def test_user_mistakes(synthetic: Synthetic, tmp_path: Path) -> None:
    store = str(synthetic.store.root)
    for args, words in [
        (["heads", "train", "pose", "-f", store, "-o", str(tmp_path / "x")], "unknown task 'pose'"),
        (["heads", "train", "va", "-f", store, "-o", str(tmp_path / "x")], "needs --labels"),
        (["heads", "evaluate", "zero-shot-expr", "-f", store], "needs --labels"),
        (["heads", "evaluate", str(tmp_path / "nothing"), "-f", store], "no such head folder"),
        (
            ["heads", "predict", "zero-shot-ce", "-f", str(tmp_path), "-o", str(tmp_path / "p")],
            "not a feature store",
        ),
        (["features", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "f")], "no such file or folder"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and words in result.output, (args, result.output)


def test_features_command_on_face_crops(tmp_path: Path) -> None:
    model = save_model(
        create_model(get_config("mbf_va_mtl").replace(name="tiny", input_size=48)), tmp_path / "m"
    )
    folder = tmp_path / "cropped_aligned" / "video1"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for frame in (1, 2, 3):
        Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)).save(folder / f"{frame:05d}.jpg")
    args = [
        "features",
        str(tmp_path / "cropped_aligned"),
        "-o",
        str(tmp_path / "store"),
        "-m",
        str(model),
    ]  # not quiet: the closing summary line is checked
    no_onnx = runner.invoke(app, [*args, "--engine", "onnx", "-q"])
    assert no_onnx.exit_code == 1 and "has no ONNX file" in no_onnx.output
    result = runner.invoke(app, [*args, "--storage", "npz", "--engine", "torch", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "1 video(s) written (3 faces)" in result.output
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert manifest["storage"] == "npz" and manifest["videos"]["video1"]["file"] == "features/video1.npz"
    again = runner.invoke(app, [*args, "--storage", "npz"])
    assert again.exit_code == 0 and "1 already in the store" in again.output


def test_fuse_two_heads(synthetic: Synthetic, tmp_path: Path) -> None:
    store, labels = str(synthetic.store.root), str(synthetic.annotations)
    for inputs in ("logits", "embedding"):
        args = ["heads", "train", "expr", "-f", store, "--labels", labels, "-o", str(tmp_path / inputs)]
        assert (
            runner.invoke(
                app, [*args, "--inputs", inputs, "--epochs", "8", "--windows", "0,3", "-q"]
            ).exit_code
            == 0
        )
    args = [
        "heads",
        "fuse",
        str(tmp_path / "logits"),
        str(tmp_path / "embedding"),
        "-f",
        store,
        "--labels",
        labels,
    ]
    result = runner.invoke(
        app, [*args, "-o", str(tmp_path / "fused"), "--report", str(tmp_path / "fused.json")]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "fused.json").read_text())
    assert (
        len(report["weights"]) == 8
        and report["fused_per_frame"] >= max(report["first"], report["second"]) - 1e-9
    )
    assert (tmp_path / "fused" / "member_0" / "model.safetensors").is_file()
    result = runner.invoke(
        app, ["heads", "evaluate", str(tmp_path / "fused"), "-f", store, "--labels", labels]
    )
    assert result.exit_code == 0 and "final score" in result.output


def test_pinned_head_and_uncapped_weights_are_recorded(synthetic: Synthetic, tmp_path: Path) -> None:
    store, labels, head = str(synthetic.store.root), str(synthetic.annotations), tmp_path / "au"
    args = ["heads", "train", "au", "-f", store, "--labels", labels, "-o", str(head), "--windows", "0"]
    pins = ["--hidden", "0", "--weight-decay", "0.01", "--max-class-weight", "0"]
    result = runner.invoke(app, [*args, *pins])
    assert result.exit_code == 0, result.output
    assert "candidate 1/1, linear, L2 0.01: validation" in " ".join(result.output.split())
    training = json.loads((head / "config.json").read_text())["training"]
    assert training["model"] == "linear, L2 0.01" and len(training["candidates"]) == 1
    assert training["max_class_weight"] is None  # 0: METHOD.md's uncapped weights
    baseline = json.loads((head / "baseline" / "config.json").read_text())["training"]
    assert len(baseline["candidates"]) == 4 and baseline["model"].startswith("logistic regression per AU")
    bad = runner.invoke(app, [*args, "--dropout", "1.5"])
    assert bad.exit_code == 2
