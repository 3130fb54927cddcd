"""Where an analysis run puts each frame's result as it is made."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from faceaffect.core.types import FrameResult
from faceaffect.sink.base import Mark, RunEnd, RunInfo
from faceaffect.sink.resume import ResumeState


class Sink(Protocol):
    """Where results go as they are made. ``start`` may return the state of an interrupted run to continue
    (the analyzer then starts after its mark); ``write`` gets each finished frame in order, with its image
    when ``wants_images``; ``finish`` is called once, however the run ended."""

    wants_images: bool

    def start(self, info: RunInfo) -> ResumeState | None: ...

    def write(self, frame: FrameResult, image: np.ndarray | None, mark: Mark | None) -> None: ...

    def finish(self, end: RunEnd) -> None: ...
