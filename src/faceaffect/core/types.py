"""Central result types: frozen dataclasses with numpy inside, coordinates in original-image pixels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FaceBox:
    """A detected face: corners in pixels of the original image, detector score, optional landmarks (K, 2).

    ``interpolated`` boxes come from tracking (between two detections of the face), not from the detector;
    their score is NaN.
    """

    x1: float
    y1: float
    x2: float
    y2: float
    score: float = 1.0
    landmarks: np.ndarray | None = None
    interpolated: bool = False

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


@dataclass(frozen=True)
class FacePrediction:
    """What a model says about one face.

    ``probabilities`` are over ``labels`` (same order); ``valence``/``arousal`` are clipped to [-1, 1] and are
    None for models without a valence-arousal head.
    """

    labels: tuple[str, ...]
    probabilities: np.ndarray
    logits: np.ndarray
    valence: float | None = None
    arousal: float | None = None
    embedding: np.ndarray | None = None
    box: FaceBox | None = None
    track_id: int | None = None

    @property
    def top_label(self) -> str:
        return self.labels[int(np.argmax(self.probabilities))]

    @property
    def top_probability(self) -> float:
        return float(np.max(self.probabilities))

    def as_dict(self) -> dict[str, object]:
        """One flat row: a probability column per label, top label, valence, arousal."""
        row: dict[str, object] = {
            label: float(p) for label, p in zip(self.labels, self.probabilities, strict=True)
        }
        row.update(top_label=self.top_label, valence=self.valence, arousal=self.arousal)
        return row


@dataclass(frozen=True)
class FrameResult:
    """All faces found in one frame of an image or video.

    ``index`` counts frames of the source (images of a folder), ``timestamp`` is in seconds from the start
    (NaN for still images), ``source`` names the image file a frame came from when the input has several.
    """

    index: int
    timestamp: float
    faces: tuple[FacePrediction, ...] = field(default_factory=tuple)
    source: str | None = None
