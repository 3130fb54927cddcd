"""Tracking: IoU maths, stable ids, gap filling; FrameTracker with the real BlazeFace on moving faces."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from moving_faces import BOTTOM, FACE_SIZE, TOP, face_x, moving_frames
from PIL import Image
from sample_data import unavailable

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.types import FaceBox
from faceaffect.detect import create_detector
from faceaffect.detect.base import FaceDetector, missing_packages
from faceaffect.detect.blazeface import BlazeFaceDetector
from faceaffect.options import AnalyzerOptions
from faceaffect.video.decode import DecodedFrame
from faceaffect.video.tracking import (
    FrameTracker,
    IouTracker,
    TrackedFrame,
    TrackerState,
    box_values,
    centre_distance,
    greedy_match,
    interpolate_box,
    iou_matrix,
)


@pytest.fixture(scope="module")
def blazeface() -> FaceDetector:
    if missing_packages("blazeface"):
        unavailable("BlazeFace is not installed")
    return create_detector("blazeface")


def box(x: float, y: float, size: float = 10.0) -> FaceBox:
    return FaceBox(x, y, x + size, y + size, score=0.9)


def test_iou_matrix_matches_hand_computed_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], dtype=float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], dtype=float)
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 0, 1], [50 / 150, 0, 1]])


def test_greedy_match_takes_best_pairs_once() -> None:
    similarity = np.array([[0.9, 0.8], [0.85, 0.1], [0.0, 0.05]])
    assert greedy_match(similarity, 0.3) == [(0, 0)]
    assert sorted(greedy_match(np.array([[0.9, 0.8], [0.85, 0.4]]), 0.3)) == [(0, 0), (1, 1)]


def test_ids_follow_two_faces_whatever_the_detection_order() -> None:
    tracker = IouTracker(min_iou=0.3, max_gap=2)
    ids = []
    for t in range(10):
        boxes = [box(2.0 * t, 0), box(100 - 2.0 * t, 50)]
        assigned, gaps = tracker.update(t, boxes if t % 2 else boxes[::-1])
        ids.append({round(b.y1): tid for tid, b in assigned})
        assert gaps == []
    assert sorted(ids[0].values()) == [0, 1] and all(frame_ids == ids[0] for frame_ids in ids)


def test_gap_is_interpolated_and_too_long_a_gap_starts_a_new_track() -> None:
    tracker = IouTracker(min_iou=0.3, max_gap=2)
    tracker.update(0, [box(0, 0)])
    tracker.update(1, [box(1, 0)])
    assigned, gaps = tracker.update(4, [box(4, 0)])  # frames 2 and 3 missed: bridged
    assert assigned[0][0] == 0 and len(gaps) == 1
    filled = gaps[0].boxes()
    assert [p for p, _ in filled] == [2, 3]
    assert [b.x1 for _, b in filled] == pytest.approx([2.0, 3.0])
    assert all(b.interpolated and math.isnan(b.score) for _, b in filled)
    assigned, gaps = tracker.update(8, [box(8, 0)])  # frames 5-7 missed: more than max_gap
    assert assigned[0][0] == 1 and gaps == []


def test_constant_velocity_prediction_keeps_accelerating_faces() -> None:
    tracker = IouTracker(min_iou=0.3, max_gap=0, max_shift=0.0)  # IoU only
    for t, x in enumerate([0, 4, 10, 16, 22, 28]):  # from frame 2 on, IoU with the last box alone is 0.25
        assert tracker.update(t, [box(x, 0)])[0][0][0] == 0


def test_centre_distance_catches_what_iou_misses() -> None:
    a = np.array([[0, 0, 10, 10]], dtype=float)
    b = np.array([[8, 0, 18, 10], [0, 0, 30, 30], [3, 4, 13, 14]], dtype=float)
    np.testing.assert_allclose(centre_distance(a, b), [[0.8, np.inf, 0.5]])
    tracker = IouTracker(min_iou=0.3, max_gap=0)
    tracker.update(0, [box(0, 0)])
    assert tracker.update(1, [box(8, 0)])[0][0][0] == 0  # IoU 0.11, but it moved less than its size
    assert tracker.update(2, [box(40, 0)])[0][0][0] == 1  # too far: a new face


def test_interpolate_box_is_linear() -> None:
    middle = interpolate_box(FaceBox(0, 0, 10, 10), FaceBox(10, 20, 30, 40), 0.5)
    assert (middle.x1, middle.y1, middle.x2, middle.y2) == (5, 10, 20, 25)


def test_tracking_options_are_checked() -> None:
    for bad in (
        {"detect_every": 0},
        {"max_gap": -1},
        {"track_iou": 0.0},
        {"track_iou": 1.5},
        {"min_track_score": 2},
        {"small_face_every": 0},
    ):
        with pytest.raises(FaceaffectError):
            AnalyzerOptions(**bad)
    assert AnalyzerOptions(detect_every=4, max_gap=1).tracking.gap_limit == 3


def run_tracker(detector: FaceDetector, images: list[np.ndarray], **settings: Any) -> list[TrackedFrame]:
    """Track ``images`` with the analyzer's tracking options (``settings`` change them)."""
    options = AnalyzerOptions(**settings).tracking
    tracker = FrameTracker(detector, options)
    out = []
    for index, image in enumerate(images):
        out.extend(tracker.push(DecodedFrame(index, index / 25, image)))
        assert len(tracker.pending) <= options.gap_limit + 1  # memory stays bounded
    return out + tracker.flush()


def ids_by_row(frames: list[TrackedFrame]) -> dict[str, set[int]]:
    rows: dict[str, set[int]] = {"top": set(), "bottom": set()}
    for item in frames:
        for track_id, face in item.boxes.items():
            rows["top" if face.y1 < (TOP + BOTTOM) / 2 else "bottom"].add(track_id)
    return rows


def test_two_real_faces_keep_their_ids(blazeface: FaceDetector) -> None:
    frames = run_tracker(blazeface, moving_frames(12))
    assert [item.frame.index for item in frames] == list(range(12))
    assert all(len(item.boxes) == 2 for item in frames)
    assert ids_by_row(frames) == {"top": {0}, "bottom": {1}} or ids_by_row(frames) == {
        "top": {1},
        "bottom": {0},
    }
    for item in frames:
        top = min(item.boxes.values(), key=lambda b: b.y1)
        assert abs(top.x1 - face_x(0, item.frame.index, 12)) < FACE_SIZE / 4


def test_missed_frames_are_interpolated(blazeface: FaceDetector) -> None:
    frames = run_tracker(blazeface, moving_frames(12, hide={0: [4, 5, 6]}), max_gap=3)
    assert len(set().union(*ids_by_row(frames).values())) == 2
    top_id = next(iter(ids_by_row(frames)["top"]))
    filled = {item.frame.index: item.boxes[top_id] for item in frames if item.boxes[top_id].interpolated}
    assert sorted(filled) == [4, 5, 6]
    for index, face in filled.items():
        assert abs(face.x1 - face_x(0, index, 12)) < FACE_SIZE / 4


def test_a_gap_longer_than_max_gap_is_not_filled(blazeface: FaceDetector) -> None:
    frames = run_tracker(blazeface, moving_frames(12, hide={0: [4, 5, 6]}), max_gap=2)
    assert [len(item.boxes) for item in frames] == [2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2]
    assert len(ids_by_row(frames)["top"]) == 2  # the face came back as a new track


def test_detect_every_fills_the_frames_in_between(blazeface: FaceDetector) -> None:
    frames = run_tracker(blazeface, moving_frames(11), detect_every=3, max_gap=0)
    detected = [i for i, item in enumerate(frames) if not any(b.interpolated for b in item.boxes.values())]
    assert detected == [0, 3, 6, 9, 10]  # and the last frame, detected at the flush
    assert all(len(item.boxes) == 2 for item in frames)
    assert len(ids_by_row(frames)["top"]) == len(ids_by_row(frames)["bottom"]) == 1


def test_unrelated_images_are_numbered_per_image(blazeface: FaceDetector) -> None:
    tracker = FrameTracker(blazeface, AnalyzerOptions().tracking, track=False)
    released = [tracker.push(DecodedFrame(i, math.nan, image)) for i, image in enumerate(moving_frames(3))]
    assert all(len(items) == 1 and sorted(items[0].boxes) == [0, 1] for items in released)
    scores = [b.score for b in released[0][0].boxes.values()]
    assert scores == sorted(scores, reverse=True)


def test_tracks_never_scoring_high_enough_are_left_out(blazeface: FaceDetector) -> None:
    images = moving_frames(4)
    assert all(item.boxes == {} for item in run_tracker(blazeface, images, min_track_score=0.999))
    kept = run_tracker(blazeface, images, min_track_score=0.8)
    assert [sorted(item.boxes) for item in kept] == [[0, 1]] * 4  # reported ids count confirmed tracks only


class SearchLog(BlazeFaceDetector):
    """The real BlazeFace, noting on which calls it searched for small faces."""

    def __init__(self) -> None:
        super().__init__()
        self.searches: list[bool] = []

    def detect(self, image: np.ndarray, *, small_faces: bool = True) -> list[FaceBox]:
        self.searches.append(small_faces)
        return super().detect(image, small_faces=small_faces)


def small_face_frames(count: int, appears: int) -> list[np.ndarray]:
    """1280 x 720 frames with a 48 px face (too small for the whole-image passes) from ``appears`` on."""
    face = moving_frames(1)[0][TOP : TOP + FACE_SIZE, face_x(0, 0, 1) : face_x(0, 0, 1) + FACE_SIZE]
    small = np.asarray(Image.fromarray(face).resize((48, 48)))
    frames = [np.full((720, 1280, 3), 128, dtype=np.uint8) for _ in range(count)]
    for frame in frames[appears:]:
        frame[400:448, 900:948] = small
    return frames


def test_small_faces_are_searched_every_nth_frame_and_always_once_tracked() -> None:
    if missing_packages("blazeface"):
        unavailable("BlazeFace is not installed")
    detector = SearchLog()
    assert detector.coarse_min_face(1280, 720) > 48 * 1.25
    frames = run_tracker(detector, small_face_frames(14, appears=2), small_face_every=5)
    assert detector.searches == [True, False, False, False, False, True] + [True] * 8
    assert [len(item.boxes) for item in frames] == [0] * 5 + [1] * 9  # found at the search of frame 5
    detector.searches.clear()
    frames = run_tracker(detector, small_face_frames(6, appears=2), small_face_every=1)
    assert all(detector.searches) and [len(item.boxes) for item in frames] == [0, 0, 1, 1, 1, 1]


def test_big_faces_do_not_keep_the_small_face_search_on() -> None:
    if missing_packages("blazeface"):
        unavailable("BlazeFace is not installed")
    detector = SearchLog()
    frames = run_tracker(detector, moving_frames(12), small_face_every=5)
    assert all(len(item.boxes) == 2 for item in frames)
    assert detector.searches == [index % 5 == 0 for index in range(12)]


def boxes(item: TrackedFrame) -> dict[int, tuple[float | None, ...]]:
    """Boxes by id, comparable (the NaN score of an interpolated box as None)."""
    return {track: tuple(None if v != v else v for v in box_values(box)) for track, box in item.boxes.items()}


@pytest.mark.parametrize("settings", [{"max_gap": 3}, {"detect_every": 3, "max_gap": 0}])
def test_a_tracker_restored_after_any_frame_goes_on_exactly(
    blazeface: FaceDetector, settings: dict[str, int]
) -> None:
    """The state a tracker gives with each released frame, through JSON, restarts it there: the frames after
    come out with the same boxes and ids as in one uninterrupted pass (faces hidden, ids confirmed late)."""
    images = moving_frames(14, hide={0: [4, 5, 6]})
    whole = run_tracker(blazeface, images, **settings)
    options = AnalyzerOptions(**settings).tracking
    for cut in (0, 3, 6, 12):
        state = TrackerState.from_dict(json.loads(json.dumps(whole[cut].state.to_dict())))
        tracker = FrameTracker(blazeface, options)
        tracker.restore(state)
        rest = []
        for index in range(cut + 1, len(images)):
            rest.extend(tracker.push(DecodedFrame(index, index / 25, images[index])))
        rest += tracker.flush()
        assert [item.frame.index for item in rest] == list(range(cut + 1, len(images)))
        assert [boxes(item) for item in rest] == [boxes(item) for item in whole[cut + 1 :]]
    with pytest.raises(FaceaffectError, match="frame 4 was expected, frame 5 came"):
        tracker = FrameTracker(blazeface, options)
        tracker.restore(whole[3].state)
        tracker.push(DecodedFrame(5, 0.2, images[5]))
