"""Drawing on frames, H.264 videos written atomically, annotating each kind of input, headless live view."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.labels import AFFECTNET_8
from faceaffect.core.types import FaceBox, FacePrediction, FrameResult
from faceaffect.render import PALETTE, AnnotatedVideo, LiveWindow, draw_faces, has_display
from faceaffect.results import AnalysisResult
from faceaffect.video import Sampling


def face(track: int, box: FaceBox, valence: float | None = 0.5) -> FacePrediction:
    p = np.full(8, 1 / 8)
    return FacePrediction(AFFECTNET_8, p, np.log(p), valence, valence, box=box, track_id=track)


def test_boxes_are_drawn_in_the_track_colour() -> None:
    image = np.zeros((120, 160, 3), np.uint8)
    drawn = draw_faces(image, [face(3, FaceBox(40, 50, 90, 110))])
    assert image.max() == 0  # the input is left alone
    assert tuple(drawn[80, 40]) == PALETTE[3] and tuple(drawn[110, 60]) == PALETTE[3]
    assert drawn[80, 60].max() == 0  # inside the box: untouched
    assert drawn[52:110, 92:130].max() > 0  # the valence-arousal marker right of the box
    without_va = draw_faces(image, [face(3, FaceBox(40, 50, 90, 110), valence=None)])
    assert without_va[52:110, 92:130].max() == 0


def read_video(path: Path) -> tuple[list[np.ndarray], str, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return frames, stream.codec_context.name, float(stream.average_rate)


def test_video_is_h264_with_even_sides(tmp_path: Path) -> None:
    frames = [FrameResult(i, i / 5, (face(0, FaceBox(10, 10, 40, 40)),)) for i in range(5)]
    with AnnotatedVideo(tmp_path / "out.mp4", fps=5) as video:
        for frame in frames:
            video.write(np.full((61, 81, 3), 200, np.uint8), frame)
        assert not (tmp_path / "out.mp4").exists()  # written atomically, on close
    decoded, codec, fps = read_video(tmp_path / "out.mp4")
    assert len(decoded) == 5 and decoded[0].shape == (60, 80, 3) and codec == "h264" and fps == 5


def test_failed_writing_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), AnnotatedVideo(tmp_path / "out.mkv", fps=5) as video:
        video.write(np.zeros((20, 20, 3), np.uint8), FrameResult(0, 0.0))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FaceaffectError, match="annotated videos"):
        AnnotatedVideo(tmp_path / "out.gif", fps=5)


def test_annotating_a_video_decodes_it_again(tmp_path: Path, two_face_video: Path) -> None:
    frames = [FrameResult(i, i / 25, (face(i // 2 % 2, FaceBox(5, 5, 60, 60)),)) for i in range(0, 12, 2)]
    result = AnalysisResult(str(two_face_video), "video", AFFECTNET_8, "m", 12.5, Sampling(stride=2), frames)
    decoded, _, fps = read_video(result.annotate(tmp_path / "annotated.mov"))
    assert len(decoded) == 6 and fps == pytest.approx(12.5)
    labels = [np.median(f[7:17, 6:40].reshape(-1, 3), axis=0) for f in decoded]  # the label's background
    nearest = [int(np.argmin(np.abs(np.array(PALETTE) - colour).sum(axis=1))) for colour in labels]
    assert nearest == [0, 1, 0, 1, 0, 1]  # each frame's faces in their track's colour


def test_annotating_images(tmp_path: Path, shared_data: Path) -> None:
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    shutil.copy(shared_data / "faces" / "fer" / "justin.jpg", source / "sub" / "a.jpg")
    frame = FrameResult(
        0, math.nan, (face(0, FaceBox(10, 10, 50, 50)),), source=str(source / "sub" / "a.jpg")
    )
    folder = AnalysisResult(str(source), "images", AFFECTNET_8, "m", frames=[frame])
    out = folder.annotate(tmp_path / "out")
    with Image.open(out / "sub" / "a.jpg") as image:
        assert image.size == Image.open(source / "sub" / "a.jpg").size
    single = AnalysisResult(frame.source, "image", AFFECTNET_8, "m", frames=[frame])
    assert Image.open(single.annotate(tmp_path / "one.png")).format == "PNG"


def test_live_streams_cannot_be_annotated_afterwards(tmp_path: Path) -> None:
    result = AnalysisResult("0", "camera", AFFECTNET_8, "m")
    with pytest.raises(FaceaffectError, match="cannot be read twice"):
        result.annotate(tmp_path / "live.mp4")


def test_headless_machines_get_no_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not has_display() and LiveWindow.open() is None
    monkeypatch.setenv("DISPLAY", ":0")
    assert has_display()
