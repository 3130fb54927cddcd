"""Training checkpoints (``last.pt``: plain dicts of tensors that load with ``weights_only=True``) and the
initial weights of a run. The best model is saved with ``faceaffect.weights.save_pretrained``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from faceaffect.errors import FaceaffectError
from faceaffect.weights import load_pretrained_files, read_state_dict

CHECKPOINT_FORMAT = "faceaffect-train-checkpoint/1"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plain dicts, lists, numbers, strings and tensors) atomically to ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (safely: ``weights_only=True``)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or foreign files
        raise FaceaffectError(f"cannot read training checkpoint {path}: {error}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise FaceaffectError(f"{path} is not a faceaffect training checkpoint")
    return state


def load_init_weights(model: nn.Module, path: str | Path) -> tuple[int, int]:
    """Copy matching tensors from a saved model folder, a ``.safetensors`` file, a ``last.pt`` checkpoint or
    a plain pickled state dict into ``model``; a backbone-only state dict (no ``backbone.``/``head.`` keys)
    goes to the backbone. Tensors whose name or shape does not match are skipped. Returns (loaded, skipped).
    """
    path = Path(path)
    if path.is_dir():
        state = load_pretrained_files(path)[1]
    elif path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        state = read_state_dict(path)
    if not any(key.startswith(("backbone.", "head.")) for key in state):
        state = {f"backbone.{key}": value for key, value in state.items()}
    own = model.state_dict()
    matching = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    model.load_state_dict(matching, strict=False)
    return len(matching), len(state) - len(matching)
