"""Detector maths on synthetic inputs: anchors, decoding, letterbox mapping, weighted NMS, tiling plans."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from PIL import Image

from faceaffect.detect.blazeface import FULL_RANGE, SHORT_RANGE, pyramid_scales, resize
from faceaffect.detect.ssd import (
    Detections,
    Window,
    decode,
    iou,
    letterbox,
    ssd_anchors,
    tile_starts,
    weighted_nms,
)


def test_full_range_anchors_are_a_48x48_grid_of_single_anchors() -> None:
    anchors = ssd_anchors(FULL_RANGE.input_size, FULL_RANGE.strides, FULL_RANGE.anchors_per_layer)
    assert anchors.shape == (2304, 2)
    row, column = 3, 5
    np.testing.assert_allclose(anchors[row * 48 + column], [(column + 0.5) / 48, (row + 0.5) / 48])
    np.testing.assert_allclose(anchors[0], [0.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(anchors[-1], [47.5 / 48, 47.5 / 48])


def test_anchors_of_a_wide_input_follow_its_rows_and_columns() -> None:
    anchors = ssd_anchors((192, 128), FULL_RANGE.strides, FULL_RANGE.anchors_per_layer)
    assert anchors.shape == (32 * 48, 2)
    row, column = 7, 40
    np.testing.assert_allclose(anchors[row * 48 + column], [(column + 0.5) / 48, (row + 0.5) / 32])
    raw = np.zeros((len(anchors), 16), dtype=np.float32)
    centres = decode(raw, np.zeros(len(anchors)), anchors, (192, 128)).boxes[:, :2]
    np.testing.assert_allclose(centres[row * 48 + column], [column * 4 + 2, row * 4 + 2])


def test_short_range_anchors_are_two_per_16x16_cell_then_six_per_8x8_cell() -> None:
    anchors = ssd_anchors(SHORT_RANGE.input_size, SHORT_RANGE.strides, SHORT_RANGE.anchors_per_layer)
    assert anchors.shape == (896, 2)
    fine, coarse = anchors[:512].reshape(256, 2, 2), anchors[512:].reshape(64, 6, 2)
    assert (fine == fine[:, :1]).all() and (coarse == coarse[:, :1]).all()
    np.testing.assert_allclose(fine[16 + 2, 0], [2.5 / 16, 1.5 / 16])
    np.testing.assert_allclose(coarse[8 * 7 + 1, 0], [1.5 / 8, 7.5 / 8])


def test_decode_offsets_boxes_and_keypoints_from_the_anchor_centre() -> None:
    anchors = np.array([[0.25, 0.5], [0.75, 0.125]], dtype=np.float32)
    raw = np.zeros((2, 16), dtype=np.float32)
    raw[0, :4] = [10, -4, 20, 30]
    raw[0, 4:6] = [3, 5]
    raw[1, 2:4] = [8, 8]
    found = decode(raw, np.array([[0.0], [2.0]]), anchors, input_size=128)
    np.testing.assert_allclose(found.boxes[0], [32 + 10 - 10, 64 - 4 - 15, 32 + 10 + 10, 64 - 4 + 15])
    np.testing.assert_allclose(found.boxes[1], [96 - 4, 16 - 4, 96 + 4, 16 + 4])
    np.testing.assert_allclose(found.keypoints[0, 0], [35, 69])
    np.testing.assert_allclose(found.keypoints[1], np.tile([96, 16], (6, 1)))
    np.testing.assert_allclose(found.scores, 1 / (1 + np.exp(-np.array([0.0, 2.0]))), rtol=1e-6)


def test_decode_clips_huge_logits_without_overflow() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = decode(np.zeros((3, 16)), np.array([-1e30, 1e30, 100.0]), np.zeros((3, 2)), 192)
    np.testing.assert_allclose(found.scores, [0.0, 1.0, 1.0], atol=1e-12)


@pytest.mark.parametrize("multiple", [None, 32])
@pytest.mark.parametrize("width, height", [(640, 480), (480, 640), (192, 192), (1000, 7), (1, 1), (160, 160)])
def test_letterbox_maps_the_image_corners_onto_the_pasted_region_and_back(
    width: int, height: int, multiple: int | None
) -> None:
    window, (resized_w, resized_h), (pad_x, pad_y), (canvas_w, canvas_h) = letterbox(
        width, height, 192, multiple
    )
    assert max(resized_w, resized_h) == 192 and pad_x >= 0 and pad_y >= 0
    if multiple is None:
        assert (canvas_w, canvas_h) == (192, 192)
    else:  # the smallest multiple of 32 holding the image
        assert canvas_w % 32 == 0 and canvas_h % 32 == 0
        assert 0 <= canvas_w - resized_w < 32 and 0 <= canvas_h - resized_h < 32
    assert abs(pad_x * 2 + resized_w - canvas_w) <= 1 and abs(pad_y * 2 + resized_h - canvas_h) <= 1
    corners = np.array([[0.0, 0.0], [width, height]])
    np.testing.assert_allclose(
        window.to_input(corners), [[pad_x, pad_y], [pad_x + resized_w, pad_y + resized_h]]
    )
    points = np.random.default_rng(0).uniform(-50, 250, size=(10, 3, 2))
    np.testing.assert_allclose(window.to_input(window.to_original(points)), points, atol=1e-9)


def test_letterbox_puts_a_marked_pixel_where_the_mapping_says() -> None:
    image = np.zeros((300, 500, 3), dtype=np.uint8)
    image[200:220, 100:120] = 255
    window, resized_size, (pad_x, pad_y), _ = letterbox(500, 300, 192)
    pasted = np.zeros((192, 192, 3), dtype=np.uint8)
    resized = resize(image, *resized_size)
    pasted[pad_y : pad_y + resized.shape[0], pad_x : pad_x + resized.shape[1]] = resized
    ys, xs = np.nonzero(pasted[:, :, 0] > 127)
    centre_in_input = window.to_input(np.array([110.0, 210.0]))
    np.testing.assert_allclose([xs.mean() + 0.5, ys.mean() + 0.5], centre_in_input, atol=0.5)


def test_window_maps_input_pixels_to_original_pixels() -> None:
    window = Window(scale_x=2.0, scale_y=4.0, offset_x=10.0, offset_y=-3.0)
    np.testing.assert_allclose(window.to_original(np.array([[1.0, 1.0]])), [[12.0, 1.0]])
    found = Detections(np.array([[0.0, 0.0, 10.0, 5.0]]), np.array([0.9]), np.array([[[1.0, 2.0]]]))
    mapped = found.mapped(window)
    np.testing.assert_allclose(mapped.boxes, [[10.0, -3.0, 30.0, 17.0]])
    np.testing.assert_allclose(mapped.keypoints, [[[12.0, 5.0]]])


def test_iou_of_known_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], dtype=np.float64)
    np.testing.assert_allclose(iou(boxes[0], boxes), [1.0, 50 / 150, 0.0, 0.0])


def test_weighted_nms_averages_overlapping_detections_by_score_and_keeps_the_best_score() -> None:
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [100, 100, 110, 110]], dtype=np.float32)
    scores = np.array([0.6, 0.9, 0.7], dtype=np.float32)
    keypoints = np.array([[[0, 0]], [[10, 20]], [[5, 5]]], dtype=np.float32)
    merged = weighted_nms(Detections(boxes, scores, keypoints), threshold=0.3)
    np.testing.assert_allclose(merged.scores, [0.9, 0.7])
    np.testing.assert_allclose(merged.boxes[0], (0.6 * boxes[0] + 0.9 * boxes[1]) / 1.5, rtol=1e-6)
    np.testing.assert_allclose(merged.keypoints[0], [[6.0, 12.0]], rtol=1e-6)
    np.testing.assert_allclose(merged.boxes[1], boxes[2])


def test_weighted_nms_keeps_detections_whose_overlap_is_at_or_below_the_threshold() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], dtype=np.float32)
    found = Detections(boxes, np.array([0.8, 0.9], np.float32), np.zeros((2, 6, 2), np.float32))
    assert len(weighted_nms(found, threshold=1 / 3).scores) == 2
    assert len(weighted_nms(found, threshold=0.3).scores) == 1


def test_weighted_nms_of_nothing_is_nothing() -> None:
    merged = weighted_nms(Detections.empty(6))
    assert merged.boxes.shape == (0, 4) and merged.keypoints.shape == (0, 6, 2)


@pytest.mark.parametrize("length", [1, 100, 192, 193, 320, 1000, 5000])
def test_tiles_cover_the_length_with_the_requested_overlap(length: int) -> None:
    starts = tile_starts(length, 192, 64)
    assert starts[0] == 0
    assert starts[-1] + 192 >= length
    ends = [start + 192 for start in starts]
    assert all(end - next_start >= 64 for end, next_start in zip(ends, starts[1:], strict=False))
    assert all(start + 192 <= max(length, 192) for start in starts)


def test_pyramid_fits_the_image_first_then_reaches_the_smallest_face() -> None:
    assert pyramid_scales(640, 480, min_face_size=64) == [0.3]
    scales = pyramid_scales(4000, 3000, min_face_size=32)
    assert scales[0] == pytest.approx(192 / 4000) and scales[-1] == pytest.approx(16 / 32)
    assert all(b / a <= 3.0 + 1e-9 for a, b in itertools.pairwise(scales))
    assert pyramid_scales(400, 300, min_face_size=1)[-1] == 1.0
    assert pyramid_scales(160, 160, min_face_size=32) == [1.2]


def test_resize_matches_pil_bilinear() -> None:
    image = np.random.default_rng(0).integers(0, 256, size=(90, 120, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(image).resize((60, 45), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(resize(image, 60, 45), expected)
    assert resize(image, 120, 90) is image
