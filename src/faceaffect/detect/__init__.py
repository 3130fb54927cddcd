"""Face detectors behind one interface: ``create_detector(name, **options).detect(rgb) -> list[FaceBox]``.

>>> from faceaffect.detect import create_detector
>>> detector = create_detector("blazeface", min_face_size=32)  # doctest: +SKIP
"""

from faceaffect.detect.base import (
    DETECTORS,
    FaceDetector,
    available_detectors,
    create_detector,
    list_detectors,
)
from faceaffect.detect.blazeface import LANDMARK_NAMES

__all__ = [
    "DETECTORS",
    "LANDMARK_NAMES",
    "FaceDetector",
    "available_detectors",
    "create_detector",
    "list_detectors",
]
