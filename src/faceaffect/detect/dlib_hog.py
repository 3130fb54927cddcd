"""dlib's HOG + linear SVM frontal face detector (model built into the ``dlib-bin`` wheel), offline.

Its sliding window finds faces of about 80 px and up, so the image is resized by ``80 / min_face_size`` first
(at most 4x up). Frontal faces only: turned heads and profiles are missed. No landmarks.

>>> detector = DlibHogDetector(min_face_size=60)  # doctest: +SKIP
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.types import FaceBox
from faceaffect.detect.base import check_image, check_options, to_face_boxes

WINDOW = 80.0
MAX_UPSCALE = 4.0


class DlibHogDetector:
    """dlib HOG frontal face detector; ``score`` is the sigmoid of the SVM margin (0.5: dlib's threshold).

    Args:
        min_score: detections scoring below this are dropped (0.5 keeps what dlib keeps by default).
        min_face_size: smallest face (shorter box side, original pixels) to report; the image is resized by
            ``80 / min_face_size`` (up to 4x), so small values are slow: 2x costs about 4x the time.
    """

    def __init__(self, min_score: float = 0.5, min_face_size: float = 60.0) -> None:
        check_options(min_score, min_face_size)
        try:
            import dlib
        except ImportError:
            raise FaceaffectError("the dlib detector needs dlib; run: pip install dlib-bin") from None
        self.min_score = min_score
        self.min_face_size = min_face_size
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """Faces in an RGB uint8 image (H, W, 3), best score first, boxes in original pixels."""
        image = check_image(image)
        height, width = image.shape[:2]
        scale = min(MAX_UPSCALE, WINDOW / max(self.min_face_size, 1.0))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        resized = (
            image
            if size == (width, height)
            else np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        )
        probability = min(max(self.min_score, 1e-6), 1 - 1e-6)
        rects, margins, _ = self._detector.run(resized, 0, math.log(probability / (1 - probability)))
        if not rects:
            return []
        corners = np.array(
            [[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], dtype=np.float64
        )
        boxes = corners * np.array([width / size[0], height / size[1]] * 2)
        scores = 1.0 / (1.0 + np.exp(-np.asarray(margins, dtype=np.float64)))
        return to_face_boxes(boxes, scores, None, image.shape, self.min_score, self.min_face_size)
