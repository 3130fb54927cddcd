"""The engine interface shared by the torch and ONNX Runtime paths."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np

from faceaffect.core.errors import FaceaffectError
from faceaffect.hub.registry import ModelConfig


class EngineKind(StrEnum):
    """Which engine runs a model: ``auto`` chooses ONNX Runtime on CPU when an ONNX file exists, torch on
    GPU and when only torch weights exist."""

    AUTO = "auto"
    TORCH = "torch"
    ONNX = "onnx"


ENGINES = tuple(kind.value for kind in EngineKind)


@dataclass(frozen=True)
class EngineOutput:
    """Raw network outputs for a batch.

    logits (N, C); valence-arousal (N, 2) or None; embedding (N, D) or None.
    """

    logits: np.ndarray
    valence_arousal: np.ndarray | None
    embedding: np.ndarray | None


class Engine(Protocol):
    """Runs one model on normalised float32 batches (N, 3, S, S).

    ``concurrency`` is how many ``run`` calls may usefully run at once from different threads (the
    Recognizer keeps that many batches in flight, each preprocessed on its own thread); ``preferred_batch``
    is the batch size it runs fastest at per face, or None when larger is always better.
    """

    config: ModelConfig
    concurrency: int
    preferred_batch: int | None

    def run(self, batch: np.ndarray, *, with_embedding: bool = False) -> EngineOutput: ...


def resolve_device(device: str) -> str:
    """Validate a device name: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (cuda when available)."""
    if device == "cpu":
        return device
    if device != "auto" and not device.startswith("cuda"):
        raise FaceaffectError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto")
    import torch

    if torch.cuda.is_available():
        return "cuda" if device == "auto" else device
    if device == "auto":
        return "cpu"
    raise FaceaffectError(f"device {device!r} requested but CUDA is not available in this torch build")
