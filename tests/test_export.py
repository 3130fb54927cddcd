"""Export to ONNX: the folder it writes, the parity check guarding it, and `faceaffect export`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from faceaffect.cli import app
from faceaffect.export import ExportError, export_model, parity
from faceaffect.models import create_model, save_model
from faceaffect.models.calibrate import recalibrate_batchnorm
from faceaffect.models.onnx_export import onnx_bytes
from faceaffect.preprocess import preprocess
from faceaffect.recognizer import Recognizer
from faceaffect.runtime.onnx_engine import OnnxEngine

runner = CliRunner()


def test_export_writes_a_folder_that_recognizes_like_torch(calibrated_model, face_crops, tmp_path) -> None:
    model = calibrated_model("mbf_va_mtl")
    report = export_model(model, tmp_path / "out", check_images=face_crops)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.json", "model.onnx"]
    assert json.loads((tmp_path / "out" / "config.json").read_text())["name"] == "mbf_va_mtl"
    assert report.images == len(face_crops) and report.max_probability_diff <= 1e-4
    assert "probabilities" in report.summary()
    onnx = Recognizer(tmp_path / "out").predict(face_crops, embeddings=True)
    torch = Recognizer(model, engine="torch").predict(face_crops, embeddings=True)
    assert [p.top_label for p in onnx] == [p.top_label for p in torch]
    np.testing.assert_allclose(
        np.stack([p.probabilities for p in onnx]), np.stack([p.probabilities for p in torch]), atol=1e-4
    )


def test_parity_check_catches_a_graph_that_differs(calibrated_model, face_crops, tmp_path) -> None:
    model = calibrated_model("mbf_va_mtl")
    other = recalibrate_batchnorm(create_model("mbf_va_mtl"), preprocess(face_crops, model.config))
    probabilities, va, _ = parity(model, OnnxEngine(onnx_bytes(other), other.config), face_crops)
    assert probabilities > 0.1 and va > 0.1
    with pytest.raises(ExportError, match="nothing written"):
        export_model(model, tmp_path / "strict", check_images=face_crops, tolerance=1e-12)
    assert not (tmp_path / "strict").exists()


def test_cli_export_then_predict(calibrated_model, face_crops, shared_data, tmp_path) -> None:
    save_model(calibrated_model("mbf_va_mtl"), tmp_path / "torch")
    aligned = shared_data / "faces" / "facenet-pytorch" / "test_images_aligned"
    result = runner.invoke(
        app,
        ["export", str(tmp_path / "torch"), "-o", str(tmp_path / "onnx"), "--check-images", str(aligned),
         "--torch-weights"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "5 images" in result.output and (tmp_path / "onnx" / "model.safetensors").is_file()
    rows = []
    for engine in ("onnx", "torch"):
        out = tmp_path / f"{engine}.csv"
        args = ["predict-crops", str(aligned), "-m", str(tmp_path / "onnx"), "--engine", engine, "-q"]
        result = runner.invoke(app, [*args, "-o", str(out)])
        assert result.exit_code == 0, result.output
        rows.append(np.loadtxt(out, delimiter=",", skiprows=1, usecols=range(1, 9)))
    np.testing.assert_allclose(rows[0], rows[1], atol=1e-4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "-o", "{tmp}/x"], "unknown model 'nope'"),
        (["{tmp}", "-o", "{tmp}/x"], "neither a saved model folder"),
        (["mbf_va_mtl", "-o", "{tmp}/x", "--layout", "tflite"], "unknown layout 'tflite'"),
        (["mbf_va_mtl", "-o", "{tmp}/x", "--check-images", "{tmp}/none"], "no such file or folder"),
    ],
)
def test_cli_export_user_errors(tmp_path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["export", *[a.format(tmp=tmp_path) for a in args]])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_embedded_shaped_model_folder_runs_on_onnx_alone(face_crops, tmp_path) -> None:
    """The embedded default's config (grey input, mirror-averaged) with random weights: its folder with only
    model.onnx and config.json gives what torch gives, grey preprocessing and mirror average included."""
    from faceaffect.hub.registry import get_config

    config = get_config("mbf_ferplus_8").replace(weights=None, onnx=None)
    model = create_model(config)
    recalibrate_batchnorm(model, preprocess(face_crops, config))
    export_model(model, tmp_path / "default", check_images=face_crops)
    onnx = Recognizer(tmp_path / "default", engine="onnx")
    assert onnx.config.grayscale and onnx.config.flip_average
    assert onnx.config.input_size == config.input_size
    got = onnx.predict(face_crops)
    mirrored = onnx.predict([np.ascontiguousarray(crop[:, ::-1]) for crop in face_crops])
    np.testing.assert_allclose(
        np.stack([p.probabilities for p in mirrored]), np.stack([p.probabilities for p in got]), atol=1e-5
    )
    expected = Recognizer(model, engine="torch").predict(face_crops)
    np.testing.assert_allclose(
        np.stack([p.probabilities for p in got]), np.stack([p.probabilities for p in expected]), atol=1e-4
    )
    assert got[0].valence is None
