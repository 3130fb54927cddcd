"""Inference engines behind one interface: a normalised batch in, logits / valence-arousal / embedding out."""

from faceaffect.runtime.base import Engine, EngineOutput, resolve_device

__all__ = ["Engine", "EngineOutput", "resolve_device"]
