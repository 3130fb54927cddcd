"""Pure numpy maths of single-shot detectors such as BlazeFace: anchors, decoding, letterbox, weighted NMS.

Everything here works on arrays and knows nothing about a runtime, so it is unit-tested on synthetic inputs.

>>> ssd_anchors(128, strides=(8, 16, 16, 16), per_layer=2).shape
(896, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

SCORE_CLIP = 100.0


def ssd_anchors(input_size: int | tuple[int, int], strides: Sequence[int], per_layer: int) -> np.ndarray:
    """Anchor centres (N, 2) as (x, y) in [0, 1] of the input's width and height, in the order of the
    network's outputs; ``input_size`` is a square's side or (width, height).

    As MediaPipe's SsdAnchorsCalculator with ``fixed_anchor_size``: consecutive layers sharing a stride are
    merged into one feature map whose cells hold ``per_layer`` anchors per merged layer, all at the cell
    centre.
    """
    width, height = _pair(input_size)
    centres = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 0
        while layer < len(strides) and strides[layer] == stride:
            same += 1
            layer += 1
        rows, columns = int(np.ceil(height / stride)), int(np.ceil(width / stride))
        ys, xs = np.meshgrid(
            (np.arange(rows, dtype=np.float32) + 0.5) / rows,
            (np.arange(columns, dtype=np.float32) + 0.5) / columns,
            indexing="ij",
        )
        cell_centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell_centres, same * per_layer, axis=0))
    return np.concatenate(centres).astype(np.float32)


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else size


class Detections(NamedTuple):
    """Detections as arrays: corner boxes (N, 4) x1 y1 x2 y2, scores (N,), keypoints (N, K, 2)."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    @classmethod
    def empty(cls, num_keypoints: int) -> Detections:
        """No detections, with the right shapes."""
        return cls(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, num_keypoints, 2), np.float32)
        )

    @classmethod
    def concat(cls, parts: Sequence[Detections]) -> Detections:
        """All detections of ``parts`` (at least one) in one set."""
        return cls(*(np.concatenate(arrays) for arrays in zip(*parts, strict=True)))

    def select(self, keep: np.ndarray) -> Detections:
        """The detections where the boolean mask (or index array) ``keep`` says so."""
        return Detections(self.boxes[keep], self.scores[keep], self.keypoints[keep])

    def min_sides(self) -> np.ndarray:
        """The shorter side of each box (N,)."""
        return np.minimum(self.boxes[:, 2] - self.boxes[:, 0], self.boxes[:, 3] - self.boxes[:, 1])

    def mapped(self, window: Window) -> Detections:
        """Boxes and keypoints taken from input pixels to original pixels through ``window``."""
        boxes = window.to_original(self.boxes.reshape(-1, 2, 2)).reshape(-1, 4)
        return Detections(boxes, self.scores, window.to_original(self.keypoints))


def decode(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, input_size: int | tuple[int, int]
) -> Detections:
    """Network outputs -> detections in input pixels (``input_size``: a square's side or (width, height)).

    ``raw_boxes`` (N, 4 + 2K) hold centre x, centre y, width, height and K keypoints, as offsets in input
    pixels from the anchor centre; ``raw_scores`` (N,) or (N, 1) are logits, clipped to +-100 before the
    sigmoid.
    """
    raw = raw_boxes.reshape(len(anchors), raw_boxes.shape[-1] // 2, 2).astype(np.float32)
    centre_in_pixels = anchors * np.array(_pair(input_size), dtype=np.float32)
    centres = raw[:, 0] + centre_in_pixels
    half = raw[:, 1] / 2
    boxes = np.concatenate([centres - half, centres + half], axis=1)
    keypoints = raw[:, 2:] + centre_in_pixels[:, None, :]
    logits = np.clip(raw_scores.reshape(-1).astype(np.float32), -SCORE_CLIP, SCORE_CLIP)
    return Detections(boxes, 0.5 * (1.0 + np.tanh(0.5 * logits)), keypoints)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box (4,) with each of ``boxes`` (N, 4), corners x1 y1 x2 y2."""
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(detections: Detections, threshold: float = 0.3) -> Detections:
    """MediaPipe's weighted non-max suppression, results sorted by score (best first).

    The best remaining detection takes every remaining one with IoU above ``threshold`` (itself included);
    their boxes and keypoints are averaged with the scores as weights and the best score is kept.
    """
    boxes, scores, keypoints = detections.select(np.argsort(-detections.scores, kind="stable"))
    remaining = np.arange(len(scores))
    merged = []
    while remaining.size:
        overlap = iou(boxes[remaining[0]], boxes[remaining])
        overlap[0] = 1.0
        members = remaining[overlap > threshold]
        remaining = remaining[overlap <= threshold]
        weights = scores[members] / scores[members].sum()
        merged.append(
            (weights @ boxes[members], scores[members[0]], np.tensordot(weights, keypoints[members], 1))
        )
    if not merged:
        return Detections.empty(keypoints.shape[1])
    return Detections(
        *(np.asarray(np.stack(arrays), dtype=np.float32) for arrays in zip(*merged, strict=True))
    )


@dataclass(frozen=True)
class Window:
    """Affine map from network-input pixels to original-image pixels: original = input * scale + offset.

    Pixel coordinates are continuous (pixel ``i`` spans ``[i, i + 1]``), as the boxes a network outputs.
    """

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Input pixels (..., 2) -> original-image pixels (..., 2)."""
        return points * np.array([self.scale_x, self.scale_y]) + np.array([self.offset_x, self.offset_y])

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """Original-image pixels (..., 2) -> input pixels (..., 2); the inverse of :meth:`to_original`."""
        return (points - np.array([self.offset_x, self.offset_y])) / np.array([self.scale_x, self.scale_y])


def fit_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) resized so the longer side is ``size``, aspect ratio kept (each side at least 1)."""
    scale = size / max(width, height)
    return max(1, min(size, round(width * scale))), max(1, min(size, round(height * scale)))


def letterbox(
    width: int, height: int, size: int, multiple: int | None = None
) -> tuple[Window, tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Where an image lands when fitted into a ``size`` x ``size`` square (aspect ratio kept), centred on a
    canvas: the square itself, or with ``multiple`` the smallest canvas whose sides are multiples of it
    (at most ``size``), which leaves out most of the padding of a wide or tall image.

    Returns the input -> original map, the resized (width, height), the (left, top) padding and the
    canvas (width, height).
    """
    resized = fit_size(width, height, size)
    step = multiple or size
    canvas = (min(size, -(-resized[0] // step) * step), min(size, -(-resized[1] // step) * step))
    pad = ((canvas[0] - resized[0]) // 2, (canvas[1] - resized[1]) // 2)
    scale_x, scale_y = width / resized[0], height / resized[1]
    return Window(scale_x, scale_y, -pad[0] * scale_x, -pad[1] * scale_y), resized, pad, canvas


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``length`` pixels, neighbours sharing at least
    ``overlap`` pixels, spread evenly; one tile starting at 0 when ``length <= tile``."""
    if length <= tile:
        return [0]
    count = int(np.ceil((length - tile) / (tile - overlap))) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]
