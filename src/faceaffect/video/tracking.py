"""Face tracking across frames: IoU matching against constant-velocity predictions, and linear interpolation
of the boxes of frames where a tracked face was not detected (missed, or skipped to save time).

:class:`IouTracker` is pure box maths; :class:`FrameTracker` runs a detector on a stream of frames, holds back
just enough frames to fill gaps, and releases frames in order with their final boxes by track id.

>>> tracker = IouTracker(min_iou=0.3, max_gap=5)
>>> tracker.update(0, [FaceBox(0, 0, 10, 10), FaceBox(50, 0, 60, 10)])[0][1][0]
1
>>> assigned, gaps = tracker.update(3, [FaceBox(52, 0, 62, 10)])
>>> assigned[0][0], [(p, round(box.x1, 2)) for p, box in gaps[0].boxes()]
(1, [(1, 50.67), (2, 51.33)])
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple, cast

import numpy as np

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.types import FaceBox
from faceaffect.detect.base import FaceDetector, MultiScaleDetector
from faceaffect.video.decode import DecodedFrame

SMALL_TRACK_MARGIN = 1.25  # tracks this close to the coarse passes' smallest face keep the search on


def corners(box: FaceBox) -> np.ndarray:
    """x1, y1, x2, y2 as a float array (4,)."""
    return np.array([box.x1, box.y1, box.x2, box.y2], dtype=np.float64)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every corner box in ``a`` (N, 4) with every one in ``b`` (M, 4)."""
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def centre_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between the centres of every box in ``a`` (N, 4) and in ``b`` (M, 4), in units of the
    ``a`` box's size (square root of its area); infinite where the sizes differ by more than 2x."""
    size_a = np.sqrt(np.prod(a[:, 2:] - a[:, :2], axis=1))[:, None]
    size_b = np.sqrt(np.prod(b[:, 2:] - b[:, :2], axis=1))[None, :]
    centres_a = (a[:, None, :2] + a[:, None, 2:]) / 2
    centres_b = (b[None, :, :2] + b[None, :, 2:]) / 2
    distance = np.linalg.norm(centres_a - centres_b, axis=2) / np.maximum(size_a, 1e-9)
    ratio = size_b / np.maximum(size_a, 1e-9)
    return np.where((ratio >= 0.5) & (ratio <= 2.0), distance, np.inf)


def greedy_match(similarity: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(row, column) pairs, most similar first, each row and column used once, similarity >= threshold."""
    rows, cols = np.nonzero(similarity >= threshold)
    order = np.argsort(-similarity[rows, cols], kind="stable")
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    pairs = []
    for row, col in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        if row not in used_rows and col not in used_cols:
            pairs.append((row, col))
            used_rows.add(row)
            used_cols.add(col)
    return pairs


def interpolate_box(start: FaceBox, end: FaceBox, fraction: float) -> FaceBox:
    """The box ``fraction`` of the way from ``start`` to ``end``; no detector score, ``interpolated``."""
    x1, y1, x2, y2 = (corners(start) * (1 - fraction) + corners(end) * fraction).tolist()
    return FaceBox(x1, y1, x2, y2, score=math.nan, interpolated=True)


@dataclass
class Track:
    """A face followed across frames: its last detected box and where it was, and its velocity per frame."""

    track_id: int
    box: FaceBox
    position: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))

    def predicted(self, position: int) -> np.ndarray:
        """Where the box should be at ``position`` if it keeps moving as it did."""
        return corners(self.box) + self.velocity * (position - self.position)


class Gap(NamedTuple):
    """Frames ``start + 1 .. end - 1`` where track ``track_id`` was not detected, between two detections."""

    track_id: int
    start: int
    start_box: FaceBox
    end: int
    end_box: FaceBox

    def boxes(self) -> list[tuple[int, FaceBox]]:
        """(position, interpolated box) for every frame of the gap."""
        span = self.end - self.start
        return [
            (p, interpolate_box(self.start_box, self.end_box, (p - self.start) / span))
            for p in range(self.start + 1, self.end)
        ]


class IouTracker:
    """Gives each face a track id that it keeps across frames.

    Detections are matched to the tracks' constant-velocity predictions by IoU (greedy, best first, at least
    ``min_iou``); tracks and detections left over are then matched by centre distance, up to ``max_shift``
    times the face's size (fast motion, or detection every few frames). Unmatched detections start new
    tracks (ids 0, 1, 2, ... in order of appearance); a track not detected for more than ``max_gap`` frames
    ends. Positions are frame numbers of the analysed stream.
    """

    def __init__(self, min_iou: float = 0.3, max_gap: int = 5, max_shift: float = 1.0) -> None:
        if not 0.0 < min_iou <= 1.0:
            raise FaceaffectError(f"tracking IoU threshold must lie in (0, 1], got {min_iou}")
        if max_gap < 0:
            raise FaceaffectError(f"max gap must be >= 0 frames, got {max_gap}")
        self.min_iou = min_iou
        self.max_gap = max_gap
        self.max_shift = max_shift
        self.tracks: list[Track] = []
        self.next_id = 0

    def update(self, position: int, boxes: list[FaceBox]) -> tuple[list[tuple[int, FaceBox]], list[Gap]]:
        """Match the detections of frame ``position``: (track id, box) per detection, and the gaps closed."""
        self.tracks = [t for t in self.tracks if position - t.position - 1 <= self.max_gap]
        pairs = []
        if self.tracks and boxes:
            predicted = np.stack([t.predicted(position) for t in self.tracks])
            pairs = self._match(predicted, np.stack([corners(b) for b in boxes]))
        matched: dict[int, Track] = {col: self.tracks[row] for row, col in pairs}
        assigned, gaps = [], []
        for index, box in enumerate(boxes):
            track = matched.get(index)
            if track is None:
                track = Track(self.next_id, box, position)
                self.next_id += 1
                self.tracks.append(track)
            elif position - track.position > 1:
                gaps.append(Gap(track.track_id, track.position, track.box, position, box))
            self._move(track, box, position)
            assigned.append((track.track_id, box))
        return assigned, gaps

    def _match(self, predicted: np.ndarray, detected: np.ndarray) -> list[tuple[int, int]]:
        """(track row, detection column) pairs: by IoU first, then the rest by centre distance."""
        pairs = greedy_match(iou_matrix(predicted, detected), self.min_iou)
        rows = [r for r in range(len(predicted)) if r not in {row for row, _ in pairs}]
        cols = [c for c in range(len(detected)) if c not in {col for _, col in pairs}]
        if rows and cols:
            distance = centre_distance(predicted[rows], detected[cols])
            pairs += [(rows[r], cols[c]) for r, c in greedy_match(-distance, -self.max_shift)]
        return pairs

    @staticmethod
    def _move(track: Track, box: FaceBox, position: int) -> None:
        if position > track.position:
            step = (corners(box) - corners(track.box)) / (position - track.position)
            track.velocity = 0.5 * (track.velocity + step)
        track.box, track.position = box, position


@dataclass(frozen=True)
class TrackingOptions:
    """How faces are followed: detector on every ``detect_every``-th frame, at most ``max_gap`` frames
    without a detection inside a track, IoU of at least ``min_iou`` to continue a track.

    A track is reported once one of its detections scores ``min_track_score`` or more: BlazeFace's false
    detections flicker at 0.5-0.6 (its threshold is 0.5) while tracks of real faces reach 0.7 and more, on
    the sample videos of ../shared/data. 0 reports every track.
    A multi-scale detector (BlazeFace) searches for faces too small for its whole-image passes on every
    ``small_face_every``-th detection, and on every detection while a reported track is that small: a new
    small face is found within that many detections, a big one at once (1: search on every frame).
    The defaults live in ``faceaffect.options.AnalyzerOptions`` (its ``tracking``).
    """

    detect_every: int
    max_gap: int
    min_iou: float
    min_track_score: float
    small_face_every: int

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise FaceaffectError(f"detect every must be at least 1 frame, got {self.detect_every}")
        if self.small_face_every < 1:
            raise FaceaffectError(f"small-face search every must be at least 1, got {self.small_face_every}")
        if not 0.0 <= self.min_track_score <= 1.0:
            raise FaceaffectError(f"min track score must lie in [0, 1], got {self.min_track_score}")
        IouTracker(self.min_iou, self.max_gap)  # checks the other two

    @property
    def gap_limit(self) -> int:
        """The longest run of frames without detection that a track bridges (at least the frames skipped
        between two detections)."""
        return max(self.max_gap, self.detect_every - 1)


Box = tuple[float, float, float, float, float, bool]  # x1, y1, x2, y2, score, interpolated


def box_values(box: FaceBox) -> Box:
    return (box.x1, box.y1, box.x2, box.y2, box.score, box.interpolated)


def box_from(values: Box | list[Any]) -> FaceBox:
    x1, y1, x2, y2, score, interpolated = values
    return FaceBox(x1, y1, x2, y2, score=score, interpolated=bool(interpolated))


@dataclass(frozen=True)
class TrackerState:
    """What a :class:`FrameTracker` needs to go on right after a frame it released, as plain data: the open
    tracks (id, last box, its position, velocity), the next id, the reported ids, the detection count, the
    last position and whether it was detected, and the frames it still held (source index, boxes by id).
    Positions count analysed frames; ``to_dict``/``from_dict`` carry it through JSON."""

    tracks: tuple[tuple[int, Box, int, tuple[float, ...]], ...]
    next_id: int
    confirmed: tuple[tuple[int, int], ...]
    detections: int
    position: int
    detected_last: bool
    pending: tuple[tuple[int, tuple[tuple[int, Box], ...]], ...]

    to_dict = asdict

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrackerState:
        return cls(
            tracks=tuple((i, tuple(box), p, tuple(v)) for i, box, p, v in data["tracks"]),  # type: ignore[misc]
            next_id=data["next_id"],
            confirmed=tuple((a, b) for a, b in data["confirmed"]),
            detections=data["detections"],
            position=data["position"],
            detected_last=data["detected_last"],
            pending=tuple(
                (index, tuple((t, tuple(box)) for t, box in boxes))  # type: ignore[misc]
                for index, boxes in data["pending"]
            ),
        )

    @property
    def released_position(self) -> int:
        """The position of the frame this state follows."""
        return self.position - len(self.pending)


@dataclass
class TrackedFrame:
    """A frame and its faces' boxes by track id (detected, or interpolated across a gap); ``state``, for
    tracked videos, is the tracker's state right after it released this frame (to resume from)."""

    frame: DecodedFrame
    boxes: dict[int, FaceBox] = field(default_factory=dict)
    state: TrackerState | None = None


class FrameTracker:
    """Detection and tracking over a stream of frames, released in order with their final boxes.

    The detector runs on every ``options.detect_every``-th frame (and the last one); boxes in between, and in
    gaps of up to ``options.max_gap`` frames where a tracked face was missed, are interpolated between the
    detections on either side, so frames are held back until no later detection can still fill them (at most
    ``options.gap_limit + 1`` frames). Tracks not yet confirmed (``options.min_track_score``) when a frame is
    released are left out of it; confirmed tracks are numbered 0, 1, 2, ... in order of confirmation.
    With ``track=False`` (unrelated images) every frame is detected, nothing is held back or left out, and
    track ids number the faces of each frame, best score first.
    """

    def __init__(self, detector: FaceDetector, options: TrackingOptions, *, track: bool = True) -> None:
        self.detector = detector
        self.detect_every = options.detect_every if track else 1
        self.tracker = IouTracker(options.min_iou, options.gap_limit) if track else None
        self.horizon = options.gap_limit + 1 if track else 0
        self.min_track_score = options.min_track_score
        self.small_face_every = options.small_face_every
        self.multi_scale = track and isinstance(detector, MultiScaleDetector)  # once: a slow Protocol check
        self.detections = 0
        self.confirmed: dict[int, int] = {}  # tracker id -> reported id
        self.pending: deque[TrackedFrame] = deque()
        self.position = -1
        self.detected_last = False
        self.awaiting: deque[tuple[int, dict[int, FaceBox]]] = deque()  # held frames of a restored state

    def restore(self, state: TrackerState) -> None:
        """Go on from ``state``: the next frames pushed must be the frames it held (their boxes are known),
        then tracking continues exactly as it would have."""
        assert self.tracker is not None, "only tracked videos have a state"
        self.tracker.tracks = [
            Track(track_id, box_from(box), position, np.array(velocity, dtype=np.float64))
            for track_id, box, position, velocity in state.tracks
        ]
        self.tracker.next_id = state.next_id
        self.confirmed = dict(state.confirmed)
        self.detections, self.position, self.detected_last = (
            state.detections,
            state.position,
            state.detected_last,
        )
        self.awaiting = deque((index, {t: box_from(b) for t, b in boxes}) for index, boxes in state.pending)

    def push(self, frame: DecodedFrame) -> list[TrackedFrame]:
        """Add the next frame; returns the frames that are now final (possibly none)."""
        if self.awaiting:
            index, boxes = self.awaiting.popleft()
            if frame.index != index:
                raise FaceaffectError(f"cannot resume: frame {index} was expected, frame {frame.index} came")
            self.pending.append(TrackedFrame(frame, boxes))
            return []
        self.position += 1
        self.pending.append(TrackedFrame(frame))
        self.detected_last = self.position % self.detect_every == 0
        if self.detected_last:
            self._detect(self.position)
        return self._release(self.horizon)

    def flush(self) -> list[TrackedFrame]:
        """At the end of the stream: detect on the last frame if it was skipped, release everything."""
        if self.pending and not self.detected_last:
            self._detect(self.position)
            self.detected_last = True
        return self._release(0)

    def _detect(self, position: int) -> None:
        item = self._at(position)
        boxes = self._find_faces(item.frame.image)
        if self.tracker is None:
            item.boxes.update(enumerate(boxes))
            return
        assigned, gaps = self.tracker.update(position, boxes)
        item.boxes.update(assigned)
        for track_id, box in assigned:
            if box.score >= self.min_track_score and track_id not in self.confirmed:
                self.confirmed[track_id] = len(self.confirmed)
        for gap in gaps:
            for between, box in gap.boxes():
                self._at(between).boxes[gap.track_id] = box

    def _find_faces(self, image: np.ndarray) -> list[FaceBox]:
        """The detector's boxes; a multi-scale detector on a video searches for small faces only every
        ``small_face_every``-th time, and every time while a reported track is near that small."""
        if not self.multi_scale or self.tracker is None:
            return self.detector.detect(image)
        detector = cast(MultiScaleDetector, self.detector)
        self.detections += 1
        limit = SMALL_TRACK_MARGIN * detector.coarse_min_face(image.shape[1], image.shape[0])
        small_tracked = any(
            min(track.box.width, track.box.height) < limit
            for track in self.tracker.tracks
            if track.track_id in self.confirmed
        )
        search = small_tracked or (self.detections - 1) % self.small_face_every == 0
        return detector.detect(image, small_faces=search)

    def _state(self) -> TrackerState:
        """The state now, holding the frames still pending (copied: the tracker goes on changing)."""
        assert self.tracker is not None
        return TrackerState(
            tracks=tuple(
                (t.track_id, box_values(t.box), t.position, tuple(t.velocity.tolist()))
                for t in self.tracker.tracks
            ),
            next_id=self.tracker.next_id,
            confirmed=tuple(self.confirmed.items()),
            detections=self.detections,
            position=self.position,
            detected_last=self.detected_last,
            pending=tuple(
                (item.frame.index, tuple((t, box_values(box)) for t, box in item.boxes.items()))
                for item in self.pending
            ),
        )

    def _at(self, position: int) -> TrackedFrame:
        return self.pending[position - self.position + len(self.pending) - 1]

    def _release(self, keep: int) -> list[TrackedFrame]:
        released = []
        while len(self.pending) > keep:
            item = self.pending.popleft()
            if self.tracker is not None:
                item.state = self._state()
                item.boxes = {self.confirmed[t]: box for t, box in item.boxes.items() if t in self.confirmed}
            item.boxes = dict(sorted(item.boxes.items()))
            released.append(item)
        return released
