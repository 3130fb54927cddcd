"""Read the tensors of published whole-module pickles (``torch.save(model)``) without running code from them.

A restricted unpickler is handed to ``torch.load`` as its ``pickle_module``. It resolves only an allow-list:

- tensor and storage rebuild functions (replaced by our own versions that only assemble tensors), dtypes,
  ``torch.Size``, ``collections.OrderedDict`` and plain builtin containers;
- classes and functions of module namespaces (``timm``, ``torch.nn``, ``__main__``, ``mobilefacenet``, ...)
  and ``functools.partial``, which become inert stubs that only record their arguments and state.

Any other global (``os.system``, ``builtins.eval``, ``subprocess.*``, ...) raises UnsafeCheckpointError, as
do the extension-registry opcodes and setting state on anything but a fresh object. The stub tree is then
walked like ``Module.state_dict``.

>>> state = read_module_state_dict("enet_b0_8_va_mtl.pt")  # doctest: +SKIP
>>> state["classifier.weight"].shape  # doctest: +SKIP
torch.Size([10, 1280])
"""

from __future__ import annotations

import _compat_pickle
import builtins
import collections
import functools
import pickle
import re
import types
import warnings
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from faceaffect.core.errors import CheckpointError, UnsafeCheckpointError

if TYPE_CHECKING:
    import torch

STUB_NAMESPACES = ("timm", "torch.nn", "torch._C._nn", "__main__", "mobilefacenet", "faceaffect")
"""Module namespaces whose classes and functions become inert stubs: those of the HSEmotion training code
(timm, torch.nn and its functions, the notebook, insightface's ``mobilefacenet``) and our own (``torch.save``
of a faceaffect model)."""

_STUB_GLOBALS = {("functools", "partial")}
_BUILTINS = {"set", "frozenset", "slice", "complex", "list", "dict", "tuple", "int", "float", "str"}
_WRAPPER_KEYS = ("model_state_dict", "state_dict", "model", "net")
_MAX_DEPTH = 64


class _Stub:
    """An inert stand-in for a pickled class instance: records constructor arguments and pickled state."""

    dump_patches = False  # read by torch's legacy loader; must never ask it to write patch files

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._stub_args = (args, kwargs)
        self._stub_items: list[Any] = []

    def __setstate__(self, state: Any) -> None:
        self._stub_state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self._stub_items.append((key, value))

    def append(self, value: Any) -> None:
        self._stub_items.append(value)

    def extend(self, values: Iterable[Any]) -> None:
        self._stub_items.extend(values)

    def __repr__(self) -> str:
        return f"<stub {self._stub_module}.{self._stub_name}>"


def _stub_class(module: str, name: str) -> type[_Stub]:
    # a __module__ that cannot be imported: nothing (e.g. inspect in torch's legacy loader) reads real sources
    attrs = {"_stub_module": module, "_stub_name": name, "__module__": "<stub>", "__qualname__": name}
    return type(name.rsplit(".", 1)[-1], (_Stub,), attrs)


def _rebuild_tensor(storage: Any, storage_offset: int, size: Any, stride: Any, *_: Any) -> torch.Tensor:
    """``torch._utils._rebuild_tensor(_v2)`` minus hooks, metadata and grad flag; file storages only."""
    import torch

    if not isinstance(storage, torch.storage.TypedStorage):
        raise UnsafeCheckpointError(
            f"tensor rebuilt from a {type(storage).__name__}, not a storage of the file"
        )
    return torch._utils._rebuild_tensor(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data: Any, *_: Any) -> torch.Tensor:
    """``_rebuild_parameter(_with_state)``: the plain tensor, dropping hooks and python state."""
    import torch

    if not isinstance(data, torch.Tensor):
        raise UnsafeCheckpointError(f"parameter rebuilt from a {type(data).__name__}, not a tensor")
    return data


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> torch.Tensor:
    """Tensor subclasses: the plain tensor rebuilt by an allowed ``func``; subclass and state are dropped."""
    if func not in (_rebuild_tensor, _rebuild_parameter):
        raise UnsafeCheckpointError(f"tensor subclass rebuilt through {func!r}")
    return func(*args)


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeCheckpointError(f"_codecs.encode called with {type(text).__name__}, {encoding!r}")
    return text.encode("latin1")


@functools.cache
def _allowed() -> dict[tuple[str, str], Any]:
    import torch

    allowed: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("torch.serialization", "_get_layout"): torch.serialization._get_layout,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): _latin1_bytes,
    }
    allowed.update({("builtins", name): getattr(builtins, name) for name in _BUILTINS})
    for name, value in vars(torch).items():
        if isinstance(value, torch.dtype | torch.layout | torch.memory_format):
            allowed["torch", name] = value
    return allowed


_DISPATCH = pickle._Unpickler.dispatch  # type: ignore[attr-defined]


def _refuse_extension(unpickler: pickle._Unpickler) -> None:  # type: ignore[name-defined]
    raise UnsafeCheckpointError("refusing to load: the pickle uses the copyreg extension registry")


def _build_stub_only(unpickler: pickle._Unpickler) -> None:  # type: ignore[name-defined]
    # BUILD sets attributes: fine on fresh stubs and OrderedDicts (state_dict's _metadata), but on an allowed
    # function or class it would alter it for the whole process
    target = unpickler.stack[-2]
    if not isinstance(target, _Stub | collections.OrderedDict):
        raise UnsafeCheckpointError(
            f"refusing to load: the pickle sets the state of a {type(target).__name__}"
        )
    _DISPATCH[pickle.BUILD[0]](unpickler)


class _RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """Pure-python unpickler: globals only through the allow-list, restricted BUILD, no EXT opcodes."""

    dispatch: ClassVar[dict[int, Callable[..., None]]] = {
        **_DISPATCH,
        **{opcode[0]: _refuse_extension for opcode in (pickle.EXT1, pickle.EXT2, pickle.EXT4)},
        pickle.BUILD[0]: _build_stub_only,
    }

    stub_namespaces: tuple[str, ...] = STUB_NAMESPACES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stubs: dict[tuple[str, str], type[_Stub]] = {}

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3:
            module, name = _python3_name(module, name)
        allowed = _allowed()
        if (module, name) in allowed:
            return allowed[module, name]
        if (module, name) in _STUB_GLOBALS or _in_namespaces(module, self.stub_namespaces):
            return self._stubs.setdefault((module, name), _stub_class(module, name))
        raise UnsafeCheckpointError(
            f"refusing to load: the pickle asks for the global {module}.{name}, not on the allow-list"
        )


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """The Python 3 name of a global that a protocol-2 pickle names the Python 2 way."""
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _in_namespaces(module: str, namespaces: Iterable[str]) -> bool:
    return any(module == ns or module.startswith(ns + ".") for ns in namespaces)


def _pickle_module(stub_namespaces: tuple[str, ...]) -> types.ModuleType:
    """A stand-in for the ``pickle`` module that ``torch.load`` uses for every unpickling step."""
    unpickler = type("Unpickler", (_RestrictedUnpickler,), {"stub_namespaces": stub_namespaces})
    module = types.ModuleType("faceaffect_restricted_pickle")
    module.Unpickler = unpickler  # type: ignore[attr-defined]
    module.load = lambda file, **kwargs: unpickler(file, **kwargs).load()  # type: ignore[attr-defined]
    return module


def _refuse_torchscript(path: Path) -> None:
    # torch.load hands TorchScript archives to torch.jit.load, which runs their code
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any(name.split("/", 1)[-1] == "constants.pkl" for name in archive.namelist()):
                raise UnsafeCheckpointError(f"{path} is a TorchScript archive; only pickled modules are read")


def _check_path(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weight file not found: {path}")
    return path


def read_module_state_dict(
    path: str | Path, *, extra_stub_namespaces: Iterable[str] = ()
) -> dict[str, torch.Tensor]:
    """The flat ``state_dict()`` of a pickled module, without importing or running anything from the file.

    Also accepts a pickled state dict (optionally wrapped as ``{"state_dict": ...}``).
    ``extra_stub_namespaces`` adds module names whose classes may be stubbed (e.g. the package a third-party
    checkpoint was trained with).
    """
    import torch

    path = _check_path(path)
    _refuse_torchscript(path)
    module = _pickle_module(STUB_NAMESPACES + tuple(extra_stub_namespaces))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's legacy loader warns about sources it cannot compare
            obj = torch.load(path, map_location="cpu", pickle_module=module, weights_only=False)
    except UnsafeCheckpointError as error:
        raise UnsafeCheckpointError(f"{path}: {error}") from None
    except Exception as error:
        raise _unreadable(path, error) from None
    return _flatten(unwrap_checkpoint(obj), path)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain pickled state dict (e.g. upstream DDAMFN ``.pth``), through ``torch.load(weights_only=True)``.

    A dict wrapping it under ``model_state_dict`` / ``state_dict`` / ``model`` / ``net`` is unwrapped.
    """
    try:
        obj = load_weights_only(path)
    except UnsafeCheckpointError as error:
        raise UnsafeCheckpointError(
            f"{error}; it is not a plain state dict (whole pickled modules need read_module_state_dict)"
        ) from None
    return _flatten(unwrap_checkpoint(obj), Path(path))


def load_weights_only(path: str | Path) -> Any:
    """What ``torch.load(path, weights_only=True)`` reads (tensors and plain containers), with one-line
    errors: UnsafeCheckpointError names what the file asks for (torch's own message would advise turning
    ``weights_only`` off, which would let the file run code), CheckpointError for a damaged file."""
    import torch

    path = _check_path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        text = str(error)
        refused = re.search(r"GLOBAL ([\w.]+)", text)
        reason = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", text, re.DOTALL)
        if refused:
            module, _, name = refused[1].rpartition(".")
            detail = "asks for the global {}.{}, which could run code".format(
                *_python3_name(module or "builtins", name)
            )
        else:
            detail = "is refused by torch's weights-only loader" + (
                f": {' '.join(reason[1].split())}" if reason else ""
            )
        raise UnsafeCheckpointError(f"{path} {detail}") from None
    except Exception as error:  # torch raises many types for damaged files
        raise _unreadable(path, error) from None


def _unreadable(path: Path, error: Exception) -> CheckpointError:
    return CheckpointError(f"cannot read {path}: {type(error).__name__}: {' '.join(str(error).split())}")


def unwrap_checkpoint(obj: Any) -> Any:
    """What a training checkpoint wraps under ``model_state_dict`` / ``state_dict`` / ``model`` / ``net``
    (nested wrappers too); anything else as it is."""
    while isinstance(obj, dict):
        key = next((k for k in _WRAPPER_KEYS if k in obj), None)
        if key is None:
            break
        obj = obj[key]
    return obj


def _flatten(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            _put(out, str(key), value, path)
    elif isinstance(obj, _Stub):
        _walk_module(obj, "", out, path, 0)
    else:
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, neither a module nor a state dict")
    return out


def _walk_module(stub: _Stub, prefix: str, out: dict[str, torch.Tensor], path: Path, depth: int) -> None:
    state = getattr(stub, "_stub_state", None)
    if isinstance(state, tuple) and state:
        state = state[0]
    if not isinstance(state, dict) or "_modules" not in state:
        raise CheckpointError(f"{path}: {prefix or 'the root'} ({stub!r}) is not a pickled torch module")
    if depth > _MAX_DEPTH:
        raise CheckpointError(f"{path}: modules nested deeper than {_MAX_DEPTH} levels at {prefix}")
    non_persistent = state.get("_non_persistent_buffers_set") or set()
    for name, value in (state.get("_parameters") or {}).items():
        if value is not None:
            _put(out, prefix + name, value, path)
    for name, value in (state.get("_buffers") or {}).items():
        if value is not None and name not in non_persistent:
            _put(out, prefix + name, value, path)
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            _walk_module(child, f"{prefix}{name}.", out, path, depth + 1)


def _put(out: dict[str, torch.Tensor], key: str, value: Any, path: Path) -> None:
    import torch

    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{path}: {key} is a {type(value).__name__}, not a tensor")
    out[key] = value
