"""Re-estimate BatchNorm statistics from images, e.g. to give a random-weight model realistic activations.

A freshly initialised CNN in eval mode shrinks its activations layer by layer (embeddings near 1e-6, every
face gets the same probabilities, and denormal floats slow the CPU down). Running statistics measured on real
images make every BatchNorm output unit-scale again, which is what parity tests and benchmarks need.

>>> model = recalibrate_batchnorm(create_model("mbf_va_mtl"), batch)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from faceaffect.models.multitask import MultiTaskModel


@torch.no_grad()
def recalibrate_batchnorm(
    model: MultiTaskModel, batch: np.ndarray, *, head_scale: float = 4.0
) -> MultiTaskModel:
    """Set every BatchNorm's running mean/var to those of ``batch`` (normalised float32 (N, 3, S, S), N >= 2)
    and rescale the head so the logits spread over about ``head_scale`` (pass 0 to keep the head). In place.
    """
    if len(batch) < 2:
        raise ValueError("recalibration needs a batch of at least 2 images")
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration pass
    was_training = model.training
    images = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    device = next(model.parameters()).device
    model.train()
    embedding = model.forward_features(images.to(device))
    model.train(was_training)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    if head_scale:
        spread = model.head(embedding).std(dim=0).mean().clamp_min(1e-12)
        model.head.weight.mul_(head_scale / spread)
        model.head.bias.zero_()
    return model
