"""Resource limits: how large an input may be before faceaffect refuses it (one line, exit code 1) instead of
running out of memory or filling the disk. Every limit has a default, an environment variable that changes
it, and :func:`raised_limits` to change it for a block of code (the CLI's ``--max-image-pixels`` does that).

==================  ===========  ================================  ======================================
limit               default      environment variable              what it bounds
==================  ===========  ================================  ======================================
max_image_pixels    200 000 000  ``FACEAFFECT_MAX_IMAGE_PIXELS``   width x height of an image file
max_frame_pixels    16 777 216   ``FACEAFFECT_MAX_FRAME_PIXELS``   width x height of a video's frames
max_download_bytes  2 GiB        ``FACEAFFECT_MAX_DOWNLOAD_BYTES`` a weight download of no known size
max_archive_bytes   1 GiB        ``FACEAFFECT_MAX_ARCHIVE_BYTES``  dataset archive members in memory
max_config_bytes    64 MiB       ``FACEAFFECT_MAX_CONFIG_BYTES``   a config.json, YAML config, manifest
==================  ===========  ================================  ======================================

>>> current_limits().max_image_pixels
200000000
>>> with raised_limits(max_image_pixels=10**9):
...     current_limits().max_image_pixels
1000000000
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace

from faceaffect.core.errors import FaceaffectError


@dataclass(frozen=True)
class Limits:
    """The limits in force (see the module docstring)."""

    max_image_pixels: int = 200_000_000  # a 200-megapixel phone photo; 600 MB as RGB
    max_frame_pixels: int = 4096 * 4096  # 4K passes; a small file of huge frames is refused undecoded
    max_download_bytes: int = 2 << 30  # the published models are 5-60 MB
    max_archive_bytes: int = 1 << 30  # the FER+ train archive holds about 50 MB
    max_config_bytes: int = 64 << 20  # configs are a few KB; a manifest of 100 000 videos about 25 MB


_overrides: dict[str, int] = {}


def env_name(limit: str) -> str:
    """The environment variable of a limit: ``FACEAFFECT_MAX_IMAGE_PIXELS`` for ``max_image_pixels``."""
    return f"FACEAFFECT_{limit.upper()}"


def current_limits() -> Limits:
    """The defaults, changed by the environment variables, changed by :func:`raised_limits`."""
    values = {}
    for field in fields(Limits):
        text = os.environ.get(env_name(field.name), "").strip()
        if text:
            values[field.name] = _parse(env_name(field.name), text)
    return replace(Limits(), **{**values, **_overrides})


@contextmanager
def raised_limits(**changes: int | None) -> Iterator[Limits]:
    """Change limits by name for the block (None leaves one as it is); every thread sees the change."""
    names = {field.name for field in fields(Limits)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise FaceaffectError(f"unknown limit {unknown[0]!r}; the limits are {', '.join(sorted(names))}")
    chosen = {name: _parse(name, value) for name, value in changes.items() if value is not None}
    saved = dict(_overrides)
    _overrides.update(chosen)
    try:
        yield current_limits()
    finally:
        _overrides.clear()
        _overrides.update(saved)


def _parse(name: str, value: object) -> int:
    try:
        number = int(str(value).replace("_", ""))
    except ValueError:
        number = 0
    if number < 1:
        raise FaceaffectError(f"{name} must be a positive whole number, got {value!r}")
    return number
