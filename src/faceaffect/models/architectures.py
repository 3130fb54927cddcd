"""Every torch architecture in one table: its backbone builder and the filter that maps outside checkpoints
(published HSEmotion pickles, upstream state dicts) onto MultiTaskModel keys.

Each architecture module registers itself (``register_architecture``); ``faceaffect.models`` imports them
all, so the table is full whenever this layer is in use.

>>> from faceaffect.models import create_model
>>> create_model("mbf_va_mtl").config.arch in ARCHITECTURES
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from faceaffect.core.errors import CheckpointError, FaceaffectError
from faceaffect.hub.registry import ModelConfig, get_config
from faceaffect.hub.safe_pickle import unwrap_checkpoint
from faceaffect.models.multitask import MultiTaskModel

StateDict = dict[str, torch.Tensor]
_EXAMPLES = 5
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


def plain_state_dict(checkpoint: dict[str, Any]) -> StateDict:
    """The state dict of a checkpoint: out of its wrapper (``{'model_state_dict': ...}``, ...), without
    DataParallel's ``module.`` prefix. For the architectures' filters, which take either."""
    state = unwrap_checkpoint(checkpoint)
    if state and all(key.startswith("module.") for key in state):
        return {key.removeprefix("module."): value for key, value in state.items()}
    return state


def check_keys(got: Iterable[str], expected: set[str], what: str) -> None:
    """ValueError naming the first missing and unexpected keys when ``got`` is not exactly ``expected``."""
    missing, unexpected = sorted(expected - set(got)), sorted(set(got) - expected)
    if missing or unexpected:
        more = " (and more)" if max(len(missing), len(unexpected)) > _EXAMPLES else ""
        raise ValueError(
            f"not {what}: missing keys {missing[:_EXAMPLES]}, unexpected keys {unexpected[:_EXAMPLES]}{more}"
        )


def filter_checkpoint(state: StateDict, config: ModelConfig, origin: object) -> StateDict:
    """Outside weights mapped to MultiTaskModel keys by the architecture's filter; a CheckpointError naming
    ``origin`` when they do not fit."""
    try:
        return get_architecture(config).checkpoint_filter(state)
    except (KeyError, ValueError, CheckpointError) as error:
        raise CheckpointError(
            f"{origin} cannot be mapped to {config.name} ({config.arch}): {error}"
        ) from None
