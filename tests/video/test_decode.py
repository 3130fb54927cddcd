"""Decoding with PyAV: every container and codec we can write here, sampling, and clear errors."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from moving_faces import HEIGHT, WIDTH, damage_packets, write_video

from faceaffect.core.errors import FaceaffectError, InputError, LimitError
from faceaffect.video import Sampling, VideoReader
from faceaffect.video.decode import StartAfter
from faceaffect.video.faults import DecodeReport


def gradient_frames(count: int) -> list[np.ndarray]:
    """Frames whose brightness encodes their index (10 * index), so decoding order can be checked."""
    return [np.full((HEIGHT, WIDTH, 3), 10 * i, dtype=np.uint8) for i in range(count)]


def textured_frames(count: int) -> list[np.ndarray]:
    """Frames of noise (big packets, as real footage gives) whose red level encodes the index (4 * index +
    8), with a white block in the top-left corner (so turns and flips show)."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(count):
        frame = rng.integers(0, 16, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        frame[:, :, 0] += np.uint8(4 * i)
        frame[10:60, 10:110] = 255
        frames.append(frame)
    return frames


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


def test_a_truncated_file_gives_its_frames_and_says_so(tmp_path: Path) -> None:
    whole = write_video(tmp_path / "whole.mp4", textured_frames(40), fps=10)
    data = whole.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # index first: the cut file still opens
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    reader = VideoReader.open(cut)
    frames = list(reader)
    assert 0 < len(frames) < 40 and [f.index for f in frames] == list(range(len(frames)))
    assert reader.report.short and reader.report.declared == 40
    assert "of the 40 frames its container declares were read" in reader.report.messages("cut.mp4")[-1]
    (tmp_path / "index_only.mp4").write_bytes(data[: data.find(b"mdat")])
    with pytest.raises(InputError, match="cannot decode any frame of"):
        list(VideoReader.open(tmp_path / "index_only.mp4"))


def test_a_truncated_fragmented_file_is_short_of_its_duration(tmp_path: Path) -> None:
    fragmented = write_video(tmp_path / "frag.mp4", textured_frames(60), fps=10,
                             movflags="frag_keyframe+empty_moov", gop=10)  # fmt: skip
    assert sum(1 for _ in VideoReader.open(fragmented)) == 60
    data = fragmented.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    reader = VideoReader.open(tmp_path / "cut.mp4")
    assert reader.declared_frames == 0 or reader.report.declared is not None  # no count: from the duration
    read = sum(1 for _ in reader)
    assert 0 < read < 60 and reader.report.short


def test_damaged_packets_are_skipped_and_the_frames_after_them_keep_their_numbers(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", textured_frames(60), fps=10, gop=10)
    intact = [f.image for f in VideoReader.open(path)]
    damage_packets(path, range(23, 27))
    reader = VideoReader.open(path)
    frames = list(reader)
    report = reader.report
    assert report.packets >= 1 and report.gaps and report.read == 60
    assert all(f.index == round(f.time * 10) for f in frames)  # numbered as in the intact file
    assert len(frames) + report.lost_frames == 60 and [f.index for f in frames][-1] == 59
    assert {f.index for f in frames}.isdisjoint(
        i for gap in report.gaps for i in range(gap.first, gap.last + 1)
    )
    after = [f for f in frames if f.index >= 30]  # from the next key frame on: exactly the intact pictures
    assert len(after) == 30 and all(np.array_equal(f.image, intact[f.index]) for f in after)
    assert (
        "damaged packet" in report.messages("clip.mp4")[0]
        and "could not be decoded" in report.messages("c")[0]
    )


@pytest.mark.parametrize(("degrees", "hflip", "turn"), [(90, False, 1), (-90, False, -1), (180, False, 2),
                                                        (90, True, None)])  # fmt: skip
def test_frames_come_upright(tmp_path: Path, degrees: int, hflip: bool, turn: int | None) -> None:
    frames = textured_frames(3)
    path = write_video(tmp_path / "phone.mp4", frames, fps=10, rotation=(degrees, hflip))
    decoded = [f.image for f in VideoReader.open(path)]
    expected = np.rot90(frames[0], turn) if turn is not None else np.rot90(frames[0], 1)[:, ::-1]
    assert decoded[0].shape == expected.shape and decoded[0].flags.c_contiguous
    assert np.abs(decoded[0].astype(int) - expected.astype(int)).mean() < 6


@pytest.mark.parametrize(
    "sampling", [Sampling(), Sampling(stride=3), Sampling(target_fps=4), Sampling(max_frames=9)]
)
@pytest.mark.parametrize("pts", [True, False])
def test_resuming_after_a_frame_gives_the_rest_of_a_run(
    tmp_path: Path, sampling: Sampling, pts: bool
) -> None:
    path = write_video(tmp_path / "clip.mp4", textured_frames(50), fps=10, gop=12)
    whole = list(VideoReader.open(path, sampling))
    for cut in (1, len(whole) // 2, len(whole) - 1):
        last = whole[cut - 1]
        reader = VideoReader.open(path, sampling)
        reader.resume(StartAfter(last.index, last.pts if pts else None, cut, DecodeReport()))
        rest = list(reader)
        assert [f.index for f in rest] == [f.index for f in whole[cut:]]
        assert all(np.array_equal(a.image, b.image) for a, b in zip(rest, whole[cut:], strict=True))


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
