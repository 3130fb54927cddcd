"""Decoding with PyAV: every container and codec we can write here, sampling, and clear errors."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from moving_faces import HEIGHT, WIDTH, write_video

from faceaffect.core.errors import FaceaffectError, InputError, LimitError
from faceaffect.video import Sampling, VideoReader


def gradient_frames(count: int) -> list[np.ndarray]:
    """Frames whose brightness encodes their index (10 * index), so decoding order can be checked."""
    return [np.full((HEIGHT, WIDTH, 3), 10 * i, dtype=np.uint8) for i in range(count)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", gradient_frames(20), fps=10)


@pytest.mark.parametrize(
    ("suffix", "codec"),
    [(".mp4", "libx264"), (".mov", "libx265"), (".avi", "mpeg4"), (".mkv", "libx264"), (".flv", "flv")],
)
def test_every_container_decodes_in_order(tmp_path: Path, suffix: str, codec: str) -> None:
    path = write_video(tmp_path / f"clip{suffix}", gradient_frames(12), fps=10, codec=codec)
    reader = VideoReader.open(path)
    frames = list(reader)
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].image.shape == (HEIGHT, WIDTH, 3) and frames[0].image.dtype == np.uint8
    brightness = [float(f.image.mean()) for f in frames]
    assert np.allclose(brightness, 10 * np.arange(12), atol=4)
    assert np.allclose([f.time for f in frames], np.arange(12) / 10, atol=1e-3)
    assert reader.fps == pytest.approx(10) and reader.kind == "video"


def test_stride_and_max_frames(clip: Path) -> None:
    reader = VideoReader.open(clip, Sampling(stride=3, max_frames=4))
    assert [f.index for f in reader] == [0, 3, 6, 9]
    assert reader.expected_frames() == 4 and reader.fps == pytest.approx(10 / 3)


def test_target_fps_keeps_evenly_spaced_frames(clip: Path) -> None:
    reader = VideoReader.open(clip, Sampling(target_fps=4))
    times = [f.time for f in reader]
    assert np.allclose(np.diff(times), 0.25, atol=0.051)
    assert len(times) == reader.expected_frames() == 8


def test_target_fps_above_the_source_keeps_every_frame(clip: Path) -> None:
    assert len(list(VideoReader.open(clip, Sampling(target_fps=100)))) == 20


def test_sampling_options_are_checked() -> None:
    for bad in ({"stride": 0}, {"target_fps": 0}, {"max_frames": 0}, {"stride": 2, "target_fps": 5}):
        with pytest.raises(FaceaffectError):
            Sampling(**bad)


def test_missing_garbage_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such video file"):
        VideoReader.open(tmp_path / "missing.mp4")
    (tmp_path / "garbage.mp4").write_bytes(b"not a video at all" * 100)
    (tmp_path / "empty.mov").write_bytes(b"")
    for name in ("garbage.mp4", "empty.mov"):
        with pytest.raises(InputError, match="cannot open video"):
            VideoReader.open(tmp_path / name)


def test_truncated_file_is_refused_before_decoding(tmp_path: Path) -> None:
    whole = write_video(tmp_path / "whole.mp4", gradient_frames(20), fps=10)
    data = whole.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # index first: the cut file still opens
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(
        InputError, match=r"cut.mp4 is truncated: its index lists 20 frames but the file holds"
    ):
        VideoReader.open(cut)
    (tmp_path / "index_only.mp4").write_bytes(data[: data.find(b"mdat")])
    with pytest.raises(InputError, match="lists 20 frames but the file holds 0"):
        VideoReader.open(tmp_path / "index_only.mp4")


def test_file_without_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "sound.mka"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(InputError, match="no video stream"):
        VideoReader.open(path)


def test_missing_camera_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="cannot open camera 97"):
        VideoReader.camera(97)


def test_frames_over_the_pixel_limit_are_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = write_video(tmp_path / "huge.mp4", [np.zeros((4100, 4100, 3), np.uint8)], fps=1, codec="mpeg4")
    with pytest.raises(LimitError, match=r"frames of 4100x4100 pixels, more than the limit of 16777216"):
        VideoReader.open(huge)
    monkeypatch.setenv("FACEAFFECT_MAX_FRAME_PIXELS", str(4100 * 4100))
    assert len(list(VideoReader.open(huge))) == 1
