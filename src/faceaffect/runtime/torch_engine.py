"""The torch engine: a MultiTaskModel on cpu or cuda, no autograd."""

from __future__ import annotations

import numpy as np
import torch

from faceaffect.models.multitask import MultiTaskModel
from faceaffect.runtime.base import EngineOutput, resolve_device


class TorchEngine:
    """Runs a MultiTaskModel in eval mode on the chosen device (one batch at a time; torch parallelises
    inside each operation). On CPU the model and its inputs use the channels-last memory layout, which
    oneDNN runs 1.2-1.5x faster (EfficientNet-B0, MobileFaceNet); the model is converted in place."""

    concurrency = 1
    preferred_batch = None

    def __init__(self, model: MultiTaskModel, device: str = "cpu") -> None:
        self.device = resolve_device(device)
        self.layout = torch.channels_last if self.device == "cpu" else torch.contiguous_format
        self.model = model.to(self.device, memory_format=self.layout).eval()
        self.config = model.config

    @torch.inference_mode()
    def run(self, batch: np.ndarray, *, with_embedding: bool = False) -> EngineOutput:
        images = torch.from_numpy(batch).to(self.device).contiguous(memory_format=self.layout)
        embedding = self.model.forward_features(images)
        logits, va = self.model.forward_head(embedding)
        return EngineOutput(
            logits=logits.float().cpu().numpy(),
            valence_arousal=None if va is None else va.float().cpu().numpy(),
            embedding=embedding.float().cpu().numpy() if with_embedding else None,
        )
