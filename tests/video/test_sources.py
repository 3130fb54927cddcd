"""open_source: which reader each kind of input gets, and the errors for inputs that are not there."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from moving_faces import write_video
from PIL import Image

from faceaffect.core.errors import InputError
from faceaffect.video import Sampling
from faceaffect.video.sources import ImageFiles, open_source


def image(path: Path, value: int) -> Path:
    Image.fromarray(np.full((8, 10, 3), value, np.uint8)).save(path)
    return path


def test_an_image_file(tmp_path: Path) -> None:
    source = open_source(image(tmp_path / "a.png", 7))
    frames = list(source)
    assert isinstance(source, ImageFiles) and source.kind == "image" and source.fps is None
    assert len(frames) == 1 and frames[0].image.shape == (8, 10, 3) and math.isnan(frames[0].time)
    assert frames[0].source == str(tmp_path / "a.png")


def test_a_folder_skips_and_lists_unreadable_images(tmp_path: Path) -> None:
    image(tmp_path / "b.jpg", 20)
    (tmp_path / "sub").mkdir()
    image(tmp_path / "sub" / "c.png", 30)
    (tmp_path / "a.png").write_bytes(b"broken")
    (tmp_path / "readme.txt").write_text("not an image")
    source = open_source(tmp_path)
    frames = list(source)
    assert source.kind == "images" and source.expected_frames() == 3
    assert [(f.index, Path(f.source).name) for f in frames] == [(1, "b.jpg"), (2, "c.png")]
    assert [Path(f.path).name for f in source.failures] == [
        "a.png"
    ] and "cannot read image" in source.failures[0].reason


def test_a_video_file_with_sampling(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mkv", [np.zeros((16, 16, 3), np.uint8)] * 6, fps=10)
    source = open_source(path, Sampling(stride=2))
    assert source.kind == "video" and [f.index for f in source] == [0, 2, 4] and source.failures == []


def test_inputs_that_are_not_there(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        open_source(tmp_path / "missing.jpg")
    with pytest.raises(InputError, match="no image files"):
        open_source(tmp_path)
    with pytest.raises(InputError, match="cannot open camera 63"):
        open_source(63)
    with pytest.raises(InputError, match="cannot open camera"):
        open_source("rtsp://127.0.0.1:1/none")
