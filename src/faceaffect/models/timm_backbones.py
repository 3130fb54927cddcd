"""EfficientNet and MobileViT backbones through timm, without their classifier."""

from __future__ import annotations

from torch import nn

from faceaffect.models._torchvision_compat import ensure_torchvision_importable

TIMM_ARCHS = ("tf_efficientnet_b0", "tf_efficientnet_b2", "mobilevitv2_150")


def create_timm_backbone(arch: str) -> nn.Module:
    """A randomly initialised timm model that returns pooled embeddings (its ``num_features`` wide)."""
    ensure_torchvision_importable()
    import timm

    return timm.create_model(arch, pretrained=False, num_classes=0)
