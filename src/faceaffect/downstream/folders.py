"""The saved-folder format of downstream predictors: a ``config.json`` that names its ``kind``, beside files.

The file names are the front end's saved-model names (:mod:`faceaffect.hub.model_folder`): a trained
head is ``config.json`` + ``model.safetensors``; fusions and cluster namings add their own files. Reading a
config needs neither torch nor the predictor's code, so one loader can dispatch on ``kind``.

>>> write_config("my_head", {"kind": "fusion", "task": "va"})  # doctest: +SKIP
>>> read_config("my_head")["kind"]  # doctest: +SKIP
'fusion'
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from faceaffect.core.documents import read_document
from faceaffect.core.errors import InputError
from faceaffect.core.io import atomic_path
from faceaffect.hub.model_folder import CONFIG_NAME, WEIGHTS_NAME

FORMAT_VERSION = 1

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "read_config",
    "write_config",
    "write_json",
]


def write_config(directory: str | Path, document: dict[str, Any]) -> Path:
    """Write ``config.json`` (with the format version first) into ``directory``, atomically."""
    return write_json(Path(directory) / CONFIG_NAME, {"format_version": FORMAT_VERSION, **document})


def write_json(path: str | Path, document: Any) -> Path:
    """Write ``document`` as indented JSON to ``path``, atomically; a NaN or infinite number (an undefined
    score) is written as null, which :func:`~faceaffect.core.documents.read_document` reads back."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_finite(document), indent=2) + "\n", encoding="utf-8")
    return Path(path)


def read_config(directory: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a saved head, fusion or cluster folder."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise InputError(f"{directory} is not a saved head (no {CONFIG_NAME})")
    return read_document(path)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(inner) for inner in value]
    return value
