"""Preprocessing exactly as the published models expect: crop the box (no margin, no alignment), resize
straight to a square (aspect ratio not kept, bilinear with antialiasing as PIL does), scale to [0, 1],
normalise with the model's mean/std, channels first.

>>> from faceaffect.hub.registry import get_config
>>> batch = preprocess([np.zeros((50, 40, 3), np.uint8)], get_config("mbf_va_mtl"))
>>> batch.shape, batch.dtype
((1, 3, 112, 112), dtype('float32'))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from faceaffect.core.errors import InputError
from faceaffect.core.types import FaceBox
from faceaffect.hub.registry import ModelConfig
from faceaffect.images import ImageLike, to_rgb_array


def crop_box(image: np.ndarray, box: FaceBox, margin: float = 0.0) -> np.ndarray:
    """The pixels inside ``box`` (grown by ``margin`` x its size on each side), clipped to the image."""
    dx, dy = margin * box.width, margin * box.height
    height, width = image.shape[:2]
    x1, y1 = max(0, round(box.x1 - dx)), max(0, round(box.y1 - dy))
    x2, y2 = min(width, round(box.x2 + dx)), min(height, round(box.y2 + dy))
    if x2 <= x1 or y2 <= y1:
        raise InputError(
            f"face box {box.x1:.0f},{box.y1:.0f},{box.x2:.0f},{box.y2:.0f} lies outside the image"
        )
    return image[y1:y2, x1:x2]


def resize_square(image: ImageLike, size: int) -> np.ndarray:
    """Resize straight to (size, size, 3) uint8, ignoring the aspect ratio (bilinear, antialiased); PIL
    images of other modes than RGB become RGB as :func:`faceaffect.images.to_rgb_array` says (16-bit scaled,
    alpha on white)."""
    rgb = isinstance(image, Image.Image) and image.mode == "RGB"
    pil = image if rgb else Image.fromarray(to_rgb_array(image))
    return np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR))


def normalize(batch: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 (N, S, S, 3) -> float32 (N, 3, S, S): (x / 255 - mean) / std in one fused pass."""
    scale = (1.0 / (255.0 * np.asarray(std, dtype=np.float32))).reshape(1, 3, 1, 1)
    shift = (np.asarray(mean, dtype=np.float32) / np.asarray(std, dtype=np.float32)).reshape(1, 3, 1, 1)
    chw = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
    chw *= scale
    chw -= shift
    return chw


def to_gray3(batch: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) RGB -> the same shape with every channel set to the ITU-R 601 luma (as PIL's "L")."""
    weights = np.array([299, 587, 114], dtype=np.uint32)
    luma = ((batch.astype(np.uint32) @ weights + 500) // 1000).astype(np.uint8)
    return np.repeat(luma[..., None], 3, axis=-1)


def resize_for_model(crop: ImageLike, config: ModelConfig) -> np.ndarray:
    """One crop as the model sees it before normalisation: square-resized, grey when the model is
    (``config.grayscale``, e.g. models trained on FER+ photos, which are all grey)."""
    resized = resize_square(crop, config.input_size)
    return to_gray3(resized) if config.grayscale else resized


def preprocess(crops: Sequence[ImageLike], config: ModelConfig) -> np.ndarray:
    """Face crops of any size -> the model's normalised float32 batch (N, 3, S, S)."""
    if len(crops) == 0:
        return np.zeros((0, 3, config.input_size, config.input_size), dtype=np.float32)
    resized = np.stack([resize_for_model(crop, config) for crop in crops])
    return normalize(resized, config.mean, config.std)
