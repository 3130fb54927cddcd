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
from pathlib import Path
from typing import Any

from faceaffect.core.errors import InputError
from faceaffect.core.io import atomic_path
from faceaffect.hub.model_folder import CONFIG_NAME, WEIGHTS_NAME

FORMAT_VERSION = 1

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "read_config",
    "read_json",
    "write_config",
    "write_json",
]


def write_config(directory: str | Path, document: dict[str, Any]) -> Path:
    """Write ``config.json`` (with the format version first) into ``directory``, atomically."""
    return write_json(Path(directory) / CONFIG_NAME, {"format_version": FORMAT_VERSION, **document})


def write_json(path: str | Path, document: Any) -> Path:
    """Write ``document`` as indented JSON to ``path``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return Path(path)


def read_config(directory: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a saved head, fusion or cluster folder."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise InputError(f"{directory} is not a saved head (no {CONFIG_NAME})")
    return read_json(path)


def read_json(path: str | Path) -> Any:
    """A JSON file; InputError naming the file and line when it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {path}: {error}") from None
