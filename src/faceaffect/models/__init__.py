"""Torch architectures behind the registry: ``create_model(name)`` builds any registered model."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from faceaffect.models.multitask import HeadOutput, MultiTaskModel
from faceaffect.registry import ModelConfig, get_config

__all__ = ["HeadOutput", "MultiTaskModel", "create_backbone", "create_model", "load_model", "save_model"]


def _mobilefacenet(config: ModelConfig) -> nn.Module:
    from faceaffect.models.mobilefacenet import MobileFaceNet

    return MobileFaceNet(embedding_dim=config.embedding_dim, input_size=config.input_size)


def _ddamfn(config: ModelConfig) -> nn.Module:
    from faceaffect.models.ddamfn import DDAMFNBackbone

    return DDAMFNBackbone(embedding_dim=config.embedding_dim)


_BUILDERS: dict[str, Callable[[ModelConfig], nn.Module]] = {
    "mobilefacenet": _mobilefacenet,
    "ddamfn": _ddamfn,
}


def create_backbone(config: ModelConfig) -> nn.Module:
    """The embedding network of a config's architecture, randomly initialised."""
    from faceaffect.models.timm_backbones import TIMM_ARCHS, create_timm_backbone

    if config.arch in TIMM_ARCHS:
        return create_timm_backbone(config.arch)
    try:
        return _BUILDERS[config.arch](config)
    except KeyError:
        raise ValueError(f"unknown architecture {config.arch!r} in model {config.name!r}") from None


def create_model(name_or_config: str | ModelConfig) -> MultiTaskModel:
    """A randomly initialised multi-task model for a registered name or a config."""
    config = get_config(name_or_config) if isinstance(name_or_config, str) else name_or_config
    return MultiTaskModel(config, create_backbone(config)).eval()


from faceaffect.models.loading import load_model, save_model  # noqa: E402  (loading uses create_model)
