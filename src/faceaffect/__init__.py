"""faceaffect: facial affect analysis (8 expressions, valence, arousal) with the HSEmotion models.

>>> import faceaffect
>>> "enet_b0_8_va_mtl" in faceaffect.list_models()
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faceaffect import _moved
from faceaffect.core.errors import FaceaffectError, InputError
from faceaffect.core.labels import AFFECTNET_7, AFFECTNET_8
from faceaffect.core.types import FaceBox, FacePrediction, FrameResult
from faceaffect.hub.registry import ModelConfig, get_config, list_models

if TYPE_CHECKING:
    from faceaffect.analysis import Analyzer, analyze, stream
    from faceaffect.models.loading import load_model, save_model
    from faceaffect.recognizer import Recognizer
    from faceaffect.results import AnalysisResult

_moved.install()
__version__ = "0.1.0"
__all__ = [
    "AFFECTNET_7",
    "AFFECTNET_8",
    "AnalysisResult",
    "Analyzer",
    "FaceBox",
    "FacePrediction",
    "FaceaffectError",
    "FrameResult",
    "InputError",
    "ModelConfig",
    "Recognizer",
    "analyze",
    "get_config",
    "list_models",
    "load_model",
    "save_model",
    "stream",
]

_LAZY = {
    "AnalysisResult": "faceaffect.results",
    "Analyzer": "faceaffect.analysis",
    "analyze": "faceaffect.analysis",
    "stream": "faceaffect.analysis",
    "Recognizer": "faceaffect.recognizer",
    "load_model": "faceaffect.models.loading",
    "save_model": "faceaffect.models.loading",
}


def __getattr__(name: str) -> Any:
    """Import the heavier parts (torch) only when first used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'faceaffect' has no attribute {name!r}")
