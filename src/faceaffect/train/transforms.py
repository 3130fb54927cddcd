"""Image transforms for training: the published preprocessing plus optional augmentations (PIL + torch only).

The evaluation transform is exactly ``faceaffect.preprocess``: resize straight to the model's square input
size, scale, normalise with the config's mean/std. Augmentations draw from torch's global RNG, which
DataLoader workers seed per worker, so a seeded run is reproducible.

>>> import numpy as np
>>> from faceaffect.hub.registry import get_config
>>> ImageTransform(get_config("mbf_va_mtl"))(np.zeros((48, 40, 3), np.uint8)).shape
torch.Size([3, 112, 112])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageEnhance

from faceaffect.core.validate import check_fields, check_range
from faceaffect.hub.registry import ModelConfig
from faceaffect.preprocess import normalize, resize_for_model


@dataclass(frozen=True)
class Augment:
    """Augmentation strengths; 0 (or ``crop_scale`` 1) switches one off.

    hflip: probability of a horizontal flip. crop_scale: smallest area fraction of a random resized crop
    (aspect ratio 3/4-4/3). rotate: largest rotation in degrees. color_jitter: brightness, contrast and
    saturation factors drawn from [1 - j, 1 + j]. erasing: probability of erasing one random rectangle
    (2-20 % of the image) to the mean colour.
    """

    hflip: float = 0.5
    crop_scale: float = 0.8
    rotate: float = 10.0
    color_jitter: float = 0.2
    erasing: float = 0.25

    def __post_init__(self) -> None:
        what = "training config augment"
        check_fields(self, what)
        for name, low, high in (("hflip", 0, 1), ("crop_scale", 0.01, 1), ("rotate", 0, 180),
                                ("color_jitter", 0, 1), ("erasing", 0, 1)):  # fmt: skip
            check_range(self, what, name, low, high)


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


class ImageTransform:
    """RGB uint8 face crop (H, W, 3) -> normalised float32 (3, S, S), augmented when ``augment`` is set."""

    def __init__(self, config: ModelConfig, augment: Augment | None = None) -> None:
        self.config = config
        self.mean, self.std = config.mean, config.std
        self.augment = augment

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        if self.augment is not None:
            image = self._augment_pixels(Image.fromarray(image), self.augment)
        batch = normalize(resize_for_model(image, self.config)[None], self.mean, self.std)
        tensor = torch.from_numpy(batch[0])
        if (
            self.augment is not None
            and self.augment.erasing > 0
            and float(torch.rand(())) < self.augment.erasing
        ):
            _erase(tensor)
        return tensor

    @staticmethod
    def _augment_pixels(pil: Image.Image, augment: Augment) -> Image.Image:
        if augment.rotate > 0:
            pil = pil.rotate(_uniform(-augment.rotate, augment.rotate), resample=Image.Resampling.BILINEAR)
        if augment.crop_scale < 1:
            pil = pil.crop(_random_crop_box(pil.width, pil.height, augment.crop_scale))
        if float(torch.rand(())) < augment.hflip:
            pil = pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        j = augment.color_jitter
        if j > 0:
            for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
                pil = enhancer(pil).enhance(_uniform(max(0.0, 1 - j), 1 + j))
        return pil


def _random_crop_box(width: int, height: int, min_scale: float) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a crop covering ``min_scale``-1 of the area, aspect ratio 3/4-4/3."""
    area = _uniform(min_scale, 1.0) * width * height
    ratio = math.exp(_uniform(math.log(3 / 4), math.log(4 / 3)))
    w = min(width, max(1, round(math.sqrt(area * ratio))))
    h = min(height, max(1, round(math.sqrt(area / ratio))))
    left = int(torch.randint(0, width - w + 1, ()))
    top = int(torch.randint(0, height - h + 1, ()))
    return left, top, left + w, top + h


def _erase(tensor: torch.Tensor) -> None:
    """Set one random rectangle (2-20 % of the area, aspect 0.3-3.3) to 0, the normalised mean colour."""
    _, height, width = tensor.shape
    area = _uniform(0.02, 0.2) * height * width
    ratio = math.exp(_uniform(math.log(0.3), math.log(3.3)))
    h = min(height, max(1, round(math.sqrt(area * ratio))))
    w = min(width, max(1, round(math.sqrt(area / ratio))))
    top = int(torch.randint(0, height - h + 1, ()))
    left = int(torch.randint(0, width - w + 1, ()))
    tensor[:, top : top + h, left : left + w] = 0.0
