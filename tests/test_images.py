"""The one image reader: EXIF orientation, every pixel format as 8-bit RGB, the pixel limit, arrays."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from faceaffect.core.errors import InputError, LimitError
from faceaffect.core.limits import raised_limits
from faceaffect.images import decode_image, expand_images, image_header, load_image, to_rgb_array


def png_header_only(width: int, height: int, mode_byte: int = 0) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels (grey, 8 bit) but holds one row of data: what a
    decompression bomb looks like to a reader that trusts the header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, mode_byte, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width + 1))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def with_orientation(image: Image.Image, orientation: int, path: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, exif=exif.tobytes())
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int, tmp_path: Path) -> None:
    stored = Image.fromarray(np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3))
    path = with_orientation(stored, orientation, tmp_path / "o.png")
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    image = load_image(path)
    np.testing.assert_array_equal(image, expected)
    assert image.shape == ((30, 20, 3) if orientation >= 5 else (20, 30, 3))


def test_orientation_6_turns_the_top_left_corner_to_the_top_right(tmp_path: Path) -> None:
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[0, 0] = 255
    image = load_image(with_orientation(Image.fromarray(stored), 6, tmp_path / "o.png"))
    assert image.shape == (40, 20, 3) and image[0, 19].tolist() == [255, 255, 255]


def test_a_damaged_exif_block_leaves_the_image_as_stored(tmp_path: Path) -> None:
    path = tmp_path / "e.png"
    Image.new("RGB", (6, 4), (1, 2, 3)).save(path, exif=b"Exif\0\0garbage that is no TIFF header")
    assert load_image(path).shape == (4, 6, 3)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    grey = np.arange(256, dtype=np.uint16).reshape(16, 16)
    Image.fromarray(grey * 257).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    image = load_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(image, np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.array([[0, 65535, 32896]], np.uint16), [0, 255, 128]),  # 16 bit: full scale 65535
        (np.array([[0, 100, 255]], np.int32), [0, 100, 255]),  # 32-bit integers holding 8-bit levels
        (np.array([[0, 1000, 65535]], np.int32), [0, 4, 255]),  # ... holding 16-bit levels
        (np.array([[0.0, 0.5, 1.0]], np.float32), [0, 128, 255]),  # float in [0, 1]
        (np.array([[0.0, 100.0, 255.0]], np.float32), [0, 100, 255]),  # float in [0, 255]
        (np.array([[np.nan, -3.0, 2e6]], np.float32), [0, 0, 255]),  # NaN and negatives: black
    ],
)
def test_deep_grey_modes(values: np.ndarray, expected: list[int]) -> None:
    image = Image.fromarray(values)
    assert image.mode in ("I;16", "I", "F")
    assert to_rgb_array(image)[0, :, 0].tolist() == expected


def test_palette_transparency_alpha_cmyk_and_one_bit() -> None:
    palette = Image.new("P", (2, 1))
    palette.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    palette.putpixel((1, 0), 1)
    assert to_rgb_array(palette)[0].tolist() == [[10, 20, 30], [200, 100, 50]]
    palette.info["transparency"] = 0  # colour 0 transparent: laid on white
    assert to_rgb_array(palette)[0].tolist() == [[255, 255, 255], [200, 100, 50]]
    rgba = Image.fromarray(np.array([[[200, 0, 0, 0], [200, 0, 0, 255], [0, 0, 0, 128]]], np.uint8))
    assert to_rgb_array(rgba)[0].tolist() == [[255, 255, 255], [200, 0, 0], [127, 127, 127]]
    grey_alpha = Image.fromarray(np.array([[[50, 255], [50, 0]]], np.uint8), mode="LA")
    assert to_rgb_array(grey_alpha)[0].tolist() == [[50, 50, 50], [255, 255, 255]]
    assert to_rgb_array(Image.new("CMYK", (1, 1), (0, 255, 255, 0)))[0, 0].tolist() == [255, 0, 0]
    bits = Image.new("1", (2, 1))
    bits.putpixel((1, 0), 1)
    assert to_rgb_array(bits)[0].tolist() == [[0, 0, 0], [255, 255, 255]]


def test_arrays_of_the_wrong_type_or_shape_are_one_line_errors() -> None:
    assert to_rgb_array(np.zeros((3, 4, 1), np.uint8)).shape == (3, 4, 3)
    assert to_rgb_array(np.zeros((3, 4, 4), np.uint8)).shape == (3, 4, 3)
    for array, message in [
        (np.zeros((3, 4, 3), np.float64), "dtype float64"),
        (np.zeros((3, 4, 2), np.uint8), r"got \(3, 4, 2\)"),
        (np.zeros((2, 3, 4, 3), np.uint8), "got"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.array("text"), "dtype <U4"),
    ]:
        with pytest.raises(InputError, match=message):
            to_rgb_array(array)


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(65_000, 65_000))  # 4.2 gigapixels declared in 300 bytes
    with pytest.raises(InputError, match=r"65000x65000 pixels, more than the limit of 200000000"):
        load_image(bomb)
    with raised_limits(max_image_pixels=10), pytest.raises(InputError, match="FACEAFFECT_MAX_IMAGE_PIXELS"):
        decode_image(png_header_only(4, 4), "small")


def test_a_header_tells_format_and_size_within_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    Image.new("RGB", (40, 30)).save(path)
    assert image_header(path) == ("JPEG", 40, 30)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(65_000, 65_000))
    with pytest.raises(LimitError, match="65000x65000 pixels"):
        image_header(bomb)
    path.write_bytes(b"text")
    with pytest.raises(InputError, match="cannot read image"):
        image_header(path)


def test_our_limit_replaces_pillows_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow warns above 89 megapixels and refuses above 179, whatever faceaffect's limit says: while
    faceaffect decodes, only its own limit applies (and Pillow's is restored afterwards)."""
    path = tmp_path / "a.png"
    Image.new("RGB", (40, 30), (9, 9, 9)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow would refuse 1200 pixels now
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(path).shape == (30, 40, 3)
    assert Image.MAX_IMAGE_PIXELS == 100


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "cannot read image"),
        (b"not an image at all", "cannot read image"),
        (png_header_only(64, 64)[:40], "cannot read image"),  # truncated in its first chunk
        (png_header_only(64, 64, mode_byte=7), "cannot read image"),  # a colour type PNG does not have
    ],
)
def test_broken_files_are_one_line_input_errors(content: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as error:
        load_image(path)
    assert "\n" not in str(error.value)


def test_a_folder_named_like_an_image_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "dir.jpg").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "real.png")
    assert expand_images([tmp_path]) == [tmp_path / "real.png"]
    with pytest.raises(InputError, match="not a file"):
        load_image(tmp_path / "dir.jpg")


def test_the_recognizers_preprocessing_reads_pil_modes_the_same_way() -> None:
    from faceaffect.hub.registry import get_config
    from faceaffect.preprocess import preprocess

    config = get_config("mbf_va_mtl")
    grey = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16
    from_pil = preprocess([Image.fromarray(grey)], config)
    from_array = preprocess([to_rgb_array(Image.fromarray(grey))], config)
    np.testing.assert_array_equal(from_pil, from_array)
    assert from_pil.std() > 0.1  # not a white square
