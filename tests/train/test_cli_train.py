"""`faceaffect train` and `faceaffect evaluate` end to end on the colour set; their user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from colour_faces import MODEL
from typer.testing import CliRunner

from faceaffect.cli import app

runner = CliRunner()


def _write_config(path: Path, data: dict[str, str], **changes: object) -> Path:
    config = {
        "model": MODEL,
        "data": data,
        "stages": [{"epochs": 1, "lr": 1e-3, "freeze_backbone": True}, {"epochs": 4, "lr": 1e-3}],
        "batch_size": 4,
        "sam": False,
        "num_workers": 0,
        "device": "cpu",
        "tensorboard": False,
        **changes,
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def trained(data: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli_train")
    config = _write_config(root / "config.yaml", data)
    result = runner.invoke(app, ["train", str(config), "--output-dir", str(root / "run")])
    assert result.exit_code == 0, result.output
    assert "best epoch" in result.output
    return root / "run"


def test_train_writes_metrics_checkpoint_and_best_model(trained: Path) -> None:
    assert (trained / "best" / "model.safetensors").is_file()
    assert (trained / "best" / "config.json").is_file()
    assert (trained / "last.pt").is_file()
    assert len((trained / "metrics.csv").read_text().splitlines()) == 1 + 5


def test_evaluate_reports_and_plots(trained: Path, data: dict[str, str], tmp_path: Path) -> None:
    report_path, plot_path = tmp_path / "report.json", tmp_path / "confusion.png"
    args = ["evaluate", str(trained / "best"), data["val"], "--kind", "csv", "-o", str(report_path)]
    result = runner.invoke(app, [*args, "--plot", str(plot_path), "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["n"] == 32
    assert report["accuracy_8"] > 0.5  # four colour-coded classes: chance is 0.25
    assert sum(map(sum, report["confusion_matrix"])) == 32
    assert {"valence_ccc", "arousal_ccc", "macro_f1", "accuracy_7"} <= set(report)
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "accuracy_8" in result.output


def test_configs_run_in_order_and_resume_skips_finished_runs(data: dict[str, str], tmp_path: Path) -> None:
    stage = [{"epochs": 1, "lr": 1e-3}]
    first = _write_config(tmp_path / "first.yaml", data, stages=stage, output_dir=str(tmp_path / "first"))
    second = _write_config(tmp_path / "second.yaml", data, stages=stage, output_dir=str(tmp_path / "second"),
                           init_weights=str(tmp_path / "first" / "best"))  # fmt: skip
    result = runner.invoke(app, ["train", str(first), str(second)])
    assert result.exit_code == 0, result.output
    assert result.output.count("best epoch 1") == 2
    assert "initial weights:" in result.output and "0 skipped" in result.output
    again = runner.invoke(app, ["train", str(first), str(second), "--resume"])
    assert again.exit_code == 0, again.output
    assert again.output.count("after epoch 1") == 2 and "epoch 2" not in again.output
    assert len((tmp_path / "second" / "metrics.csv").read_text().splitlines()) == 1 + 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "missing.yaml"], "no such config file"),
        (["train", "a.yaml", "b.yaml", "--output-dir", "out"], "--output-dir needs a single config"),
        (["evaluate", "mbf_va_mtl", "missing_folder"], "no such dataset"),
    ],
)
def test_user_errors_are_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_unknown_training_option_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("epochz: 3\n")
    result = runner.invoke(app, ["train", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 1
    assert "unknown training option(s): epochz" in result.output


def test_torchrun_trains_with_ddp_on_two_processes(data: dict[str, str], tmp_path: Path) -> None:
    """Two CPU processes (gloo) under torchrun: each takes half of every epoch (the optimizer counts half the
    steps of one process), only rank 0 reports and writes."""
    import subprocess
    import sys

    from faceaffect.models import load_model
    from faceaffect.train.checkpoint import load_checkpoint

    config = {"model": MODEL, "data": data, "stages": [{"epochs": 2, "lr": 1e-3}], "batch_size": 4,
              "sam": False, "num_workers": 0, "device": "cpu", "tensorboard": False}  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command = [*launch, "-m", "faceaffect", "train", "config.yaml", "--output-dir", "run"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    output = done.stdout + done.stderr
    assert output.count("best epoch") == 1 and output.count("epoch 2 (stage 1)") == 1
    assert len((tmp_path / "run" / "metrics.csv").read_text().splitlines()) == 1 + 2
    steps = load_checkpoint(tmp_path / "run" / "last.pt")["optimizer"]["state"][0]["step"]
    assert int(steps) == 2 * 64 // (4 * 2)  # 2 epochs of 64 images, batches of 4 on each of 2 processes
    assert load_model(tmp_path / "run" / "best").config.input_size == 32
