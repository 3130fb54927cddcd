"""The one multi-task model interface: a backbone that embeds a face and a linear head.

The head emits ``num_classes`` expression logits followed by valence and arousal when the config has them,
exactly the published HSEmotion output layout.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from faceaffect.hub.registry import ModelConfig


class HeadOutput(NamedTuple):
    logits: torch.Tensor
    valence_arousal: torch.Tensor | None


class MultiTaskModel(nn.Module):
    """Backbone (image -> embedding) plus a linear multi-task head (embedding -> logits [+ V, A]).

    >>> from faceaffect.models import create_model
    >>> model = create_model("mbf_va_mtl")
    >>> model(torch.zeros(1, 3, 112, 112)).shape
    torch.Size([1, 10])
    """

    def __init__(self, config: ModelConfig, backbone: nn.Module) -> None:
        super().__init__()
        if backbone.num_features != config.embedding_dim:
            raise ValueError(
                f"{config.name}: backbone gives {backbone.num_features}-d embeddings, "
                f"config says {config.embedding_dim}"
            )
        self.config = config
        self.backbone = backbone
        self.head = nn.Linear(config.embedding_dim, config.num_outputs)
        self.flip_average = config.flip_average

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Embedding of normalised images (B, 3, S, S) -> (B, embedding_dim).

        A model whose config sets ``flip_average`` embeds each face and its mirror image and returns
        the mean when in eval mode (test-time augmentation that its ONNX export carries too); as the head is
        linear, its logits are the mean of both views' logits.
        """
        if self.training or not self.flip_average:
            return self.backbone(images)
        both = self.backbone(torch.cat([images, images.flip(-1)]))
        return both.reshape(2, -1, both.shape[-1]).mean(0)

    def forward_head(self, embedding: torch.Tensor) -> HeadOutput:
        """Expression logits (B, C) and valence-arousal (B, 2) or None; VA is the raw linear output."""
        out = self.head(embedding)
        n = self.config.num_classes
        return HeadOutput(out[:, :n], out[:, n:] if self.config.has_va else None)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw outputs in the published layout (B, num_outputs)."""
        return self.head(self.forward_features(images))
