"""Drawing results on frames: a box per face (its track's colour), the top expression, and a small
valence-arousal circle with the face's point in it; written as an H.264 video, images, or a live window.

>>> with AnnotatedVideo("out.mp4", fps=25) as video:  # doctest: +SKIP
...     for image, frame in analyzer.stream_images("clip.mp4"):
...         video.write(image, frame)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from faceaffect.errors import FaceaffectError
from faceaffect.preprocess import load_image
from faceaffect.tables import atomic_path
from faceaffect.types import FacePrediction, FrameResult
from faceaffect.video.decode import VideoReader

if TYPE_CHECKING:
    from faceaffect.results import AnalysisResult

# matplotlib's tab10, so the plots and the video give a track the same colour
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))  # fmt: skip
VIDEO_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def draw_faces(image: np.ndarray, faces: Sequence[FacePrediction]) -> np.ndarray:
    """A copy of an RGB frame with each face's box, label and valence-arousal marker drawn on it."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    scale = max(image.shape[:2]) / 640
    font = _font(max(10, round(12 * scale)))
    for face in faces:
        if face.box is None:
            continue
        color = PALETTE[(face.track_id or 0) % len(PALETTE)]
        box = face.box
        width = 1 if box.interpolated else max(2, round(2 * scale))
        draw.rectangle((box.x1, box.y1, box.x2, box.y2), outline=color, width=width)
        text = f"{face.track_id} {face.top_label} {face.top_probability:.0%}"
        if face.valence is not None and face.arousal is not None:
            text += f"\nV {face.valence:+.2f} A {face.arousal:+.2f}"
            _va_marker(draw, box.x2, box.y1, max(10.0, 0.2 * box.width), (face.valence, face.arousal), color)
        _label(draw, (box.x1, box.y1), text, font, color)
    return np.asarray(canvas)


def _label(
    draw: ImageDraw.ImageDraw, corner: tuple[float, float], text: str, font: Any, color: tuple
) -> None:
    """``text`` on a filled box in ``color``, above the corner (below it when there is no room)."""
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font)
    height = bottom - top + 4
    x, y = corner[0], corner[1] - height if corner[1] >= height else corner[1]
    draw.rectangle((x, y, x + right - left + 4, y + height), fill=color)
    draw.multiline_text((x + 2, y + 2 - top), text, font=font, fill=(255, 255, 255))


def _va_marker(
    draw: ImageDraw.ImageDraw, x: float, y: float, radius: float, va: tuple[float, float], color: tuple
) -> None:
    """A circumplex of ``radius`` right of (x, y): axes, rim, and the face's (valence, arousal) point."""
    cx, cy = x + radius + 4, y + radius
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), outline=(255, 255, 255), width=1)
    draw.line((cx - radius, cy, cx + radius, cy), fill=(200, 200, 200))
    draw.line((cx, cy - radius, cx, cy + radius), fill=(200, 200, 200))
    px, py, dot = cx + va[0] * radius, cy - va[1] * radius, max(2.0, radius / 6)
    draw.ellipse((px - dot, py - dot, px + dot, py + dot), fill=color, outline=(255, 255, 255))


class AnnotatedVideo:
    """An H.264 video (.mp4, .mov, .mkv) written frame by frame, atomically: the file appears on close."""

    def __init__(self, path: str | Path, fps: float | None) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_FORMATS:
            raise FaceaffectError(
                f"annotated videos are written as {', '.join(VIDEO_FORMATS)}, got {self.path}"
            )
        self.rate = Fraction(fps or 25.0).limit_denominator(1001)
        self._atomic = atomic_path(self.path)
        self.container: Any = None
        self.stream: Any = None

    def __enter__(self) -> AnnotatedVideo:
        import av

        tmp = self._atomic.__enter__()
        self.container = av.open(str(tmp), mode="w", format=VIDEO_FORMATS[self.path.suffix.lower()])
        return self

    def write(self, image: np.ndarray, frame: FrameResult) -> None:
        """Draw ``frame``'s faces on ``image`` and append it (cropped to even sides, as H.264 needs)."""
        import av

        height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
        if self.stream is None:
            self.stream = self.container.add_stream("libx264", rate=self.rate, options={"crf": "23"})
            self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        drawn = draw_faces(np.ascontiguousarray(image[:height, :width]), frame.faces)
        self.container.mux(self.stream.encode(av.VideoFrame.from_ndarray(drawn, format="rgb24")))

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if kind is None and self.stream is not None:
                self.container.mux(self.stream.encode(None))
            self.container.close()
        finally:
            self._atomic.__exit__(kind, error, trace)


def annotate_result(result: AnalysisResult, path: str | Path) -> Path:
    """Draw an analysis on its input again: a video file (decoded once more), or images (one file for a
    single image, a folder mirroring the input folder otherwise). Live streams cannot be read twice."""
    path = Path(path)
    if result.kind == "camera":
        raise FaceaffectError("a live stream cannot be read twice; draw while streaming (AnnotatedVideo)")
    if result.kind == "video":
        by_index = {frame.index: frame for frame in result.frames}
        with AnnotatedVideo(path, result.fps) as video:
            for decoded in VideoReader.open(result.source, result.sampling):
                if decoded.index in by_index:
                    video.write(decoded.image, by_index[decoded.index])
        return path
    for frame in result.frames:
        source = Path(frame.source or result.source)
        target = path if result.kind == "image" else path / source.relative_to(result.source)
        drawn = Image.fromarray(draw_faces(load_image(source), frame.faces))
        with atomic_path(target) as tmp:
            drawn.save(tmp, format=Image.registered_extensions().get(target.suffix.lower(), "PNG"))
    return path


def has_display() -> bool:
    """Whether a window can be shown (macOS and Windows always; elsewhere an X11 or Wayland display)."""
    return sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


class LiveWindow:
    """A matplotlib window showing annotated frames as they come; :meth:`open` gives None when headless."""

    def __init__(self, plt: Any, title: str) -> None:
        self.plt = plt
        self.figure, self.axes = plt.subplots(num=title)
        self.axes.set_axis_off()
        self.image: Any = None

    @classmethod
    def open(cls, title: str = "faceaffect") -> LiveWindow | None:
        if not has_display():
            return None
        try:
            import matplotlib.pyplot as plt

            plt.switch_backend("TkAgg" if sys.platform != "darwin" else "macosx")
            plt.ion()
            return cls(plt, title)
        except (ImportError, RuntimeError, ValueError):
            return None

    @property
    def closed(self) -> bool:
        return not self.plt.fignum_exists(self.figure.number)

    def show(self, image: np.ndarray, frame: FrameResult) -> None:
        drawn = draw_faces(image, frame.faces)
        if self.image is None:
            self.image = self.axes.imshow(drawn)
        else:
            self.image.set_data(drawn)
        self.plt.pause(0.001)

    def close(self) -> None:
        self.plt.close(self.figure)
