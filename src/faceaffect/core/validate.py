"""Checking the fields of settings dataclasses (options, model and training configs) against their type
hints, so that a wrong value in a file or a keyword is one clear line before any work starts.

>>> from dataclasses import dataclass
>>> @dataclass
... class Example:
...     size: int
...     rate: float | None = None
>>> check_fields(Example(3, 0.5), "example")
>>> check_fields(Example("3"), "example")
Traceback (most recent call last):
...
faceaffect.core.errors.FaceaffectError: example size must be int, got '3'
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import fields
from typing import Any

from faceaffect.core.errors import FaceaffectError


def check_fields(settings: Any, what: str) -> None:
    """Each field of the dataclass ``settings`` holds a value of its declared type: ints count as floats,
    bools never as numbers, floats must be finite; for ``list[...]``, ``dict[...]`` and ``tuple[...]`` the
    container type is checked. ``what`` names the settings in the message."""
    hints = typing.get_type_hints(type(settings))
    for field in fields(settings):
        value = getattr(settings, field.name)
        allowed = _alternatives(hints[field.name])
        if not any(_is(value, kind) for kind in allowed):
            names = " or ".join(_name(kind) for kind in allowed)
            raise FaceaffectError(f"{what} {field.name} must be {names}, got {_shown(value)}")


def check_range(
    settings: Any, what: str, name: str, low: float | None = None, high: float | None = None
) -> None:
    """The number in field ``name`` (None is not checked) lies in [``low``, ``high``]."""
    value = getattr(settings, name)
    if value is None:
        return
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (
            f"at least {low:g}"
            if high is None
            else f"at most {high:g}"
            if low is None
            else (f"in [{low:g}, {high:g}]")
        )
        raise FaceaffectError(f"{what} {name} must be {bounds}, got {value!r}")


def _alternatives(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _is(value: object, kind: Any) -> bool:
    if kind is Any:
        return True
    if kind is type(None):
        return value is None
    kind = typing.get_origin(kind) or kind
    if kind is bool or isinstance(value, bool):
        return isinstance(value, bool) and kind is bool
    if kind is float:
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, kind)


def _name(kind: Any) -> str:
    if kind is type(None):
        return "None"
    return getattr(typing.get_origin(kind) or kind, "__name__", str(kind))


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
