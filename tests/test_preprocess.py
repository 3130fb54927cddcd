"""Preprocessing pinned to the published recipe: box crop, straight square resize, per-model mean/std."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from faceaffect.core.errors import InputError
from faceaffect.core.types import FaceBox
from faceaffect.hub.registry import get_config
from faceaffect.images import load_image, to_rgb_array
from faceaffect.preprocess import crop_box, preprocess


@pytest.mark.parametrize(
    "name", ["enet_b0_8_va_mtl", "enet_b2_8", "mbf_va_mtl", "mobilevit_va_mtl", "ddamfn_8"]
)
def test_constant_crop_normalises_with_the_model_mean_and_std(name: str) -> None:
    config = get_config(name)
    colour = np.array([200, 100, 50], dtype=np.uint8)
    batch = preprocess([np.broadcast_to(colour, (37, 81, 3)).copy()], config)
    assert batch.shape == (1, 3, config.input_size, config.input_size) and batch.dtype == np.float32
    expected = (colour / 255.0 - np.array(config.mean)) / np.array(config.std)
    np.testing.assert_allclose(batch[0].mean(axis=(1, 2)), expected, rtol=1e-6)
    np.testing.assert_allclose(batch[0].std(axis=(1, 2)), 0.0, atol=1e-6)


def test_matches_a_pil_reference_pipeline() -> None:
    """Box crop without margin, bilinear resize to a square ignoring aspect, then (x/255 - mean)/std, CHW."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    box = FaceBox(30, 10, 90, 110)
    config = get_config("enet_b0_8_va_mtl")
    reference = Image.fromarray(image).crop((30, 10, 90, 110)).resize((224, 224), Image.Resampling.BILINEAR)
    expected = ((np.asarray(reference) / 255.0 - config.mean) / config.std).transpose(2, 0, 1)
    got = preprocess([crop_box(image, box)], config)[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_aspect_ratio_is_not_kept() -> None:
    tall = np.zeros((100, 20, 3), np.uint8)
    tall[:50] = 255  # top half white: after a straight resize the top half of the square is white
    batch = preprocess([tall], get_config("mbf_va_mtl"))[0]
    top, bottom = batch[:, :50].mean(), batch[:, 62:].mean()
    assert top == pytest.approx(1.0, abs=1e-5) and bottom == pytest.approx(-1.0, abs=1e-5)


def test_crop_clips_to_the_image_and_applies_margin() -> None:
    image = np.arange(100 * 100 * 3, dtype=np.uint8).reshape(100, 100, 3)
    assert crop_box(image, FaceBox(-10, -10, 50, 40)).shape == (40, 50, 3)
    assert crop_box(image, FaceBox(40, 40, 60, 60), margin=0.5).shape == (40, 40, 3)
    with pytest.raises(InputError, match="outside the image"):
        crop_box(image, FaceBox(200, 200, 300, 300))


def test_input_kinds() -> None:
    grey = np.full((10, 12), 7, np.uint8)
    assert to_rgb_array(grey).shape == (10, 12, 3)
    assert to_rgb_array(np.zeros((10, 12, 4), np.uint8)).shape == (10, 12, 3)
    assert to_rgb_array(Image.new("L", (12, 10))).shape == (10, 12, 3)
    with pytest.raises(InputError, match="uint8"):
        to_rgb_array(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(InputError, match="shape"):
        to_rgb_array(np.zeros((10, 10, 2), np.uint8))


def test_load_image_errors(tmp_path) -> None:
    with pytest.raises(InputError, match="no such image"):
        load_image(tmp_path / "missing.jpg")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot read image"):
        load_image(broken)


def test_grey_models_see_pil_luma_on_every_channel() -> None:
    """Grey models (config ``grayscale``) get colour crops as PIL's "L", on every channel."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(60, 50, 3), dtype=np.uint8)
    config = get_config("mbf_va_mtl").replace(input_size=48, grayscale=True)
    luma = Image.fromarray(image).resize((48, 48), Image.Resampling.BILINEAR).convert("L")
    expected = (np.asarray(luma) / 255.0 - 0.5) / 0.5
    got = preprocess([image], config)[0]
    for channel in got:
        np.testing.assert_allclose(channel, expected, atol=1.01 / 127.5)  # PIL rounds luma its own way
    assert not np.allclose(preprocess([image], config.replace(grayscale=False))[0][0], got[0])
