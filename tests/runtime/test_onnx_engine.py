"""OnnxEngine: parity with torch on real face crops, both ONNX layouts, and clear errors for bad graphs."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

from faceaffect.core.errors import FaceaffectError
from faceaffect.hub import CheckpointError
from faceaffect.models.onnx_export import onnx_bytes
from faceaffect.onnx.graph import EMBEDDING, Layout, expose_embedding
from faceaffect.preprocess import preprocess
from faceaffect.recognizer import softmax
from faceaffect.runtime.onnx_engine import CPU_BATCH, OnnxEngine, onnx_providers, physical_cores
from faceaffect.runtime.torch_engine import TorchEngine

PARITY = 1e-4


@pytest.mark.parametrize(
    "name",
    [
        "mbf_va_mtl",
        pytest.param("ddamfn_8", marks=pytest.mark.slow),
        pytest.param("enet_b0_8_best_afew", marks=pytest.mark.slow),
    ],
)
@pytest.mark.parametrize("layout", ["faceaffect", "published"])
def test_matches_torch_on_real_crops(calibrated_model, face_crops, name: str, layout: str) -> None:
    model = calibrated_model(name)
    batch = preprocess(face_crops, model.config)
    expected = TorchEngine(model).run(batch, with_embedding=True)
    engine = OnnxEngine(onnx_bytes(model, layout=layout), model.config)
    got = engine.run(batch, with_embedding=True)

    assert engine.layout == layout
    probabilities = softmax(expected.logits.astype(np.float64))
    assert probabilities.max(axis=1).min() > 0.2, "degenerate model: the test would prove nothing"
    np.testing.assert_allclose(softmax(got.logits.astype(np.float64)), probabilities, atol=PARITY, rtol=0)
    scale = np.abs(expected.embedding).max()
    np.testing.assert_allclose(got.embedding / scale, expected.embedding / scale, atol=PARITY, rtol=0)
    if model.config.has_va:
        np.testing.assert_allclose(got.valence_arousal, expected.valence_arousal, atol=PARITY, rtol=0)
    else:
        assert got.valence_arousal is None


def test_outputs_follow_the_request_and_the_batch(calibrated_model, face_crops) -> None:
    model = calibrated_model("mbf_va_mtl")
    engine = OnnxEngine(onnx_bytes(model), model.config, threads=1)
    batch = preprocess(face_crops, model.config)
    whole = engine.run(batch)
    assert whole.embedding is None and whole.logits.shape == (len(face_crops), 8)
    one_by_one = np.concatenate([engine.run(batch[i : i + 1]).logits for i in range(len(batch))])
    np.testing.assert_allclose(one_by_one, whole.logits, atol=1e-5)
    empty = engine.run(batch[:0], with_embedding=True)
    assert empty.logits.shape == (0, 8) and empty.valence_arousal.shape == (0, 2)
    assert empty.embedding.shape == (0, 512)
    assert engine.threads == 1 and engine.providers == ["CPUExecutionProvider"]


def test_published_file_gains_an_embedding_output(calibrated_model) -> None:
    model = calibrated_model("mbf_va_mtl")
    proto = onnx.load_from_string(onnx_bytes(model, layout=Layout.PUBLISHED))
    assert [o.name for o in proto.graph.output] == ["output"]
    exposed = expose_embedding(proto, model.config)
    assert [o.name for o in exposed.graph.output] == ["output", EMBEDDING]
    onnx.checker.check_model(exposed)


def test_mismatched_config_is_refused(calibrated_model) -> None:
    model = calibrated_model("mbf_va_mtl")
    data = onnx_bytes(model, layout=Layout.PUBLISHED)
    wrong_dim = model.config.replace(embedding_dim=256)
    with pytest.raises(CheckpointError, match="maps 512 -> 10"):
        OnnxEngine(data, wrong_dim)
    with pytest.raises(CheckpointError, match="maps 512 -> 10"):
        OnnxEngine(data, model.config.replace(has_va=False))
    with pytest.raises(CheckpointError, match=r"takes \['batch', 3, 112, 112\]"):
        OnnxEngine(onnx_bytes(model), model.config.replace(input_size=224))


def test_unreadable_or_foreign_graphs_are_refused(calibrated_model, tmp_path) -> None:
    config = calibrated_model("mbf_va_mtl").config
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not an onnx model" * 10)
    with pytest.raises(CheckpointError, match=r"garbage\.onnx"):
        OnnxEngine(garbage, config)
    with pytest.raises(CheckpointError, match="cannot read"):
        OnnxEngine(tmp_path / "missing.onnx", config)
    proto = onnx.load_from_string(onnx_bytes(calibrated_model("mbf_va_mtl")))
    proto.graph.output.pop()  # drops the embedding: neither layout
    with pytest.raises(CheckpointError, match="expected"):
        OnnxEngine(proto.SerializeToString(), config)


def test_devices_and_threads() -> None:
    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    assert onnx_providers("auto")[-1] == "CPUExecutionProvider"
    with pytest.raises(FaceaffectError, match="unknown device"):
        onnx_providers("tpu")
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(FaceaffectError, match="no CUDA provider"):
            onnx_providers("cuda:0")
    assert 1 <= physical_cores() <= (os.cpu_count() or 1)


def test_cpu_engine_runs_one_single_threaded_batch_per_core(calibrated_model) -> None:
    model = calibrated_model("mbf_va_mtl")
    data = onnx_bytes(model)
    default = OnnxEngine(data, model.config)
    assert default.threads == 1 and default.concurrency == physical_cores()
    assert default.preferred_batch == CPU_BATCH
    wide = OnnxEngine(data, model.config, threads=physical_cores())
    assert wide.threads == physical_cores() and wide.concurrency == 1
