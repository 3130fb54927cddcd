"""Inference engines behind one interface: a normalised batch in, logits / valence-arousal / embedding out.

Two engines: torch (``TorchEngine``, needs the torch extra) and ONNX Runtime (``OnnxEngine``, base install).
``create_engine`` picks one for a model name, a saved folder or a torch model.
"""

from faceaffect.runtime.base import ENGINES, Engine, EngineKind, EngineOutput, resolve_device
from faceaffect.runtime.factory import choose_engine, create_engine

__all__ = [
    "ENGINES",
    "Engine",
    "EngineKind",
    "EngineOutput",
    "choose_engine",
    "create_engine",
    "resolve_device",
]
