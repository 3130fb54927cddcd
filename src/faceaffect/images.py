"""Image files and arrays as RGB uint8 arrays: the one place that knows image suffixes and decodes files.

>>> to_rgb_array(np.zeros((4, 5), np.uint8)).shape
(4, 5, 3)
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from faceaffect.core.errors import InputError, LimitError

ImageLike = Union[np.ndarray, Image.Image]  # noqa: UP007 (a runtime alias)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as an RGB uint8 array (H, W, 3); a clear InputError when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such image file: {path}")
    try:
        with Image.open(path) as image:
            return to_rgb_array(image)
    except Image.DecompressionBombError as error:  # PIL's limit: more than 2x Image.MAX_IMAGE_PIXELS
        raise LimitError(f"cannot read image {path}: {error}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise InputError(f"cannot read image {path}: {error}") from None


def expand_images(paths: list[Path]) -> list[Path]:
    """Files as given; folders expanded to their image files (sorted, recursive); InputError if missing."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.exists():
            files.append(path)
        else:
            raise InputError(f"no such file or folder: {path}")
    return files


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """An RGB uint8 (H, W, 3) array from a PIL image (any mode) or a uint8 array (H, W), (H, W, 3|4)."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise InputError(f"expected a uint8 RGB image, got dtype {array.dtype}")
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return array[:, :, :3]
    raise InputError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
