"""Old module paths of faceaffect 0.1 keep working, with a DeprecationWarning, after the move into layers.

>>> import warnings
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore")
...     from faceaffect.registry import get_config
>>> get_config.__module__
'faceaffect.hub.registry'
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED = {
    "faceaffect.errors": "faceaffect.core.errors",
    "faceaffect.types": "faceaffect.core.types",
    "faceaffect.labels": "faceaffect.core.labels",
    "faceaffect.tables": "faceaffect.core.io",
    "faceaffect.registry": "faceaffect.hub.registry",
    "faceaffect.weights": "faceaffect.hub",
    "faceaffect.weights.cache": "faceaffect.hub.cache",
    "faceaffect.weights.errors": "faceaffect.core.errors",
    "faceaffect.weights.safe_pickle": "faceaffect.hub.safe_pickle",
    "faceaffect.weights.safetensors_io": "faceaffect.hub.model_folder",
    "faceaffect.runtime.onnx_graph": "faceaffect.onnx.graph",
    "faceaffect.annotate": "faceaffect.render",
    "faceaffect.plots": "faceaffect.render.plots",
}


class _Alias(importlib.abc.Loader):
    """Fills the old module with the new module's names (the new module itself stays untouched)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        """The default module object."""

    def exec_module(self, module: ModuleType) -> None:
        warnings.warn(
            f"{module.__name__} moved to {self.target}; the old name will be removed",
            DeprecationWarning,
            stacklevel=3,
        )
        names = vars(importlib.import_module(self.target))
        module.__dict__.update({key: value for key, value in names.items() if not key.startswith("__")})


class MovedModules(importlib.abc.MetaPathFinder):
    """Finds an old module path and hands out the names of the module that now lives elsewhere."""

    def find_spec(
        self, name: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name not in MOVED:
            return None
        is_package = any(other.startswith(name + ".") for other in MOVED)
        return importlib.machinery.ModuleSpec(name, _Alias(MOVED[name]), is_package=is_package)


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())
