"""analyze() on images as users have them: rotated phone photos, 16-bit scans, arrays and PIL images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import faceaffect
from faceaffect.core.errors import FaceaffectError, InputError
from faceaffect.recognizer import Recognizer

BOX = ["x1", "y1", "x2", "y2"]


@pytest.fixture(scope="module")
def two_people(shared_data: Path) -> Image.Image:
    return Image.open(shared_data / "faces" / "face_recognition" / "two_people.jpg").convert("RGB")


def boxes(path_or_image: object, recognizer: Recognizer) -> np.ndarray:
    table = faceaffect.analyze(path_or_image, model=recognizer).to_table()
    return table.sort_values("x1")[BOX].to_numpy()


def test_an_exif_rotated_photo_gives_the_upright_photos_boxes(
    two_people: Image.Image, recognizer: Recognizer, tmp_path: Path
) -> None:
    """A phone stores the photo sideways and says 'rotate 90 degrees clockwise to show' (orientation 6):
    boxes are in the coordinates of the photo as shown, and the annotated image is upright."""
    upright = tmp_path / "upright.png"
    two_people.save(upright)
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = tmp_path / "sideways.png"
    two_people.transpose(Image.Transpose.ROTATE_90).save(sideways, exif=exif.tobytes())
    expected = boxes(upright, recognizer)
    assert len(expected) == 2
    np.testing.assert_allclose(boxes(sideways, recognizer), expected, atol=1.0)
    result = faceaffect.analyze(sideways, model=recognizer)
    drawn = Image.open(result.annotate(tmp_path / "drawn.png"))
    assert drawn.size == two_people.size


def test_a_sixteen_bit_grey_photo_finds_the_faces_of_the_eight_bit_one(
    two_people: Image.Image, recognizer: Recognizer, tmp_path: Path
) -> None:
    grey = np.asarray(two_people.convert("L"))
    Image.fromarray(grey).save(tmp_path / "grey8.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    expected = boxes(tmp_path / "grey8.png", recognizer)
    assert len(expected) == 2
    np.testing.assert_allclose(boxes(tmp_path / "grey16.png", recognizer), expected)


def test_an_array_and_a_pil_image_are_analysed_as_one_image(
    two_people: Image.Image, recognizer: Recognizer, tmp_path: Path
) -> None:
    two_people.save(tmp_path / "photo.png")
    from_file = faceaffect.analyze(tmp_path / "photo.png", model=recognizer).to_table()
    for image, name in ((np.asarray(two_people), "<array>"), (two_people, "<image>")):
        result = faceaffect.analyze(image, model=recognizer)
        table = result.to_table()
        assert result.kind == "image" and len(result) == 1 and set(table.source) == {name}
        columns = [*BOX, *recognizer.labels]
        np.testing.assert_allclose(table[columns].to_numpy(), from_file[columns].to_numpy(), atol=1e-6)
        with pytest.raises(FaceaffectError, match="draw_faces"):
            result.annotate(tmp_path / "drawn.png")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (np.zeros((32, 32, 3), np.float32), "dtype float32"),
        (np.zeros((32, 32, 5), np.uint8), r"got \(32, 32, 5\)"),
        (np.zeros((4, 32, 32, 3), np.uint8), "got"),
        ([1, 2, 3], "cannot analyse a list"),
        (b"\x89PNG", "cannot analyse a bytes"),
        (True, "cannot analyse a bool"),
        (2.5, "cannot analyse a float"),
    ],
)
def test_wrong_inputs_are_clear_errors(source: object, message: str, recognizer: Recognizer) -> None:
    with pytest.raises(InputError, match=message):
        faceaffect.analyze(source, model=recognizer)
