"""The restricted unpickler: module pickles become flat state dicts, and nothing from the file ever runs."""

from __future__ import annotations

import builtins
import functools
import io
import os
import pickle
import subprocess

import pytest
import torch
from torch import nn

from faceaffect.hub import CheckpointError, UnsafeCheckpointError, read_module_state_dict, read_state_dict
from faceaffect.hub.safe_pickle import _RestrictedUnpickler

FORMATS = pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])


class Custom(nn.Module):
    """A module class outside the stub namespaces (this test module)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2)


def module_tree() -> nn.Module:
    shared = nn.Linear(3, 4, bias=False)  # bias None in _parameters
    model = nn.Sequential(
        nn.Conv2d(3, 3, 1),
        nn.BatchNorm2d(3),
        nn.Sequential(shared, nn.ReLU(), shared),
        nn.Identity(),
    )
    model.register_buffer("scale", torch.tensor([2.0]))
    model.register_buffer("cache", torch.ones(3), persistent=False)
    model.register_buffer("absent", None)
    model.gate = functools.partial(torch.nn.functional.relu, inplace=False)  # plain module state, not tensors
    model.gate_fn = torch.nn.functional.silu
    model.act_fn = torch.nn.functional.gelu  # a builtin of torch._C._nn
    model.feature_info = [{"num_chs": 3, "module": "0"}]
    return model


def save(obj: object, path, zip_format: bool = True):
    torch.save(obj, path, _use_new_zipfile_serialization=zip_format)
    return path


@FORMATS
def test_module_pickle_gives_the_state_dict(tmp_path, zip_format):
    model = module_tree()
    state = read_module_state_dict(save(model, tmp_path / "m.pt", zip_format))
    expected = model.state_dict()
    assert list(state) == list(expected)  # same names and order, no non-persistent or None entries
    assert all(torch.equal(state[k], expected[k]) and state[k].dtype == expected[k].dtype for k in expected)
    assert not any(t.requires_grad for t in state.values())


def test_plain_and_wrapped_state_dicts(tmp_path):
    expected = nn.Linear(3, 2).state_dict()
    for obj in (expected, {"model_state_dict": expected, "epoch": 3}):
        path = save(obj, tmp_path / "sd.pth")
        for read in (read_state_dict, read_module_state_dict):
            state = read(path)
            assert list(state) == list(expected) and all(torch.equal(state[k], expected[k]) for k in expected)


def test_stubbed_callables_never_run(tmp_path):
    class OnesOnLoad:
        def __init__(self, tensor: torch.Tensor) -> None:
            self.tensor = tensor

        def __reduce__(self):
            return torch.nn.init.ones_, (self.tensor,)  # would overwrite the buffer if it ran

    model = nn.Module()
    model.register_buffer("zeros", torch.zeros(4))
    model.hook = OnesOnLoad(model.zeros)
    state = read_module_state_dict(save(model, tmp_path / "m.pt"))
    assert torch.equal(state["zeros"], torch.zeros(4))


class System:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class Eval:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return builtins.eval, (f"__import__('os').system({self.command!r})",)


class Popen:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return subprocess.Popen, (["sh", "-c", self.command],)


@FORMATS
@pytest.mark.parametrize(
    ("payload", "global_name"),
    [(System, f"{os.system.__module__}.system"), (Eval, "builtins.eval"), (Popen, "subprocess.Popen")],
)
def test_malicious_pickles_are_refused(tmp_path, zip_format, payload, global_name):
    sentinel = tmp_path / "sentinel"
    model = nn.Linear(2, 2)
    model.payload = payload(f"touch {sentinel}")
    in_module = save(model, tmp_path / "module.pt", zip_format)
    in_dict = save(
        {"weight": torch.zeros(2), "payload": payload(f"touch {sentinel}")}, tmp_path / "sd.pt", zip_format
    )
    for read, path in (
        (read_module_state_dict, in_module),
        (read_module_state_dict, in_dict),
        (read_state_dict, in_dict),
    ):
        with pytest.raises(UnsafeCheckpointError, match=global_name.replace(".", r"\.")):
            read(path)
    assert not sentinel.exists()


def test_classes_outside_the_stub_namespaces_are_refused_unless_allowed(tmp_path):
    path = save(Custom(), tmp_path / "custom.pt")
    with pytest.raises(UnsafeCheckpointError, match=rf"{Custom.__module__}\.Custom"):
        read_module_state_dict(path)
    state = read_module_state_dict(path, extra_stub_namespaces=[Custom.__module__])
    assert list(state) == ["linear.weight", "linear.bias"]


SET_LAYOUT_CACHE = (  # BUILD on an allowed function: _get_layout.cache = 1
    b"ctorch.serialization\n_get_layout\n" + pickle.NONE + pickle.EMPTY_DICT
    + pickle.BINUNICODE + b"\x05\x00\x00\x00cache" + pickle.BININT1 + b"\x01" + pickle.SETITEM
    + pickle.TUPLE2 + pickle.BUILD
)  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"),
    [(pickle.EXT1 + b"\x01", "extension registry"), (SET_LAYOUT_CACHE, "sets the state of a function")],
)
def test_dangerous_opcodes_are_refused(body, message):
    cache = torch.serialization._get_layout.cache
    with pytest.raises(UnsafeCheckpointError, match=message):
        _RestrictedUnpickler(io.BytesIO(pickle.PROTO + b"\x02" + body + pickle.STOP)).load()
    assert torch.serialization._get_layout.cache is cache


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_archives_are_refused(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.script(nn.Linear(2, 2)).save(str(path))
    with pytest.raises(UnsafeCheckpointError, match="TorchScript"):
        read_module_state_dict(path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_module_state_dict(tmp_path / "absent.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        read_module_state_dict(garbage)
    with pytest.raises(UnsafeCheckpointError, match="Unsupported operand"):
        read_state_dict(garbage)
    with pytest.raises(CheckpointError, match="neither a module nor a state dict"):
        read_module_state_dict(save([1, 2], tmp_path / "list.pt"))
