"""load_model / save_model: published-style pickles, saved folders, local files and the download cache."""

from __future__ import annotations

import builtins
import functools
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from torch import nn

from faceaffect.hub import CheckpointError, UnsafeCheckpointError, WeightsNotCachedError, git_sha1_file
from faceaffect.hub.registry import WeightSource, get_config
from faceaffect.models import create_model, ddamfn, mobilefacenet
from faceaffect.models.loading import load_model, save_model
from faceaffect.models.timm_backbones import checkpoint_filter_fn, create_timm_backbone


def randomise_norm_stats(module: nn.Module) -> None:
    """Non-default BatchNorm statistics, so that a loader dropping buffers would be caught."""
    generator = torch.Generator().manual_seed(1)
    for child in module.modules():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            child.running_mean.copy_(torch.randn(child.running_mean.shape, generator=generator) * 0.1)
            child.running_var.copy_(torch.rand(child.running_var.shape, generator=generator) + 0.5)


def hsemotion_pickle(directory: Path, arch: str, classifier: str, head: nn.Module) -> tuple[nn.Module, Path]:
    """A timm model whose classifier was replaced, saved whole with ``torch.save`` as HSEmotion did."""
    model = create_timm_backbone(get_config("enet_b0_8_va_mtl").replace(arch=arch))
    parent, _, name = classifier.rpartition(".")
    setattr(model.get_submodule(parent), name, head)
    randomise_norm_stats(model)
    path = directory / f"{arch}_{type(head).__name__}.pt"
    torch.save(model.eval(), path)
    return model, path


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Intra-op threads stall on a busy shared CPU (seconds per forward); one thread is fast enough here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def enet_b0_va(tmp_path_factory) -> tuple[nn.Module, Path]:
    return hsemotion_pickle(
        tmp_path_factory.mktemp("pickles"),
        "tf_efficientnet_b0",
        "classifier",
        nn.Sequential(nn.Linear(1280, 10)),
    )


@pytest.fixture(scope="module")
def loaded_b0_va(enet_b0_va) -> nn.Module:
    return load_model("enet_b0_8_va_mtl", weights_path=enet_b0_va[1])


def images(size: int, n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def assert_same_outputs(reference: nn.Module, model: nn.Module) -> None:
    x = images(model.config.input_size)
    with torch.inference_mode():
        expected, got = reference.eval()(x), model(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_hsemotion_efficientnet_pickle_with_sequential_classifier(enet_b0_va, loaded_b0_va):
    assert not loaded_b0_va.training and loaded_b0_va.config.name == "enet_b0_8_va_mtl"
    assert_same_outputs(enet_b0_va[0], loaded_b0_va)


@pytest.mark.parametrize(
    ("name", "arch", "classifier", "width"),
    [
        ("enet_b0_7", "tf_efficientnet_b0", "classifier", 1280),
        ("mobilevit_va_mtl", "mobilevitv2_150", "head.fc", 768),
    ],
)
def test_hsemotion_pickles_with_linear_classifier(tmp_path, name, arch, classifier, width):
    config = get_config(name)
    published, path = hsemotion_pickle(tmp_path, arch, classifier, nn.Linear(width, config.num_outputs))
    assert_same_outputs(published, load_model(name, weights_path=path))


def test_timm_filter_refuses_a_classifier_that_is_not_one_linear_layer():
    state = {"conv_stem.weight": torch.zeros(1), "classifier.0.weight": torch.zeros(4, 2)}
    state |= {"classifier.2.weight": torch.zeros(2, 4)}
    with pytest.raises(CheckpointError, match="not a single linear layer"):
        checkpoint_filter_fn(state)
    with pytest.raises(CheckpointError, match="no classifier"):
        checkpoint_filter_fn({"conv_stem.weight": torch.zeros(1)})


def test_wrong_architecture_is_a_clear_error(enet_b0_va):
    with pytest.raises(
        CheckpointError,
        match=r"does not fit enet_b0_7 .*head\.weight \(10, 1280\) in the file, \(7, 1280\) in the model",
    ):
        load_model("enet_b0_7", weights_path=enet_b0_va[1])


def test_saved_folder_and_state_dict_files_round_trip(loaded_b0_va, tmp_path):
    save_model(loaded_b0_va, tmp_path / "saved")
    from_folder = load_model(tmp_path / "saved")
    assert from_folder.config == loaded_b0_va.config
    expected = loaded_b0_va.state_dict()
    assert all(torch.equal(from_folder.state_dict()[key], value) for key, value in expected.items())
    assert_same_outputs(loaded_b0_va, from_folder)
    torch.save({"model_state_dict": expected, "epoch": 3}, tmp_path / "plain.pth")
    assert_same_outputs(loaded_b0_va, load_model("enet_b0_8_va_mtl", weights_path=tmp_path / "plain.pth"))
    safetensors = (tmp_path / "saved" / "model.safetensors").rename(tmp_path / "weights.safetensors")
    assert_same_outputs(loaded_b0_va, load_model("enet_b0_8_va_mtl", weights_path=safetensors))


def test_mobilefacenet_whole_module_pickle(tmp_path):
    assert callable(mobilefacenet.checkpoint_filter_fn)  # load_model dispatches published mbf files to it
    model = create_model("mbf_va_mtl")
    randomise_norm_stats(model)
    torch.save(model, tmp_path / "mbf.pt")  # classes under faceaffect.* are read as inert stubs
    assert_same_outputs(model, load_model("mbf_va_mtl", weights_path=tmp_path / "mbf.pt"))


def test_ddamfn_needs_a_state_dict_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"no published weights.*weights_path"):
        load_model("ddamfn_8")
    assert callable(ddamfn.checkpoint_filter_fn)  # load_model dispatches upstream DDAMFN state dicts to it
    model = create_model("ddamfn_8")
    torch.save({"model_state_dict": model.state_dict()}, tmp_path / "ddamfn.pth")
    assert_same_outputs(model, load_model("ddamfn_8", weights_path=tmp_path / "ddamfn.pth"))


class System:
    def __reduce__(self):
        return os.system, (f"touch {os.environ['SENTINEL']}",)


class Eval:
    def __reduce__(self):
        return builtins.eval, (f"open({os.environ['SENTINEL']!r}, 'w')",)


@pytest.mark.parametrize(
    ("payload", "global_name"), [(System, f"{os.system.__module__}.system"), (Eval, "builtins.eval")]
)
def test_malicious_pickles_are_refused(tmp_path, monkeypatch, payload, global_name):
    sentinel = tmp_path / "sentinel"
    monkeypatch.setenv("SENTINEL", str(sentinel))
    torch.save(payload(), tmp_path / "evil.pt")
    with pytest.raises(UnsafeCheckpointError, match=global_name.replace(".", r"\.")):
        load_model("enet_b0_8_va_mtl", weights_path=tmp_path / "evil.pt")
    assert not sentinel.exists()


def test_bad_names_and_paths(tmp_path):
    (tmp_path / "weights.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="weights_path="):
        load_model(tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="unknown model"):
        load_model("no_such_model")
    onnx_only = get_config("enet_b0_8_va_mtl").replace(weights=get_config("enet_b0_8_va_mtl").onnx)
    with pytest.raises(CheckpointError, match="onnx weights cannot be loaded"):
        load_model(onnx_only, offline=True)


@pytest.fixture
def served(tmp_path) -> str:
    """Serves ``tmp_path / "www"`` on 127.0.0.1; yields the base URL."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_end_to_end_download_verify_cache_and_load(enet_b0_va, served, tmp_path, monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "FACEAFFECT_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    published, path = enet_b0_va
    (tmp_path / "www" / "enet_b0_8_va_mtl.pt").write_bytes(path.read_bytes())
    source = WeightSource(
        f"{served}/enet_b0_8_va_mtl.pt?raw=true", "hsemotion_pickle", git_sha1=git_sha1_file(path)
    )
    config = get_config("enet_b0_8_va_mtl").replace(weights=source)
    cache = tmp_path / "cache"
    with pytest.raises(WeightsNotCachedError):
        load_model(config, cache_dir=cache, offline=True)
    progress: list[int] = []
    model = load_model(config, cache_dir=cache, progress=lambda done, total: progress.append(done))
    assert progress[-1] == path.stat().st_size
    assert_same_outputs(published, model)
    assert_same_outputs(published, load_model(config, cache_dir=cache, offline=True))
