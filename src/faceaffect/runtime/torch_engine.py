"""The torch engine: a MultiTaskModel on cpu or cuda, no autograd."""

from __future__ import annotations

import numpy as np
import torch

from faceaffect.models.multitask import MultiTaskModel
from faceaffect.runtime.base import EngineOutput, resolve_device


class TorchEngine:
    """Runs a MultiTaskModel in eval mode on the chosen device."""

    def __init__(self, model: MultiTaskModel, device: str = "cpu") -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.config = model.config

    @torch.inference_mode()
    def run(self, batch: np.ndarray, *, with_embedding: bool = False) -> EngineOutput:
        embedding = self.model.forward_features(torch.from_numpy(batch).to(self.device))
        logits, va = self.model.forward_head(embedding)
        return EngineOutput(
            logits=logits.float().cpu().numpy(),
            valence_arousal=None if va is None else va.float().cpu().numpy(),
            embedding=embedding.float().cpu().numpy() if with_embedding else None,
        )
