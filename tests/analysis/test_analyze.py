"""analyze() and stream() end to end: real BlazeFace detection, tracking, a random-weight recognizer."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import FRAMES, HIDDEN

import faceaffect
from faceaffect.analysis import Analyzer
from faceaffect.core.errors import FaceaffectError, InputError
from faceaffect.detect import create_detector
from faceaffect.recognizer import Recognizer
from faceaffect.results import AnalysisResult, table_columns
from faceaffect.video.smoothing import Smoothing


class CountingDetector:
    """The real BlazeFace, counting its calls."""

    def __init__(self) -> None:
        self.detector = create_detector("blazeface")
        self.min_score, self.min_face_size = self.detector.min_score, self.detector.min_face_size
        self.calls = 0

    def detect(self, image: np.ndarray) -> list:
        self.calls += 1
        return self.detector.detect(image)


@pytest.fixture(scope="module")
def result(recognizer: Recognizer, two_face_video: Path) -> AnalysisResult:
    return faceaffect.analyze(two_face_video, model=recognizer)


def test_video_with_two_faces(result: AnalysisResult, recognizer: Recognizer) -> None:
    table = result.to_table()
    assert result.kind == "video" and result.fps == pytest.approx(25) and len(result) == FRAMES
    assert list(table.columns) == table_columns(recognizer.labels)
    assert len(table) == 2 * FRAMES and sorted(table.track_id.unique()) == [0, 1]
    assert table.groupby("frame").size().tolist() == [2] * FRAMES
    np.testing.assert_allclose(table.time.unique(), np.arange(FRAMES) / 25, atol=1e-6)
    filled = table[table.interpolated]
    assert sorted(filled.frame) == list(HIDDEN) and filled.track_id.nunique() == 1
    assert filled.score.isna().all() and table[~table.interpolated].score.gt(0.5).all()
    np.testing.assert_allclose(table[list(recognizer.labels)].sum(axis=1), 1.0, atol=1e-6)
    assert table.valence.between(-1, 1).all() and table.arousal.between(-1, 1).all()
    assert set(table.top_label) <= set(recognizer.labels) and set(table.model) == {"tiny_va"}


def test_many_batches_match_one_batch(
    result: AnalysisResult, recognizer: Recognizer, tiny_model: Path, two_face_video: Path
) -> None:
    """With batches of 4 frames, every frame must still get its own faces' predictions, as when the whole
    video is one batch."""
    assert recognizer.batch_size < 2 * FRAMES
    whole = faceaffect.analyze(two_face_video, model=Recognizer(tiny_model, batch_size=4 * FRAMES))
    labels = list(recognizer.labels)
    batched, one = result.to_table(), whole.to_table()
    assert batched[["frame", "track_id"]].equals(one[["frame", "track_id"]])
    np.testing.assert_allclose(batched[labels].to_numpy(), one[labels].to_numpy(), atol=1e-5)


def test_stream_yields_each_frame_in_order(recognizer: Recognizer, two_face_video: Path) -> None:
    frames = faceaffect.stream(two_face_video, model=recognizer, max_frames=6)
    first = next(frames)
    assert first.index == 0 and len(first.faces) == 2
    assert [f.index for f in frames] == [1, 2, 3, 4, 5]


def test_detect_every_runs_the_detector_less(recognizer: Recognizer, two_face_video: Path) -> None:
    detector = CountingDetector()
    table = faceaffect.analyze(two_face_video, model=recognizer, detector=detector, detect_every=3).to_table()
    assert detector.calls == 5  # frames 0, 3, 6, 9 and the last one
    assert len(table) == 2 * FRAMES and table.track_id.nunique() == 2


def test_gap_longer_than_max_gap_is_left_empty(recognizer: Recognizer, two_face_video: Path) -> None:
    table = faceaffect.analyze(two_face_video, model=recognizer, max_gap=1).to_table()
    assert len(table) == 2 * FRAMES - len(HIDDEN) and not table.interpolated.any()
    assert table.track_id.nunique() == 3  # face 0 came back as a new track


def test_progress_and_sampling(recognizer: Recognizer, two_face_video: Path) -> None:
    calls = []
    result = faceaffect.analyze(
        two_face_video, model=recognizer, stride=3, progress=lambda *a: calls.append(a)
    )
    assert [frame.index for frame in result] == [0, 3, 6, 9]
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)
    assert result.fps == pytest.approx(25 / 3)


def test_smoothing_is_applied_per_track(
    result: AnalysisResult, recognizer: Recognizer, two_face_video: Path
) -> None:
    smoothed = faceaffect.analyze(two_face_video, model=recognizer, smooth_frames=5)
    expected = Smoothing(window_frames=5).apply(result.frames)
    for got, want in zip(smoothed, expected, strict=True):
        for a, b in zip(got.faces, want.faces, strict=True):
            np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-9)
            assert a.valence == pytest.approx(b.valence)


def test_margin_widens_the_crop(recognizer: Recognizer, two_face_video: Path) -> None:
    tight = faceaffect.analyze(two_face_video, model=recognizer, max_frames=1, embeddings=True)
    wide = faceaffect.analyze(two_face_video, model=recognizer, max_frames=1, embeddings=True, margin=0.3)
    assert not np.allclose(tight.embeddings(), wide.embeddings())
    assert tight.embeddings().shape == (2, recognizer.config.embedding_dim)


def test_a_single_image(recognizer: Recognizer, shared_data: Path) -> None:
    path = shared_data / "faces" / "pyfeat_tests" / "single_face.jpg"
    result = faceaffect.analyze(path, model=recognizer)
    table = result.to_table()
    assert result.kind == "image" and len(table) == 1
    assert table.source[0] == str(path) and math.isnan(table.time[0]) and table.track_id[0] == 0


def test_an_image_without_faces_gives_an_empty_valid_table(recognizer: Recognizer, shared_data: Path) -> None:
    result = faceaffect.analyze(shared_data / "faces" / "pyfeat_tests" / "free-mountain-vector-01.jpg",
                                model=recognizer)  # fmt: skip
    assert len(result) == 1 and result.to_table().empty
    assert list(result.to_table().columns) == table_columns(recognizer.labels)


def test_a_folder_with_bad_images(recognizer: Recognizer, shared_data: Path, tmp_path: Path) -> None:
    faces = shared_data / "faces"
    shutil.copy(faces / "face_recognition" / "two_people.jpg", tmp_path / "a.jpg")
    (tmp_path / "nested").mkdir()
    shutil.copy(faces / "fer" / "justin.jpg", tmp_path / "nested" / "c.jpg")
    (tmp_path / "b.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    result = faceaffect.analyze(tmp_path, model=recognizer)
    table = result.to_table()
    assert result.kind == "images" and [f.path for f in result.failures] == [str(tmp_path / "b.png")]
    assert table.groupby("source").size().to_dict() == {str(tmp_path / "a.jpg"): 2,
                                                        str(tmp_path / "nested" / "c.jpg"): 1}  # fmt: skip
    assert sorted(table[table.source.str.endswith("a.jpg")].track_id) == [0, 1]
    assert result.frames[1].index == 2  # image numbers count the unreadable file too


def test_a_video_without_faces(recognizer: Recognizer, shared_data: Path) -> None:
    result = faceaffect.analyze(shared_data / "videos" / "pyfeat_tests" / "no_face.mp4", model=recognizer,
                                max_frames=8)  # fmt: skip
    assert len(result) == 8 and result.to_table().empty and result.summary().empty


def test_expression_only_model(expression_only_model: Path, two_face_video: Path, tmp_path: Path) -> None:
    result = faceaffect.analyze(two_face_video, model=expression_only_model, max_frames=3)
    table = result.to_table()
    assert "Contempt" not in table.columns and len(result.labels) == 7
    assert table.valence.isna().all() and table.arousal.isna().all() and not result.has_va
    assert [p.name for p in result.plot(tmp_path)] == ["expressions.png"]


def test_live_stream_stops_when_asked(recognizer: Recognizer, two_face_video: Path) -> None:
    seen = []
    analyzer = Analyzer(recognizer)
    result = analyzer.analyze(
        f"file://{two_face_video}", on_frame=lambda image, frame: seen.append(frame) or len(seen) < 3
    )
    assert result.kind == "camera" and len(result) == 3 and seen == result.frames


def test_bad_inputs_and_options(recognizer: Recognizer, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        faceaffect.analyze(tmp_path / "missing.mp4", model=recognizer)
    with pytest.raises(InputError, match="no image files"):
        faceaffect.analyze(tmp_path, model=recognizer)
    with pytest.raises(FaceaffectError, match="unknown model 'no_such_model'"):
        faceaffect.analyze(tmp_path, model="no_such_model")
    with pytest.raises(FaceaffectError, match="unknown face detector"):
        Analyzer(recognizer, detector="yolo")
    for bad in (
        {"margin": -0.1},
        {"detect_every": 0},
        {"stride": 0},
        {"smooth_frames": 3, "smooth_seconds": 1},
    ):
        with pytest.raises(FaceaffectError):
            Analyzer(recognizer, **bad)
