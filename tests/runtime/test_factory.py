"""create_engine: which engine ``auto`` picks, every kind of model source, and one-line errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from faceaffect.core.errors import FaceaffectError, UnknownModelError
from faceaffect.export import export_model
from faceaffect.hub import WeightsNotCachedError, cache_path, sha256_file
from faceaffect.hub.registry import REGISTRY, WeightSource
from faceaffect.preprocess import preprocess
from faceaffect.recognizer import Recognizer
from faceaffect.runtime import choose_engine, create_engine
from faceaffect.runtime.onnx_engine import OnnxEngine
from faceaffect.runtime.torch_engine import TorchEngine


@pytest.fixture(scope="module")
def both_formats(calibrated_model, tmp_path_factory):
    """A saved folder with model.onnx, model.safetensors and config.json."""
    folder = tmp_path_factory.mktemp("both")
    export_model(calibrated_model("mbf_va_mtl"), folder, torch_weights=True)
    return folder


def test_auto_prefers_onnx_on_cpu_and_torch_on_gpu() -> None:
    assert choose_engine("auto", "cpu", has_onnx=True, has_torch=True) == "onnx"
    assert choose_engine("auto", "cuda", has_onnx=True, has_torch=True) == "torch"
    assert choose_engine("auto", "cuda", has_onnx=True, has_torch=False) == "onnx"
    assert choose_engine("auto", "cpu", has_onnx=False, has_torch=True) == "torch"
    assert choose_engine("torch", "cpu", has_onnx=True, has_torch=True) == "torch"


def test_folder_with_both_formats(both_formats, face_crops) -> None:
    assert isinstance(create_engine(both_formats), OnnxEngine)
    assert isinstance(create_engine(both_formats, engine="torch"), TorchEngine)
    onnx = Recognizer(both_formats, engine="onnx").predict(face_crops)
    torch = Recognizer(both_formats, engine="torch").predict(face_crops)
    for a, b in zip(onnx, torch, strict=True):
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-4, rtol=0)
        assert a.valence == pytest.approx(b.valence, abs=1e-4) and a.top_label == b.top_label


def test_torch_model_runs_on_either_engine(calibrated_model, face_crops) -> None:
    model = calibrated_model("mbf_va_mtl")
    assert isinstance(create_engine(model), TorchEngine)
    onnx = Recognizer(model, engine="onnx", batch_size=4).run(face_crops, embeddings=True)
    torch = Recognizer(model, engine="torch").run(face_crops, embeddings=True)
    np.testing.assert_allclose(onnx.embedding, torch.embedding, atol=1e-4 * np.abs(torch.embedding).max())


def test_registered_name_uses_its_published_onnx_file(
    calibrated_model, face_crops, tmp_path, monkeypatch
) -> None:
    """The path of a registered model: its ONNX file comes from the cache, verified, loaded offline."""
    model = calibrated_model("mbf_va_mtl")
    export_model(model, tmp_path / "pub", layout="published")
    published = tmp_path / "pub" / "model.onnx"
    source = WeightSource("https://example.invalid/test_pub.onnx", "onnx", sha256=sha256_file(published))
    monkeypatch.setenv("FACEAFFECT_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(
        REGISTRY, "test_pub", model.config.replace(name="test_pub", weights=None, onnx=source)
    )
    with pytest.raises(WeightsNotCachedError, match="offline"):
        create_engine("test_pub", offline=True)
    cache_path(source).parent.mkdir(parents=True)
    shutil.copy(published, cache_path(source))
    engine = create_engine("test_pub", offline=True)
    assert isinstance(engine, OnnxEngine) and engine.layout == "published"
    batch = preprocess(face_crops, model.config)
    got, expected = engine.run(batch, with_embedding=True), TorchEngine(model).run(batch, with_embedding=True)
    np.testing.assert_allclose(got.valence_arousal, expected.valence_arousal, atol=1e-4, rtol=0)
    np.testing.assert_allclose(
        got.embedding, expected.embedding, atol=1e-4 * np.abs(expected.embedding).max()
    )
    with pytest.raises(FaceaffectError, match="test_pub has no published weights"):
        create_engine("test_pub", engine="torch")


def test_bad_choices_are_one_line_errors(both_formats, tmp_path) -> None:
    with pytest.raises(FaceaffectError, match="unknown engine 'tensorrt'"):
        create_engine(both_formats, engine="tensorrt")
    with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
        create_engine("nope")
    with pytest.raises(UnknownModelError, match="neither a saved model folder"):
        create_engine(tmp_path)
    (tmp_path / "config.json").write_text((both_formats / "config.json").read_text())
    with pytest.raises(FaceaffectError, match=r"neither model\.onnx nor model\.safetensors"):
        create_engine(tmp_path)
    (tmp_path / "model.safetensors").write_bytes((both_formats / "model.safetensors").read_bytes())
    with pytest.raises(FaceaffectError, match="no ONNX file"):
        create_engine(tmp_path, engine="onnx")
    with pytest.raises(FaceaffectError, match="has no published weights"):
        create_engine("ddamfn_8")


def test_offline_auto_takes_the_published_file_already_cached(both_formats, tmp_path, monkeypatch) -> None:
    config = Recognizer(both_formats, engine="onnx").config
    files = {"onnx": both_formats / "model.onnx", "safetensors": both_formats / "model.safetensors"}
    sources = {
        fmt: WeightSource(f"https://example.invalid/cached.{fmt}", fmt, sha256=sha256_file(path))
        for fmt, path in files.items()
    }
    monkeypatch.setenv("FACEAFFECT_HOME", str(tmp_path))
    monkeypatch.setitem(
        REGISTRY,
        "test_cached",
        config.replace(name="test_cached", weights=sources["safetensors"], onnx=sources["onnx"]),
    )
    cache_path(sources["safetensors"]).parent.mkdir(parents=True)
    shutil.copy(files["safetensors"], cache_path(sources["safetensors"]))
    assert isinstance(create_engine("test_cached", offline=True), TorchEngine)
    cache_path(sources["onnx"]).parent.mkdir(parents=True)
    shutil.copy(files["onnx"], cache_path(sources["onnx"]))
    assert isinstance(create_engine("test_cached", offline=True), OnnxEngine)
