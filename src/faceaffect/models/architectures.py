"""Every torch architecture in one table: its backbone builder and the filter that maps outside checkpoints
(published HSEmotion pickles, upstream state dicts) onto MultiTaskModel keys.

Each architecture module registers itself (``register_architecture``); ``faceaffect.models`` imports them
all, so the table is full whenever this layer is in use.

>>> from faceaffect.models import create_model
>>> create_model("mbf_va_mtl").config.arch in ARCHITECTURES
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from faceaffect.core.errors import CheckpointError, FaceaffectError
from faceaffect.hub.registry import ModelConfig, get_config
from faceaffect.models.multitask import MultiTaskModel

StateDict = dict[str, torch.Tensor]
Builder = Callable[[ModelConfig], nn.Module]
CheckpointFilter = Callable[[StateDict], StateDict]


@dataclass(frozen=True)
class Architecture:
    """How to build an architecture's backbone (randomly initialised) and import outside weights into it."""

    name: str
    build: Builder
    checkpoint_filter: CheckpointFilter


ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(name: str, build: Builder, checkpoint_filter: CheckpointFilter) -> None:
    """Add an architecture; the name is what a ModelConfig's ``arch`` says."""
    ARCHITECTURES[name] = Architecture(name, build, checkpoint_filter)


def get_architecture(config: ModelConfig) -> Architecture:
    """The architecture of a config; one clear error for an unknown one."""
    try:
        return ARCHITECTURES[config.arch]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise FaceaffectError(
            f"unknown architecture {config.arch!r} in model {config.name!r}; known: {known}"
        ) from None


def create_backbone(config: ModelConfig) -> nn.Module:
    """The embedding network of a config's architecture, randomly initialised."""
    return get_architecture(config).build(config)


def create_model(name_or_config: str | ModelConfig) -> MultiTaskModel:
    """A randomly initialised multi-task model for a registered name or a config."""
    config = get_config(name_or_config) if isinstance(name_or_config, str) else name_or_config
    return MultiTaskModel(config, create_backbone(config)).eval()


def filter_checkpoint(state: StateDict, config: ModelConfig, origin: object) -> StateDict:
    """Outside weights mapped to MultiTaskModel keys by the architecture's filter; a CheckpointError naming
    ``origin`` when they do not fit."""
    try:
        return get_architecture(config).checkpoint_filter(state)
    except (KeyError, ValueError, CheckpointError) as error:
        raise CheckpointError(
            f"{origin} cannot be mapped to {config.name} ({config.arch}): {error}"
        ) from None
