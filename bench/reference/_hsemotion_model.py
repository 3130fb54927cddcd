"""hsemotion's recognizer on given weights: build timm's tf_efficientnet_b0 with an 8-way classifier, load
the weights (``.npz``, timm keys), pickle the whole module where hsemotion looks for it
(``~/.hsemotion/<model>.pt``; the caller points HOME at a temporary folder) and let hsemotion load it. Its
``torch.load`` of a whole module needs ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` under torch >= 2.6 (set by the
caller).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import _torchvision_shim
import numpy as np
import torch


def hsemotion_recognizer(weights: Path, model: str, threads: int | None) -> Any:
    """An ``hsemotion.facial_emotions.HSEmotionRecognizer`` on CPU running ``weights``."""
    if threads:
        torch.set_num_threads(threads)
    _torchvision_shim.install()
    torch.set_flush_denormal(True)
    import timm
    from hsemotion.facial_emotions import HSEmotionRecognizer

    network = timm.create_model("tf_efficientnet_b0", pretrained=False, num_classes=8)
    with np.load(weights) as arrays:
        network.load_state_dict({key: torch.from_numpy(arrays[key]) for key in arrays.files}, strict=True)
    target = Path(os.path.expanduser("~")) / ".hsemotion" / f"{model}.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network, target)
    with contextlib.redirect_stdout(sys.stderr):  # the package prints the model path and transforms
        return HSEmotionRecognizer(model_name=model, device="cpu")
