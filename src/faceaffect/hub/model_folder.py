"""Our own model format: a folder with ``config.json`` (the ModelConfig) and the weights as
``model.safetensors`` (torch), ``model.onnx`` (ONNX Runtime) or both.

>>> save_pretrained(model.state_dict(), model.config, "my_model")  # doctest: +SKIP
>>> config, state = load_pretrained_files("my_model")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from faceaffect.core.documents import read_document
from faceaffect.core.errors import CheckpointError, FaceaffectError
from faceaffect.core.io import atomic_path
from faceaffect.hub.registry import ModelConfig

if TYPE_CHECKING:
    import torch

WEIGHTS_NAME = "model.safetensors"
ONNX_NAME = "model.onnx"
CONFIG_NAME = "config.json"
FORMAT_VERSION = 1
_VERSION_KEY = "format_version"


def save_pretrained(model_state: dict[str, torch.Tensor], config: ModelConfig, directory: str | Path) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created), each atomically."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model_state.items()}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    write_config(config, directory)
    return directory


def write_config(config: ModelConfig, directory: str | Path) -> Path:
    """Write ``config.json`` into ``directory`` (created), atomically; needs no torch."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    document = {_VERSION_KEY: FORMAT_VERSION, **config.to_dict()}
    with atomic_path(directory / CONFIG_NAME) as tmp:
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return directory / CONFIG_NAME


def is_pretrained_dir(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a saved model (its ``config.json``)."""
    return (Path(path) / CONFIG_NAME).is_file()


def load_pretrained_files(directory: str | Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """The config and the (cpu) state dict of a folder written by ``save_pretrained``."""
    directory = Path(directory)
    config = read_config(directory)
    if not (directory / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{directory} holds no torch weights: {WEIGHTS_NAME} is missing")
    return config, read_safetensors(directory / WEIGHTS_NAME)


def read_config(directory: str | Path) -> ModelConfig:
    """The ModelConfig in a saved model folder's ``config.json`` (read defensively, see
    :mod:`faceaffect.core.documents`); needs no torch."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{directory} is not a saved model folder: {CONFIG_NAME} is missing")
    document = read_document(path, CheckpointError)
    version = document.pop(_VERSION_KEY, None)
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {version!r}, faceaffect reads {FORMAT_VERSION}")
    try:
        return ModelConfig.from_dict(document)
    except (FaceaffectError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise CheckpointError(f"{path} is not a valid model config: {error}") from None


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The (cpu) tensors of one ``.safetensors`` file; CheckpointError when missing or corrupt."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except FileNotFoundError:
        raise CheckpointError(f"weight file not found: {path}") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is corrupt: {error}") from None
