"""The published HSEmotion files' real loading path, on files with their structure (``make_published``).

Each file is rebuilt byte for byte from its seed (checked against the manifest's sha256), then loaded by every
route: a local path, the download cache (a server on 127.0.0.1, checksum, then offline), and both engines,
and compared with the outputs its original module gave. A hostile variant of each is refused unexecuted.
"""

from __future__ import annotations

import io
import pickletools
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from make_published import (
    FIXTURES,
    input_images,
    manifest,
    normalized,
    reference,
    sha256,
    write_onnx,
    write_pickle,
)

from faceaffect.core.numeric import softmax
from faceaffect.hub import (
    ChecksumMismatchError,
    UnsafeCheckpointError,
    WeightsNotCachedError,
    read_module_state_dict,
)
from faceaffect.hub.registry import REGISTRY, ModelConfig, WeightSource, get_config
from faceaffect.models.loading import load_model
from faceaffect.onnx.graph import optimize_for_runtime
from faceaffect.recognizer import Recognizer

MODELS = list(FIXTURES)
TORCH_ATOL = 5e-6  # the same module on the same input: only float rounding (times the output's scale)
ENGINE_ATOL = 1e-4  # another preprocessing path, channels-last kernels or ONNX Runtime's fused graph
EFFICIENTNET = ("efficientnet EfficientNet",)
BLOCKS = ("DepthwiseSeparableConv", "InvertedResidual", "SqueezeExcite")
LAYERS = ("conv2d_same Conv2dSame", "norm_act BatchNormAct2d", "adaptive_avgmax_pool SelectAdaptivePool2d")
TIMM_06 = {f"timm.models.{name}" for name in EFFICIENTNET}
TIMM_06 |= {f"timm.models.efficientnet_blocks {name}" for name in BLOCKS}
TIMM_06 |= {f"timm.models.layers.{name}" for name in LAYERS}
TIMM_09 = {f"timm.models.{name}" for name in EFFICIENTNET}
TIMM_09 |= {f"timm.models._efficientnet_blocks {name}" for name in BLOCKS}
TIMM_09 |= {f"timm.layers.{name}" for name in LAYERS}
MBF = ("MobileFaceNet", "ConvBlock", "LinearBlock", "DepthWise", "Residual", "GDC", "Flatten")
UPSTREAM_MBF = {f"mobilefacenet {name}" for name in MBF}
STRUCTURE = {  # model: (its non-torch globals, classifier key, where its storages were saved)
    "enet_b0_7": (TIMM_06, "classifier.0.weight", "cpu"),
    "enet_b0_8_va_mtl": (TIMM_09, "classifier.weight", "cpu"),
    "mbf_va_mtl": (UPSTREAM_MBF, "fc.weight", "cuda:0"),
}
HOSTILE = {"enet_b0_7": "posix.system", "enet_b0_8_va_mtl": "builtins.eval", "mbf_va_mtl": "subprocess.Popen"}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("published")
    return {name: write_pickle(fixture, folder) for name, fixture in FIXTURES.items()}


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_onnx(FIXTURES["enet_b0_8_va_mtl"], tmp_path_factory.mktemp("onnx"))


def pickle_strings(path: Path) -> tuple[set[str], set[str]]:
    """The globals a ``torch.save`` archive names (``module name``) and the strings it holds."""
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    ops = list(pickletools.genops(io.BytesIO(data)))
    globals_ = {arg for op, arg, _ in ops if op.name == "GLOBAL"}
    return globals_, {arg for _, arg, _ in ops if isinstance(arg, str)}


def assert_close(got: np.ndarray, expected: np.ndarray, atol: float) -> None:
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol * max(1.0, float(np.abs(expected).max())))


def assert_reference(model: torch.nn.Module, name: str) -> None:
    """``model`` gives the outputs and embeddings that the original module gave for the same images."""
    fixture, (outputs, embeddings) = FIXTURES[name], reference(name)
    x = normalized(input_images(fixture.input_size), fixture)
    with torch.inference_mode():
        embedding = model.forward_features(x)
        assert_close(model.head(embedding).numpy(), outputs, TORCH_ATOL)
        assert_close(embedding.numpy(), embeddings, TORCH_ATOL)


def served_config(name: str, server, files: dict[str, Path], onnx_path: Path | None = None) -> ModelConfig:
    """The registered config with its published files served by the local server, verified by sha256."""
    sources = {}
    for key, path, fmt in (("weights", files[name], "hsemotion_pickle"), ("onnx", onnx_path, "onnx")):
        if path is not None:
            server.files[f"models/{path.name}"] = path.read_bytes()
            sources[key] = WeightSource(
                f"{server.url('models/' + path.name)}?raw=true", fmt, sha256=sha256(path)
            )
    return get_config(name).replace(weights=sources["weights"], onnx=sources.get("onnx"))


@pytest.mark.parametrize("name", MODELS)
def test_files_are_rebuilt_byte_for_byte(files, name):
    expected = manifest()["files"][name]
    assert (files[name].name, files[name].stat().st_size) == (expected["file"], expected["bytes"])
    assert sha256(files[name]) == expected["sha256"], (
        "not the file the references were made for (does a new torch write archives differently?): "
        "check, then run python tests/hub/make_published.py"
    )


@pytest.mark.parametrize("name", MODELS)
def test_files_have_the_published_structure(files, name):
    expected_globals, classifier, location = STRUCTURE[name]
    globals_, strings = pickle_strings(files[name])
    classes = {g for g in globals_ if not g.startswith(("torch", "collections", "__builtin__"))}
    assert classes == expected_globals
    assert "torch._utils _rebuild_parameter" in globals_ and "torch._utils _rebuild_tensor_v2" in globals_
    assert location in strings and ({"cpu", "cuda:0"} - {location}).isdisjoint(strings)
    assert classifier in read_module_state_dict(files[name])


@pytest.mark.parametrize("name", MODELS)
def test_local_path_gives_the_original_outputs(files, name):
    model = load_model(name, weights_path=files[name])
    assert not model.training and model.config == get_config(name)
    assert_reference(model, name)


@pytest.mark.parametrize("name", MODELS)
def test_download_is_verified_cached_then_used_offline(files, name, http_server, tmp_path):
    config, cache = served_config(name, http_server, files), tmp_path / "cache"
    with pytest.raises(WeightsNotCachedError):
        load_model(config, cache_dir=cache, offline=True)
    data = http_server.files[f"models/{files[name].name}"]
    http_server.files["models/corrupt.pt"] = data[:-1] + bytes([data[-1] ^ 1])
    corrupt = config.replace(weights=replace(config.weights, url=http_server.url("models/corrupt.pt")))
    with pytest.raises(ChecksumMismatchError):
        load_model(corrupt, cache_dir=cache)
    assert not any(cache.rglob("*.pt")) and len(http_server.requests) == 1
    http_server.requests.clear()
    assert_reference(load_model(config, cache_dir=cache), name)
    assert http_server.requests == [f"models/{files[name].name}"]
    assert_reference(load_model(config, cache_dir=cache, offline=True), name)
    assert len(http_server.requests) == 1


def check_predictions(recognizer: Recognizer, name: str) -> None:
    """Recognizer predictions on the seeded images against the original module's outputs."""
    outputs, embeddings = reference(name)
    n = recognizer.config.num_classes
    predictions = recognizer.predict(list(input_images(recognizer.config.input_size)), embeddings=True)
    got = np.stack([p.probabilities for p in predictions])
    np.testing.assert_allclose(got, softmax(outputs[:, :n].astype(np.float64)), rtol=0, atol=ENGINE_ATOL)
    assert_close(np.stack([p.logits for p in predictions]), outputs[:, :n], ENGINE_ATOL)
    assert_close(np.stack([p.embedding for p in predictions]), embeddings, ENGINE_ATOL)
    if recognizer.config.has_va:
        va = np.array([(p.valence, p.arousal) for p in predictions])
        np.testing.assert_allclose(va, np.clip(outputs[:, n:], -1, 1), rtol=0, atol=ENGINE_ATOL)


@pytest.mark.parametrize(
    ("name", "engine"),
    [(name, "torch") for name in MODELS] + [pytest.param("enet_b0_8_va_mtl", "onnx", marks=pytest.mark.slow)],
)
def test_recognizer_engines_download_then_run_offline(request, files, name, engine, http_server, tmp_path,
                                                      monkeypatch):  # fmt: skip
    onnx_path = request.getfixturevalue("onnx_file") if engine == "onnx" else None
    monkeypatch.setitem(REGISTRY, name, served_config(name, http_server, files, onnx_path))
    monkeypatch.setenv("FACEAFFECT_HOME", str(tmp_path / "home"))
    check_predictions(Recognizer(name, engine=engine), name)
    assert len(http_server.requests) == 1
    monkeypatch.setenv("FACEAFFECT_OFFLINE", "1")
    check_predictions(Recognizer(name, engine=engine), name)
    assert len(http_server.requests) == 1


@pytest.mark.slow
def test_onnx_file_is_exported_as_upstream_and_rewritten_on_load(onnx_file):
    model = onnx.load(str(onnx_file))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [11]
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["output"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch_size"

    def computed_pads(proto: onnx.ModelProto) -> int:
        constants = {init.name for init in proto.graph.initializer}
        pads = [node for node in proto.graph.node if node.op_type == "Pad"]
        assert len(pads) == 5  # the stem's and four strided depthwise convolutions' TF "same" padding
        return sum(node.input[1] not in constants for node in pads)

    assert computed_pads(model) == 5
    assert computed_pads(optimize_for_runtime(model, 224)) == 0


@pytest.mark.parametrize("name", MODELS)
def test_hostile_variants_are_refused_unexecuted(files, name, http_server, tmp_path):
    sentinel = tmp_path / "sentinel"
    path = write_pickle(FIXTURES[name], tmp_path, hostile_command=f"touch {sentinel}")
    assert len(pickle_strings(path)[0] - pickle_strings(files[name])[0]) == 1  # the same file plus one global
    config = served_config(name, http_server, {name: path})
    for load in (lambda: load_model(name, weights_path=path), lambda: load_model(config, cache_dir=tmp_path)):
        with pytest.raises(UnsafeCheckpointError) as error:
            load()
        message = str(error.value)
        assert "\n" not in message and f"global {HOSTILE[name]}," in message
    assert not sentinel.exists()


def test_module_names_in_a_file_are_never_imported(files, tmp_path, monkeypatch):
    sentinel = tmp_path / "imported"
    (tmp_path / "mobilefacenet.py").write_text(f"open({str(sentinel)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mobilefacenet", raising=False)
    assert_reference(load_model("mbf_va_mtl", weights_path=files["mbf_va_mtl"]), "mbf_va_mtl")
    assert "mobilefacenet" not in sys.modules and not sentinel.exists()
