"""BlazeFace (the default detector) on real photos from ../shared/data/faces and on transformed copies."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from faceaffect.core.types import FaceBox
from faceaffect.detect.base import FaceDetector
from faceaffect.detect.blazeface import FULL_RANGE, _TfliteBlazeFace, resize
from faceaffect.detect.ssd import iou, letterbox, weighted_nms

Photo = Callable[[str], np.ndarray]
Make = Callable[..., FaceDetector]

FACE_COUNTS = {
    "pyfeat_tests/multi_face.jpg": 5,
    "pyfeat_tests/single_face.jpg": 1,
    "pyfeat_tests/0-f1-su-ph.jpg": 1,
    "pyfeat_tests/0-f15-hao-ph.jpg": 1,
    "pyfeat_tests/15-f13-anc-ph.jpg": 1,
    "pyfeat_tests/45-m7-di-ph.jpg": 1,
    "pyfeat_tests/BWPictureHuman.jpg": 1,
    "face_recognition/obama.jpg": 1,
    "face_recognition/biden.jpg": 1,
    "face_recognition/two_people.jpg": 2,
    "fer/justin.jpg": 1,
    "pyfeat_tests/free-mountain-vector-01.jpg": 0,
    "fer/no-faces.jpg": 0,
}
ALIGNED = ["angelina_jolie", "bradley_cooper", "kate_siegel", "paul_rudd", "shea_whigham"]


def corners(face: FaceBox) -> np.ndarray:
    return np.array([face.x1, face.y1, face.x2, face.y2])


def assert_well_formed(faces: list[FaceBox], image: np.ndarray) -> None:
    """Sorted by score, inside the image, with six landmarks each."""
    height, width = image.shape[:2]
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    for face in faces:
        assert 0 <= face.x1 < face.x2 <= width and 0 <= face.y1 < face.y2 <= height
        assert face.landmarks is not None and face.landmarks.shape == (6, 2)


@pytest.mark.parametrize("relative, count", FACE_COUNTS.items())
def test_finds_the_faces_in_real_photos(
    blazeface: FaceDetector, photo: Photo, relative: str, count: int
) -> None:
    image = photo(relative)
    faces = blazeface.detect(image)
    assert len(faces) == count, [(round(f.score, 2), corners(f).round()) for f in faces]
    assert_well_formed(faces, image)


@pytest.mark.parametrize("relative", ["pyfeat_tests/multi_face.jpg", "face_recognition/two_people.jpg"])
def test_faces_in_a_group_do_not_overlap_and_have_similar_sizes(
    blazeface: FaceDetector, photo: Photo, relative: str
) -> None:
    faces = blazeface.detect(photo(relative))
    boxes = np.stack([corners(face) for face in faces])
    for index, box in enumerate(boxes):
        assert (np.delete(iou(box, boxes), index) < 0.05).all()
    sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    assert sides.max() / sides.min() < 1.6
    assert 60 < np.median(sides) < 200


@pytest.mark.parametrize("name", ALIGNED)
def test_a_face_filling_an_aligned_crop_is_found_filling_it(
    blazeface: FaceDetector, photo: Photo, name: str
) -> None:
    image = photo(f"facenet-pytorch/test_images_aligned/{name}/1.png")
    faces = blazeface.detect(image)
    assert len(faces) == 1
    face = faces[0]
    assert face.width * face.height > 0.6 * 160 * 160
    assert abs((face.x1 + face.x2) / 2 - 80) < 16 and abs((face.y1 + face.y2) / 2 - 80) < 24


def test_landmarks_sit_on_the_face_in_the_mediapipe_order(blazeface: FaceDetector, photo: Photo) -> None:
    faces = blazeface.detect(photo("pyfeat_tests/multi_face.jpg"))
    for face in faces:
        right_eye, left_eye, nose, mouth, right_ear, left_ear = face.landmarks
        for x, y in (right_eye, left_eye, nose, mouth):
            assert face.x1 <= x <= face.x2 and face.y1 <= y <= face.y2
        assert right_eye[0] < nose[0] < left_eye[0], "the subject's right eye is on the image's left"
        assert right_ear[0] < left_ear[0]
        assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]


def test_boxes_follow_the_image_when_it_is_flipped_padded_or_scaled(
    blazeface: FaceDetector, photo: Photo
) -> None:
    image = photo("fer/justin.jpg")
    height, width = image.shape[:2]
    (face,) = blazeface.detect(image)
    box, side = corners(face), face.width

    (flipped,) = blazeface.detect(np.ascontiguousarray(image[:, ::-1]))
    np.testing.assert_allclose(
        corners(flipped), [width - box[2], box[1], width - box[0], box[3]], atol=0.05 * side
    )
    np.testing.assert_allclose(flipped.landmarks[0, 0], width - face.landmarks[1, 0], atol=0.05 * side)

    padded = np.zeros((height + 300, width + 500, 3), np.uint8)
    padded[100 : 100 + height, 400 : 400 + width] = image
    (moved,) = blazeface.detect(padded)
    np.testing.assert_allclose(corners(moved), box + np.array([400, 100, 400, 100]), atol=0.05 * side)

    doubled = np.asarray(Image.fromarray(image).resize((2 * width, 2 * height), Image.Resampling.BILINEAR))
    (scaled,) = blazeface.detect(doubled)
    np.testing.assert_allclose(corners(scaled), 2 * box, atol=0.1 * side)


def test_tiling_finds_a_small_face_in_a_big_image(photo: Photo, detector: Make) -> None:
    face = Image.fromarray(photo("facenet-pytorch/test_images_aligned/paul_rudd/1.png")).resize((48, 48))
    canvas = Image.fromarray(photo("pyfeat_tests/free-mountain-vector-01.jpg"))
    canvas.paste(face, (1300, 700))
    image = np.asarray(canvas)
    tiled = detector("blazeface", min_face_size=32).detect(image)
    assert len(tiled) == 1
    np.testing.assert_allclose(corners(tiled[0]), [1300, 700, 1348, 748], atol=10)
    assert detector("blazeface", tiling=False).detect(image) == []
    blazeface = detector("blazeface", min_face_size=32)
    assert blazeface.detect(image, small_faces=False) == []  # what video frames get between searches
    height, width = image.shape[:2]
    assert 48 < blazeface.coarse_min_face(width, height) == pytest.approx(16 * max(width, height) / 192)


@pytest.mark.parametrize("name", ALIGNED)
def test_a_face_filling_the_height_of_a_wide_frame_is_found_without_the_short_range_pass(
    blazeface: FaceDetector, photo: Photo, name: str
) -> None:
    face = photo(f"facenet-pytorch/test_images_aligned/{name}/1.png")  # 160 x 160
    frame = np.full((160, 284, 3), 90, dtype=np.uint8)  # 16:9: the short-range model is skipped
    frame[:, 62:222] = face
    (found,) = blazeface.detect(frame)
    (alone,) = blazeface.detect(face)
    np.testing.assert_allclose(corners(found), corners(alone) + np.array([62, 0, 62, 0]), atol=0.1 * 160)


def test_thresholds_filter_the_faces(photo: Photo, detector: Make) -> None:
    image = photo("pyfeat_tests/multi_face.jpg")
    assert detector("blazeface", min_score=0.999).detect(image) == []
    assert detector("blazeface", min_face_size=300).detect(image) == []


def test_accepts_odd_shapes_without_failing(blazeface: FaceDetector, photo: Photo) -> None:
    image = photo("fer/justin.jpg")
    assert len(blazeface.detect(np.ascontiguousarray(image[::2, ::2]))) == 1
    assert blazeface.detect(np.zeros((5, 2000, 3), np.uint8)) == []
    assert blazeface.detect(np.zeros((2000, 5, 3), np.uint8)) == []


@pytest.mark.parametrize("relative", ["pyfeat_tests/multi_face.jpg", "face_recognition/two_people.jpg"])
def test_wide_canvas_finds_what_the_square_input_finds(photo: Photo, relative: str) -> None:
    """The full-range model rewritten for a 16:9 frame's 192 x 128 canvas (see ``canvas_graph``) reports
    the faces of the square 192 x 192 input, at the same places (the padding it leaves out is all)."""
    image = np.asarray(Image.fromarray(photo(relative)).resize((640, 360)))
    found = {}
    for multiple in (None, 32):
        window, fitted, pad, canvas = letterbox(640, 360, FULL_RANGE.input_size, multiple)
        model = _TfliteBlazeFace(FULL_RANGE, num_threads=1, canvas=canvas)
        found[canvas] = weighted_nms(model.run([resize(image, *fitted)], [pad], 0.5)[0].mapped(window))
    square, wide = found[(192, 192)], found[(192, 128)]
    assert len(square.boxes) == len(wide.boxes) == FACE_COUNTS[relative]
    for box, score in zip(square.boxes, square.scores, strict=True):
        overlap = iou(box, wide.boxes)
        assert overlap.max() > 0.9 and abs(wide.scores[overlap.argmax()] - score) < 0.1
