"""Every registered architecture builds and gives the right shapes and embedding sizes."""

from __future__ import annotations

import pytest
import torch

from faceaffect.hub.registry import REGISTRY
from faceaffect.models import create_model


@pytest.mark.parametrize("name", list(REGISTRY))
def test_forward_shapes(name: str) -> None:
    model = create_model(name)
    config = model.config
    images = torch.randn(2, 3, config.input_size, config.input_size)
    with torch.inference_mode():
        embedding = model.forward_features(images)
        logits, va = model.forward_head(embedding)
        raw = model(images)
    assert embedding.shape == (2, config.embedding_dim)
    assert logits.shape == (2, config.num_classes)
    assert raw.shape == (2, config.num_outputs)
    torch.testing.assert_close(raw[:, : config.num_classes], logits)
    if config.has_va:
        assert va is not None and va.shape == (2, 2)
        torch.testing.assert_close(raw[:, config.num_classes :], va)
    else:
        assert va is None


def test_backbone_mismatch_is_refused() -> None:
    config = REGISTRY["enet_b0_8_va_mtl"].replace(embedding_dim=256)
    with pytest.raises(ValueError, match="1280-d embeddings"):
        create_model(config)
