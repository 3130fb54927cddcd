"""`faceaffect models` and `faceaffect predict-crops` through the CLI: tables, embeddings, user errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from faceaffect.cli import app
from faceaffect.core.labels import AFFECTNET_8
from faceaffect.hub.registry import get_config, list_models
from faceaffect.models import create_model, save_model

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = get_config("mbf_va_mtl").replace(name="tiny_mbf", input_size=48)
    return save_model(create_model(config), tmp_path_factory.mktemp("model") / "tiny_mbf")


@pytest.fixture
def crop_folder(shared_data: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "crops"
    aligned = shared_data / "faces" / "facenet-pytorch" / "test_images_aligned"
    shutil.copytree(aligned, folder)
    return folder


def test_models_lists_every_registered_model() -> None:
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0
    assert [entry["name"] for entry in json.loads(result.output)] == list_models()
    table = runner.invoke(app, ["models"])
    assert all(name in table.output for name in list_models())


def test_predict_crops_writes_table_and_embeddings(
    model_dir: Path, crop_folder: Path, tmp_path: Path
) -> None:
    images = sorted(p for p in crop_folder.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    out, emb = tmp_path / "out.parquet", tmp_path / "emb.npy"
    args = ["predict-crops", str(crop_folder), "-m", str(model_dir), "-o", str(out), "--embeddings", str(emb)]
    result = runner.invoke(app, [*args, "-q"])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert len(table) == len(images) > 0
    assert [*AFFECTNET_8, "top_label", "valence", "arousal", "model"] <= list(table.columns)
    np.testing.assert_allclose(table[list(AFFECTNET_8)].sum(axis=1), 1.0, atol=1e-5)
    assert table["valence"].between(-1, 1).all() and set(table["model"]) == {"tiny_mbf"}
    assert np.load(emb).shape == (len(images), 512)


def test_bad_images_are_reported_and_good_ones_kept(model_dir: Path, crop_folder: Path) -> None:
    (crop_folder / "broken.jpg").write_bytes(b"not a jpeg")
    result = runner.invoke(app, ["predict-crops", str(crop_folder), "-m", str(model_dir), "-q"])
    assert result.exit_code == 0
    assert "skipped" in result.output and "broken.jpg" in result.output
    good = [p for p in crop_folder.rglob("*.jpg") if p.name != "broken.jpg"]
    assert all(str(p) in result.output for p in good)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict-crops", "does/not/exist.jpg"], "no such file or folder"),
        (["predict-crops", "{crops}", "-m", "no_such_model"], "unknown model"),
        (["predict-crops", "{crops}", "-m", "{model}", "-o", "/proc/forbidden/out.csv"], "cannot write"),
        (["predict-crops", "{crops}", "-m", "{model}", "-o", "{crops}/out.xlsx"], ".xlsx"),
    ],
)
def test_user_errors_are_one_line(args: list[str], message: str, model_dir: Path, crop_folder: Path) -> None:
    filled = [a.format(crops=crop_folder, model=model_dir) for a in args]
    result = runner.invoke(app, filled)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
