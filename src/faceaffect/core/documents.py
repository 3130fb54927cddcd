"""Reading the small documents that users and tools hand faceaffect (a model folder's config.json, training
configs, manifests): JSON, or YAML by suffix, holding a mapping. They are read defensively, since they
may come from anyone: at most ``max_config_bytes`` (see :mod:`faceaffect.core.limits`), no YAML tags
beyond plain data, no YAML aliases (``*name``: a 1 KB file of nested aliases expands to billions of
nodes), no NaN or infinite numbers; every problem is one line naming the file.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "c.yaml"
>>> _ = path.write_text("base: &b {lr: 0.1}\\nstage: *b\\n")
>>> read_document(path)
Traceback (most recent call last):
...
faceaffect.core.errors.InputError: ...c.yaml:2: aliases (*name) are not allowed; write the value out
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from faceaffect.core.errors import FaceaffectError, InputError
from faceaffect.core.limits import current_limits, env_name

YAML_SUFFIXES = (".yaml", ".yml")


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader (plain data only: no Python objects) that also refuses aliases."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            reason = "aliases (*name) are not allowed; write the value out"
            raise yaml.composer.ComposerError(None, None, reason, self.peek_event().start_mark)
        return super().compose_node(parent, index)


def read_document(path: str | Path, error: type[FaceaffectError] = InputError) -> dict[str, Any]:
    """The mapping in a JSON or YAML file (YAML by its suffix); problems raise ``error`` in one line."""
    path = Path(path)
    text = read_text(path, error)
    try:
        data = _yaml(text) if path.suffix.lower() in YAML_SUFFIXES else _json(text)
        _check_numbers(data)
    except json.JSONDecodeError as problem:
        raise error(f"{path}:{problem.lineno}: not valid JSON ({problem.msg})") from None
    except yaml.MarkedYAMLError as problem:
        line = f":{problem.problem_mark.line + 1}" if problem.problem_mark else ""
        reason = " ".join(str(problem.problem or problem.context).split())
        raise error(f"{path}{line}: {reason}") from None
    except (yaml.YAMLError, ValueError) as problem:
        raise error(f"{path}: {' '.join(str(problem).split())}") from None
    except RecursionError:
        raise error(f"{path}: nested too deeply") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of names to values, found {type(data).__name__}")
    return data


def read_text(path: Path, error: type[FaceaffectError] = InputError) -> str:
    """A small UTF-8 text file (at most ``max_config_bytes``), read whole; problems raise ``error``."""
    limit = current_limits().max_config_bytes
    if not path.is_file():
        raise error(f"{'not a file' if path.exists() else 'no such file'}: {path}")
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as problem:
        raise error(f"cannot read {path}: {problem.strerror or problem}") from None
    if len(data) > limit:
        raise error(
            f"{path} is larger than the limit of {limit} bytes for a config; raise it with "
            f"{env_name('max_config_bytes')}"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as problem:
        raise error(f"{path}: not UTF-8 text (byte {problem.start})") from None


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_NoAliasLoader)  # a safe loader, without aliases


def _json(text: str) -> Any:
    return json.loads(text, parse_constant=_not_a_number, parse_float=_finite)


def _not_a_number(name: str) -> float:
    raise ValueError(f"{name} is not a number faceaffect accepts")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        _not_a_number(text)
    return value


def _check_numbers(data: Any) -> None:
    """YAML's .nan and .inf are floats like any other: refuse them anywhere in the document."""
    if isinstance(data, float) and not math.isfinite(data):
        _not_a_number(repr(data))
    elif isinstance(data, dict):
        for value in data.values():
            _check_numbers(value)
    elif isinstance(data, list):
        for value in data:
            _check_numbers(value)
