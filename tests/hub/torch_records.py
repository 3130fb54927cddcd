"""Pickle whole torch modules the way ``torch.save`` does, for classes that are not installed.

``torch.save(model)`` writes each module as its class (a global, ``module.Class``) and its ``__dict__``: what
``nn.Module.__init__`` of the saving torch version set (``training``, ``_parameters``, ``_buffers``, the hook
dictionaries, ``_modules``), then the class's own attributes. A ``Record`` is such a module without code: its
class is only a name, so files pickled with old timm or with an upstream script's classes can be rebuilt byte
for byte here. Learnt from ``pickletools`` listings of ``torch.save`` output and torch's own module code.

>>> t = Tree("2.0")
>>> path = save(t.sequential(t.linear(3, 2)), tmp / "model.pt")  # doctest: +SKIP
"""

from __future__ import annotations

import pickle
import types
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

_BASE = ("training", "_parameters", "_buffers", "_non_persistent_buffers_set")
MODULE_ATTRS = {
    "1.12": (*_BASE, "_backward_hooks", "_is_full_backward_hook", "_forward_hooks", "_forward_pre_hooks",
             "_state_dict_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks", "_modules"),
    "2.0": (*_BASE, "_backward_pre_hooks", "_backward_hooks", "_is_full_backward_hook", "_forward_hooks",
            "_forward_hooks_with_kwargs", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
            "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
            "_load_state_dict_post_hooks", "_modules"),
}  # fmt: skip
"""What ``nn.Module.__init__`` sets, in order, by torch version: 2.0 added the backward-pre, with-kwargs and
state-dict-pre hook dictionaries (torch PRs 86700, 89389, 90435); 2.1 ``_forward_hooks_always_called``."""


class Record:
    """One pickled module: its class's global name (``pickled_as``) and what ``__dict__`` holds.

    ``params`` and ``buffers`` map names to tensors (None where registered as None; shapes until filled).
    ``leading`` are attributes set before ``nn.Module.__init__`` runs (PReLU's ``num_parameters``).
    """

    pickled_as: tuple[str, str]

    def __init__(self, torch_version: str, attrs: dict[str, Any], children: dict[str, Record]) -> None:
        self.torch_version = torch_version
        self.attrs = attrs
        self.children = children
        self.leading: dict[str, Any] = {}
        self.params: dict[str, Any] = {}
        self.buffers: dict[str, Any] = {}
        self.hooks: dict[str, dict[int, Any]] = {}

    @property
    def kind(self) -> str:
        """The class name, e.g. ``Conv2dSame``."""
        return self.pickled_as[1]

    def __getstate__(self) -> dict[str, Any]:
        values = {
            "training": False,
            "_parameters": OrderedDict((k, _parameter(v)) for k, v in self.params.items()),
            "_buffers": OrderedDict(self.buffers),
            "_non_persistent_buffers_set": set(),
            "_is_full_backward_hook": None,
            "_modules": OrderedDict(self.children),
        }
        state = dict(self.leading)
        for key in MODULE_ATTRS[self.torch_version]:
            state[key] = values[key] if key in values else OrderedDict(self.hooks.get(key, {}))
        return state | self.attrs


def _parameter(value: Any) -> Any:
    return torch.nn.Parameter(value) if isinstance(value, torch.Tensor) else value


_CLASSES: dict[str, type[Record]] = {}


def _record_class(path: str) -> type[Record]:
    """The Record subclass pickled as the global ``path`` (``module.Class``), one per name: ``torch.save``
    writes ``NEWOBJ`` with the instance's own class, as for a real module."""
    if path not in _CLASSES:
        module, name = path.rsplit(".", 1)
        _CLASSES[path] = type(name, (Record,), {"pickled_as": (module, name), "__qualname__": name})
    return _CLASSES[path]


class Tree:
    """Makes the records of one file, all as pickled by the same torch version."""

    def __init__(self, torch_version: str) -> None:
        self.torch_version = torch_version

    def module(self, path: str, children: dict[str, Record] | None = None, **attrs: Any) -> Record:
        """A module of class ``path`` with ``children`` and plain attributes ``attrs``."""
        return _record_class(path)(self.torch_version, attrs, children or {})

    def conv(self, cin: int, cout: int, k: int, stride: int = 1, pad: int = 0, groups: int = 1,
             bias: bool = False, path: str = "torch.nn.modules.conv.Conv2d") -> Record:  # fmt: skip
        record = self.module(
            path, in_channels=cin, out_channels=cout, kernel_size=(k, k), stride=(stride, stride),
            padding=(pad, pad), dilation=(1, 1), transposed=False, output_padding=(0, 0), groups=groups,
            padding_mode="zeros", _reversed_padding_repeated_twice=(pad,) * 4,
        )  # fmt: skip
        record.params = {"weight": (cout, cin // groups, k, k), "bias": (cout,) if bias else None}
        return record

    def batchnorm(self, c: int, path: str = "torch.nn.modules.batchnorm.BatchNorm2d", eps: float = 1e-5,
                  children: dict[str, Record] | None = None) -> Record:  # fmt: skip
        record = self.module(path, children, num_features=c, eps=eps, momentum=0.1, affine=True,
                             track_running_stats=True)  # fmt: skip
        record.params = {"weight": (c,), "bias": (c,)}
        record.buffers = {"running_mean": (c,), "running_var": (c,), "num_batches_tracked": ()}
        return record

    def linear(self, cin: int, cout: int, bias: bool = True) -> Record:
        record = self.module("torch.nn.modules.linear.Linear", in_features=cin, out_features=cout)
        record.params = {"weight": (cout, cin), "bias": (cout,) if bias else None}
        return record

    def prelu(self, c: int) -> Record:
        record = self.module("torch.nn.modules.activation.PReLU", init=0.25)
        record.leading = {"num_parameters": c}
        record.params = {"weight": (c,)}
        return record

    def sequential(self, *children: Record, path: str = "torch.nn.modules.container.Sequential",
                   names: tuple[str, ...] = ()) -> Record:  # fmt: skip
        """A container of ``children`` named ``0``, ``1``, ... (or ``names``)."""
        return self.module(path, dict(zip(names or map(str, range(len(children))), children, strict=True)))


def walk(record: Record, prefix: str = "") -> Iterator[tuple[str, Record]]:
    """(dotted path, record) for ``record`` and every module below it, in ``state_dict`` order."""
    yield prefix.rstrip("."), record
    for name, child in record.children.items():
        yield from walk(child, f"{prefix}{name}.")


def state_dict(root: Record) -> dict[str, torch.Tensor]:
    """What ``state_dict()`` of the pickled module gives: its non-None parameters and buffers."""
    return {
        f"{path}.{name}".lstrip("."): value
        for path, record in walk(root)
        for name, value in (record.params | record.buffers).items()
        if value is not None
    }


class Call:
    """``func(*args)`` as a pickle spells it, run by whoever unpickles it (what a hostile file holds)."""

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.func, self.args


def _pickle_module(location: str) -> types.ModuleType:
    """A ``pickle_module`` for ``torch.save`` whose pickler names each Record's class by its global and marks
    every storage as saved on ``location`` (``cpu``, ``cuda:0``)."""

    class Pickler(pickle._Pickler):  # type: ignore[name-defined]
        def save_global(self, obj: Any, name: str | None = None) -> None:
            if not (isinstance(obj, type) and issubclass(obj, Record)):
                super().save_global(obj, name)
                return
            module, qualname = obj.pickled_as
            self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode())
            self.memoize(obj)

        def save_pers(self, pid: Any) -> None:
            super().save_pers((*pid[:3], location, *pid[4:]) if pid[0] == "storage" else pid)

    module = types.ModuleType("record_pickle")
    module.Pickler = Pickler  # type: ignore[attr-defined]
    return module


def save(root: Record, path: Path, location: str = "cpu") -> Path:
    """Write ``root`` as ``torch.save(module, path)`` does (pickle protocol 2 in a zip archive; the archive's
    bookkeeping records are the installed torch's, which ``torch.load`` reads like the older ones)."""
    torch.save(root, path, pickle_module=_pickle_module(location))
    return path
