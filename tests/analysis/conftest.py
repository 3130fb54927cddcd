"""Fixtures of the analysis job: small random-weight models saved as folders (no downloads), a recognizer
built once, and a synthetic two-face video (face 0 hidden on frames 4 and 5)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moving_faces import moving_frames, write_video
from sample_data import unavailable

from faceaffect.detect.base import missing_packages
from faceaffect.recognizer import Recognizer

HIDDEN = (4, 5)
FRAMES = 12


def save_tiny_model(directory: Path, **changes: object) -> Path:
    """A MobileFaceNet at 32 px with random weights (valence-arousal head unless changed), saved."""
    from faceaffect.hub.registry import get_config
    from faceaffect.models import create_model, save_model

    config = get_config("mbf_va_mtl").replace(**{"name": "tiny_va", "input_size": 32, **changes})
    return save_model(create_model(config), directory)


@pytest.fixture(scope="package", autouse=True)
def _needs_blazeface() -> None:
    if missing_packages("blazeface"):
        unavailable("the default detector (BlazeFace) is not installed")


@pytest.fixture(scope="package", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """The tiny model runs best on one thread; on a busy machine two OpenMP threads can be 100x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny_va")


@pytest.fixture(scope="session")
def expression_only_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 labels (no Contempt), no valence-arousal head."""
    path = tmp_path_factory.mktemp("models") / "tiny_7"
    return save_tiny_model(path, name="tiny_7", label_set="affectnet7", has_va=False)


@pytest.fixture(scope="session")
def recognizer(tiny_model: Path) -> Recognizer:
    return Recognizer(tiny_model, batch_size=8)


@pytest.fixture(scope="session")
def two_face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames = moving_frames(FRAMES, hide={0: HIDDEN})
    return write_video(tmp_path_factory.mktemp("videos") / "two_faces.mp4", frames, fps=25)
