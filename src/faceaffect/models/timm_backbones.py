"""EfficientNet and MobileViT backbones through timm, without their classifier."""

from __future__ import annotations

import torch
from torch import nn

from faceaffect.core.errors import CheckpointError
from faceaffect.hub.registry import ModelConfig
from faceaffect.models._torchvision_compat import ensure_torchvision_importable
from faceaffect.models.architectures import register_architecture

TIMM_ARCHS = ("tf_efficientnet_b0", "tf_efficientnet_b2", "mobilevitv2_150")


def create_timm_backbone(config: ModelConfig) -> nn.Module:
    """A randomly initialised timm model that returns pooled embeddings (its ``num_features`` wide)."""
    ensure_torchvision_importable()
    import timm

    return timm.create_model(config.arch, pretrained=False, num_classes=0)


_CLASSIFIER_PREFIXES = ("classifier", "head.fc", "head")


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the state dict of a published HSEmotion timm module to MultiTaskModel keys.

    Its replaced classifier (``classifier`` in EfficientNet, ``head.fc`` in MobileViT; an ``nn.Linear`` or a
    ``nn.Sequential`` holding one) becomes ``head.weight`` / ``head.bias``; every other key goes under
    ``backbone.``.

    >>> published = {"conv_stem.weight": torch.zeros(1), "classifier.0.weight": torch.zeros(2, 1),
    ...              "classifier.0.bias": torch.zeros(2)}
    >>> sorted(checkpoint_filter_fn(published))
    ['backbone.conv_stem.weight', 'head.bias', 'head.weight']
    """
    prefix = next((p for p in _CLASSIFIER_PREFIXES if any(k.startswith(p + ".") for k in state_dict)), None)
    if prefix is None:
        raise CheckpointError("no classifier in the checkpoint (expected classifier.* or head.fc.* keys)")
    head = {
        key[len(prefix) + 1 :]: value for key, value in state_dict.items() if key.startswith(prefix + ".")
    }
    layers = {key.rpartition(".")[0] for key in head}
    names = {key.rpartition(".")[2] for key in head}
    weight = head.get(f"{min(layers)}.weight".lstrip("."))
    if len(layers) != 1 or not names <= {"weight", "bias"} or weight is None or weight.ndim != 2:
        raise CheckpointError(f"the classifier {prefix} is not a single linear layer: {sorted(head)}")
    out = {f"backbone.{key}": value for key, value in state_dict.items() if not key.startswith(prefix + ".")}
    out.update({f"head.{key.rpartition('.')[2]}": value for key, value in head.items()})
    return out


for _arch in TIMM_ARCHS:
    register_architecture(_arch, create_timm_backbone, checkpoint_filter_fn)
