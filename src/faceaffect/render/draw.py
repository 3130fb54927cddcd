"""Drawing results on a frame: a box per face (its track's colour), the top expression, and a small
valence-arousal circle with the face's point in it.

>>> draw_faces(np.zeros((64, 64, 3), np.uint8), []).shape
(64, 64, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from faceaffect.core.types import FacePrediction

# matplotlib's tab10, so the plots and the video give a track the same colour
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))  # fmt: skip


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
