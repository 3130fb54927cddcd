"""A live window of annotated frames for webcams and streams (matplotlib; None where there is no display)."""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from faceaffect.core.types import FrameResult
from faceaffect.render.draw import draw_faces


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
