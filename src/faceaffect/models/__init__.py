"""Torch architectures behind the registry: ``create_model(name)`` builds any registered model.

Importing this package registers every architecture (``faceaffect.models.architectures``).
"""

from __future__ import annotations

from faceaffect.models import ddamfn, mobilefacenet, timm_backbones  # noqa: F401  (they register themselves)
from faceaffect.models.architectures import (
    ARCHITECTURES,
    create_backbone,
    create_model,
    register_architecture,
)
from faceaffect.models.loading import load_model, save_model
from faceaffect.models.multitask import HeadOutput, MultiTaskModel

__all__ = [
    "ARCHITECTURES",
    "HeadOutput",
    "MultiTaskModel",
    "create_backbone",
    "create_model",
    "load_model",
    "register_architecture",
    "save_model",
]
