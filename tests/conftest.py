"""Shared test set-up: CPU only, flush denormals (random-weight CNNs are 10-80x slower without it)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sample_data import SHARED_DATA, sample_file, unavailable


def pytest_configure(config: pytest.Config) -> None:
    try:
        import torch
    except ImportError:
        return
    torch.set_flush_denormal(True)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The sample data: ``$FACEAFFECT_TEST_DATA``, default ../shared/data beside the checkout."""
    if not SHARED_DATA.is_dir():
        unavailable(f"sample data not found at {SHARED_DATA} (set FACEAFFECT_TEST_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium (``apt-get install chromium``, as .ci/run does), for browser tests: its path."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def face_crops() -> list[np.ndarray]:
    """Nine real face crops of several sizes from ../shared/data (aligned 160x160 crops, posed photos)."""
    from faceaffect.images import load_image

    faces = sample_file("faces")
    paths = sorted((faces / "facenet-pytorch" / "test_images_aligned").glob("*/1.png"))
    paths += sorted((faces / "pyfeat_tests").glob("*-ph.jpg"))
    if len(paths) < 2:
        unavailable(f"face crops not found under {faces}")
    return [load_image(path) for path in paths]


@pytest.fixture(scope="session")
def calibrated_model(face_crops: list[np.ndarray]) -> Callable[[str], Any]:
    """``calibrated_model(name)``: a random-weight model whose BatchNorm statistics come from the real crops,
    so faces get distinct, confident outputs (untouched random models give every face the same ones)."""
    from faceaffect.models import create_model
    from faceaffect.models.calibrate import recalibrate_batchnorm
    from faceaffect.preprocess import preprocess

    cache: dict[str, Any] = {}

    def build(name: str) -> Any:
        if name not in cache:
            model = create_model(name)
            cache[name] = recalibrate_batchnorm(model, preprocess(face_crops, model.config))
        return cache[name]

    return build
