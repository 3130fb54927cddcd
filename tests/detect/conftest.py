"""Detector fixtures: real photos from ../shared/data/faces, detectors built once per module."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sample_data import unavailable

from faceaffect.detect import create_detector
from faceaffect.detect.base import FaceDetector, missing_packages


def make_detector(name: str, **options: object) -> FaceDetector:
    """The named detector, or :func:`unavailable` naming the packages this machine lacks."""
    missing = missing_packages(name)
    if missing:
        unavailable(f"detector {name!r} needs {', '.join(missing)} (not installed)")
    return create_detector(name, **options)


@pytest.fixture(scope="module")
def blazeface() -> FaceDetector:
    return make_detector("blazeface")


@pytest.fixture(scope="module")
def dlib_hog() -> FaceDetector:
    return make_detector("dlib")


@pytest.fixture
def detector() -> Callable[..., FaceDetector]:
    """``detector(name, **options)``: a detector built by the factory (unavailable when not installed)."""
    return make_detector


@pytest.fixture
def photo(shared_data: Path) -> Callable[[str], np.ndarray]:
    """Loads ``faces/<relative path>`` as RGB uint8 (unavailable when the file is absent)."""

    def load(relative: str) -> np.ndarray:
        path = shared_data / "faces" / relative
        if not path.is_file():
            unavailable(f"test photo not found: {path}")
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))

    return load
