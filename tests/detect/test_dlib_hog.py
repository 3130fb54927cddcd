"""The optional dlib HOG detector on real photos (skipped when dlib-bin is not installed)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from faceaffect.detect.base import FaceDetector

Photo = Callable[[str], np.ndarray]

FACE_COUNTS = {
    "pyfeat_tests/single_face.jpg": 1,
    "pyfeat_tests/0-f1-su-ph.jpg": 1,
    "face_recognition/obama.jpg": 1,
    "face_recognition/two_people.jpg": 2,
    "fer/justin.jpg": 1,
    "facenet-pytorch/test_images_aligned/paul_rudd/1.png": 1,
    "facenet-pytorch/multiface.jpg": 6,
    "fer/no-faces.jpg": 0,
    "pyfeat_tests/free-mountain-vector-01.jpg": 0,
}


@pytest.mark.parametrize("relative, count", FACE_COUNTS.items())
def test_finds_frontal_faces_in_real_photos(
    dlib_hog: FaceDetector, photo: Photo, relative: str, count: int
) -> None:
    image = photo(relative)
    faces = dlib_hog.detect(image)
    assert len(faces) == count
    height, width = image.shape[:2]
    for face in faces:
        assert 0 <= face.x1 < face.x2 <= width and 0 <= face.y1 < face.y2 <= height
        assert 0.5 <= face.score <= 1.0 and face.landmarks is None


def test_agrees_with_blazeface_on_where_the_faces_are(
    dlib_hog: FaceDetector, blazeface: FaceDetector, photo: Photo
) -> None:
    image = photo("face_recognition/two_people.jpg")
    centres = [
        sorted(((f.x1 + f.x2) / 2, (f.y1 + f.y2) / 2) for f in detector.detect(image))
        for detector in (dlib_hog, blazeface)
    ]
    np.testing.assert_allclose(centres[0], centres[1], atol=40)


def test_min_face_size_sets_the_search_scale(detector: Callable[..., FaceDetector], photo: Photo) -> None:
    image = photo("pyfeat_tests/multi_face.jpg")
    assert len(detector("dlib", min_face_size=40).detect(image)) >= len(
        detector("dlib", min_face_size=100).detect(image)
    )
    assert detector("dlib", min_face_size=400).detect(image) == []
