"""Optional extras: import what an extra installs, or say in one line which install is missing.

>>> optional_import("json", "reading JSON").__name__
'json'
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from faceaffect.core.errors import FaceaffectError


def optional_import(module: str, what: str, extra: str = "torch", hint: str = "") -> ModuleType:
    """``module``, imported; when it (or a package it needs) is not installed, a FaceaffectError saying
    that ``what`` needs it and which extra to install. Errors inside faceaffect itself are raised as they are.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        missing = (error.name or "").split(".")[0]
        if not missing or missing == "faceaffect":
            raise
        raise FaceaffectError(
            f"{what} needs {missing}, which is not installed: pip install 'faceaffect[{extra}]'{hint}"
        ) from None


def is_installed(name: str) -> bool:
    """Whether a top-level package can be imported, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
