"""`faceaffect batch` from the command line: outputs per input, features into a store as `faceaffect
features` writes it, and one-line errors."""

from __future__ import annotations

import fcntl
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FRAMES
from typer.testing import CliRunner

from faceaffect.cli import app

runner = CliRunner()


def run(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, ["batch", *map(str, args)])
    return result.exit_code, result.stderr


@pytest.mark.slow
def test_each_input_gets_every_output_asked_for(clips: list[Path], tmp_path: Path) -> None:
    video, images = clips[0], clips[-1]
    code, stderr = run(video, images, "-o", tmp_path, "--format", "csv", "--summary", "--embeddings",
                       "--max-frames", FRAMES, "--workers", 1)  # fmt: skip
    assert code == 0, stderr
    assert "2 done, 0 failed, 0 done before" in stderr and "manifest" in stderr
    photos = len(list(images.iterdir()))  # one face each: a summary row each (a video's face: one track)
    for name, faces, tracks in ((video.stem, FRAMES, 1), (images.name, photos, photos)):
        table = pd.read_csv(tmp_path / f"{name}.csv")
        assert len(table) == faces and len(pd.read_csv(tmp_path / f"{name}.summary.csv")) == tracks
        assert np.load(tmp_path / f"{name}.embeddings.npy").shape == (faces, 512)


@pytest.mark.slow
def test_features_fill_the_store_the_features_command_fills(clips: list[Path], tmp_path: Path) -> None:
    from faceaffect.downstream.extract import extract_features
    from faceaffect.downstream.features import FeatureStore

    inputs = [clips[0], clips[-1]]  # a video and a folder of numbered frames (face crops)
    code, stderr = run(*inputs, "-o", tmp_path / "batch", "--features", "--stride", 12, "--workers", 2)
    assert code == 0, stderr
    expected = extract_features(inputs, tmp_path / "single", stride=12).store
    store = FeatureStore.open(tmp_path / "batch")
    assert (store.model, store.settings) == (expected.model, expected.settings)
    assert sorted(store) == sorted(expected)
    for video in expected:
        ours, theirs = store.read(video), expected.read(video)
        np.testing.assert_array_equal(ours.frames, theirs.frames)
        np.testing.assert_allclose(ours.embedding, theirs.embedding, atol=1e-5)
        np.testing.assert_allclose(ours.logits, theirs.logits, atol=1e-5)
    code, stderr = run(*inputs, "-o", tmp_path / "batch", "--features", "--stride", 12)
    assert code == 0 and "0 done, 0 failed, 2 done before" in stderr


def words(panel: str) -> str:
    """A usage error's words, wherever click's box broke its lines (narrow terminals too)."""
    return " ".join(panel.replace("│", " ").split())


def test_analysis_flags_with_features_are_a_usage_error(tmp_path: Path) -> None:
    code, stderr = run(tmp_path, "-o", tmp_path / "out", "--features", "--summary")
    assert code == 2 and "--summary is for the analysis" in words(stderr)
    code, stderr = run(tmp_path, "-o", tmp_path / "out", "--format", "xlsx")
    assert code == 2 and "use one of csv, parquet, jsonl" in words(stderr)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--engine", "spark"], "unknown engine 'spark'"),
        (["--address", "127.0.0.1:1"], "use it with the ray engine"),
        ([], "no videos, images or folders of images"),
    ],
)
def test_mistakes_are_one_line_errors(tmp_path: Path, arguments: list[str], message: str) -> None:
    code, stderr = run(tmp_path, "-o", tmp_path / "out", *arguments)
    assert code == 1 and stderr.startswith("error:") and message in stderr and "Traceback" not in stderr


def test_a_folder_that_another_run_writes_to_is_refused(clips: list[Path], tmp_path: Path) -> None:
    with open(tmp_path / ".batch.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, stderr = run(clips[0], "-o", tmp_path)
    assert code == 1 and "another batch run is writing to" in stderr
