"""Training checkpoints (``last.pt``: plain dicts of tensors that load with ``weights_only=True``) and the
initial weights of a run. The best model is saved with ``faceaffect.hub.save_pretrained``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.io import atomic_path
from faceaffect.hub import load_pretrained_files, read_safetensors, read_state_dict
from faceaffect.hub.safe_pickle import load_weights_only

CHECKPOINT_FORMAT = "faceaffect-train-checkpoint/1"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plain dicts, lists, numbers, strings and tensors) atomically to ``path``."""
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
    return Path(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (safely: ``weights_only=True``; a file that asks
    for anything else is refused in one line)."""
    state = load_weights_only(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise FaceaffectError(f"{path} is not a faceaffect training checkpoint")
    return state


def load_init_weights(model: nn.Module, path: str | Path) -> tuple[int, int]:
    """Copy matching tensors from a saved model folder, a ``.safetensors`` file, a ``last.pt`` checkpoint or
    a plain pickled state dict into ``model``; a backbone-only state dict (no ``backbone.``/``head.`` keys)
    goes to the backbone. A convolution kernel of another spatial size (MobileFaceNet's global depthwise
    conv, whose kernel covers the final feature map, when the input size changes) is resized to the model's
    (bilinear, scaled by the area ratio: the same weighted pooling over the larger map). Other tensors whose
    name or shape does not match are skipped. Returns (loaded, skipped).
    """
    path = Path(path)
    if path.is_dir():
        state = load_pretrained_files(path)[1]
    elif path.suffix == ".safetensors":
        state = read_safetensors(path)
    else:
        state = read_state_dict(path)
    if not any(key.startswith(("backbone.", "head.")) for key in state):
        state = {f"backbone.{key}": value for key, value in state.items()}
    own = model.state_dict()
    matching = {}
    for key, value in state.items():
        target = own.get(key)
        if target is None:
            continue
        if value.shape != target.shape and _other_kernel_size(value, target):
            value = _resized_kernel(value, target.shape[-2:])
        if value.shape == target.shape:
            matching[key] = value
    model.load_state_dict(matching, strict=False)
    return len(matching), len(state) - len(matching)


def _other_kernel_size(value: torch.Tensor, target: torch.Tensor) -> bool:
    return value.dim() == target.dim() == 4 and value.shape[:2] == target.shape[:2]


def _resized_kernel(kernel: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Bilinear resize of (out, in, h, w) kernels, scaled by the area ratio so that the response to a smooth
    input keeps its magnitude."""
    resized = nn.functional.interpolate(kernel.float(), size=tuple(size), mode="bilinear", align_corners=True)
    area_ratio = kernel.shape[-2] * kernel.shape[-1] / (size[0] * size[1])
    return (resized * area_ratio).to(kernel.dtype)
