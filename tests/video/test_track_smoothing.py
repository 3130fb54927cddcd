"""Smoothing: the streaming window against a plain loop, per track, by frames or seconds, and restarted."""

from __future__ import annotations

import numpy as np
import pytest

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.types import FaceBox, FacePrediction, FrameResult
from faceaffect.video.smoothing import Smoothing, SmoothingWindow

LABELS = ("a", "b", "c")


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


def random_frames(count: int) -> list[FrameResult]:
    """Three tracks at random frames (some frames without faces), random distributions and valence."""
    rng = np.random.default_rng(1)
    indices = np.sort(rng.choice(3 * count, size=count, replace=False))
    frames = []
    for index in indices.tolist():
        tracks = [t for t in range(3) if rng.random() < 0.7]
        faces = [face(t, list(rng.dirichlet(np.ones(3))), float(rng.uniform(-1, 1))) for t in tracks]
        frames.append(FrameResult(index, index / 30, tuple(faces)))
    return frames


WINDOWS = [Smoothing(window_frames=1), Smoothing(window_frames=6), Smoothing(window_seconds=0.35),
           Smoothing(window_frames=500)]  # fmt: skip


@pytest.mark.parametrize("window", WINDOWS)
def test_the_streaming_window_matches_a_plain_loop(window: Smoothing) -> None:
    frames = random_frames(60)
    by_time = window.window_seconds > 0
    keys = np.array([f.timestamp if by_time else f.index for f in frames])
    smoothed = window.apply(frames)
    assert [f.index for f in smoothed] == [f.index for f in frames]
    for i, frame in enumerate(smoothed):
        for got in frame.faces:
            near = [
                f for f, k in zip(frames, keys, strict=True) if abs(k - keys[i]) <= window.half_width + 1e-9
            ]
            same = [g for f in near for g in f.faces if g.track_id == got.track_id]
            np.testing.assert_allclose(got.probabilities, np.mean([g.probabilities for g in same], axis=0))
            assert got.valence == pytest.approx(np.mean([g.valence for g in same]))


def test_the_window_holds_only_one_window_of_frames() -> None:
    window: SmoothingWindow[int] = SmoothingWindow(Smoothing(window_frames=5))
    held = []
    for frame in two_tracks(200):
        window.push(frame, 0)
        held.append(len(window.entries))
    assert max(held) <= 5


@pytest.mark.parametrize("window", [Smoothing(window_frames=7), Smoothing(window_seconds=0.5)])
def test_a_window_restored_with_the_context_of_a_frame_goes_on_exactly(window: Smoothing) -> None:
    frames = random_frames(40)
    whole = SmoothingWindow[int](window)
    released = [out for i, f in enumerate(frames) for out in whole.push(f, i)] + whole.flush()
    for cut in (0, 10, 25):
        _, after, context = released[cut]
        restored = SmoothingWindow[int](window)
        restored.restore([(key, {t: v.tolist() for t, v in values.items()}) for key, values in context])
        rest = [
            out for i, f in enumerate(frames) if i > after for out in restored.push(f, i)
        ] + restored.flush()
        assert [p for _, p, _ in rest] == [p for _, p, _ in released[cut + 1 :]]
        for (a, _, _), (b, _, _) in zip(rest, released[cut + 1 :], strict=True):
            assert [(f.probabilities.tolist(), f.valence) for f in a.faces] == [
                (f.probabilities.tolist(), f.valence) for f in b.faces
            ]  # bit for bit: the same values summed in the same order
