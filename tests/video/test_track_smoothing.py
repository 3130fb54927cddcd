"""Smoothing: the centred mean against a plain loop, per track, by frames or seconds."""

from __future__ import annotations

import numpy as np
import pytest

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.types import FaceBox, FacePrediction, FrameResult
from faceaffect.video.smoothing import Smoothing, centred_mean

LABELS = ("a", "b", "c")


def reference(keys: np.ndarray, values: np.ndarray, half: float) -> np.ndarray:
    return np.array([values[np.abs(keys - k) <= half + 1e-9].mean(axis=0) for k in keys])


@pytest.mark.parametrize("half", [0.0, 1.0, 2.5, 100.0])
def test_centred_mean_matches_a_loop(half: float) -> None:
    rng = np.random.default_rng(0)
    keys = np.sort(rng.choice(60, size=30, replace=False)).astype(float)
    values = rng.normal(size=(30, 4))
    np.testing.assert_allclose(centred_mean(keys, values, half), reference(keys, values, half), atol=1e-12)


def face(track: int, p: list[float], valence: float | None) -> FacePrediction:
    probabilities = np.array(p)
    return FacePrediction(LABELS, probabilities, np.log(probabilities), valence, valence,
                          box=FaceBox(0, 0, 10, 10), track_id=track)  # fmt: skip


def two_tracks(count: int, va: bool = True) -> list[FrameResult]:
    """Track 0 alternates between two distributions; track 1 is constant and appears from frame 2."""
    frames = []
    for i in range(count):
        p = [0.8, 0.1, 0.1] if i % 2 == 0 else [0.2, 0.7, 0.1]
        faces = [face(0, p, (1.0 if i % 2 == 0 else -1.0) if va else None)]
        if i >= 2:
            faces.append(face(1, [0.1, 0.1, 0.8], 0.5 if va else None))
        frames.append(FrameResult(i, i / 10, tuple(faces)))
    return frames


def test_smoothing_by_frames_averages_each_track_alone() -> None:
    smoothed = Smoothing(window_frames=3).apply(two_tracks(7))
    middle = smoothed[3].faces[0]  # frames 2, 3, 4: two of the first distribution, one of the second
    np.testing.assert_allclose(middle.probabilities, [0.6, 0.3, 0.1])
    assert middle.valence == pytest.approx(1 / 3) and middle.top_label == "a"
    np.testing.assert_allclose(np.exp(middle.logits), middle.probabilities)
    assert smoothed[0].faces[0].valence == pytest.approx(0.0)  # one-sided at the start: frames 0 and 1
    assert all(f.faces[1].valence == pytest.approx(0.5) for f in smoothed[2:])  # not mixed with track 0
    assert all(f.faces[0].box == FaceBox(0, 0, 10, 10) for f in smoothed)


def test_smoothing_by_seconds_equals_frames_at_the_same_span() -> None:
    by_time = Smoothing(window_seconds=0.2).apply(two_tracks(9))
    by_frames = Smoothing(window_frames=3).apply(two_tracks(9))
    for a, b in zip(by_time, by_frames, strict=True):
        for fa, fb in zip(a.faces, b.faces, strict=True):
            np.testing.assert_allclose(fa.probabilities, fb.probabilities)


def test_models_without_valence_arousal_are_smoothed_too() -> None:
    smoothed = Smoothing(window_frames=5).apply(two_tracks(6, va=False))
    assert all(f.valence is None for frame in smoothed for f in frame.faces)
    assert all(f.probabilities.sum() == pytest.approx(1.0) for frame in smoothed for f in frame.faces)


def test_no_window_changes_nothing_and_bad_windows_are_refused() -> None:
    frames = two_tracks(4)
    assert Smoothing().apply(frames) == frames
    with pytest.raises(FaceaffectError, match="not both"):
        Smoothing(window_frames=3, window_seconds=1.0)
    with pytest.raises(FaceaffectError, match="negative"):
        Smoothing(window_frames=-1)
