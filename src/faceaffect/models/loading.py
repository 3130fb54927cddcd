"""Load a ready-to-use MultiTaskModel: a registered name, a saved folder, or a local weight file.

>>> model = load_model("enet_b0_8_va_mtl")  # doctest: +SKIP  (downloads once, then uses the cache)
>>> model = load_model("enet_b0_8_va_mtl", weights_path="enet_b0_8_va_mtl.pt")  # doctest: +SKIP
>>> save_model(model, "my_model"); model = load_model("my_model")  # doctest: +SKIP

Published files are converted, never unpickled as code: the tensors are read by the restricted unpickler and
mapped to our keys by the architecture's ``checkpoint_filter_fn``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from faceaffect.core.errors import CheckpointError, InputError
from faceaffect.core.progress import Progress
from faceaffect.hub.model_folder import WEIGHTS_NAME, read_safetensors, save_pretrained
from faceaffect.hub.registry import ModelConfig
from faceaffect.hub.resolve import ResolvedModel, resolve_model
from faceaffect.hub.safe_pickle import read_module_state_dict, read_state_dict
from faceaffect.models.architectures import create_model, filter_checkpoint, plain_state_dict
from faceaffect.models.multitask import MultiTaskModel

StateDict = dict[str, torch.Tensor]

_READERS: dict[str, Callable[[Path], StateDict]] = {
    "hsemotion_pickle": read_module_state_dict,
    "state_dict": read_state_dict,
    "safetensors": read_safetensors,
}
_OUR_PREFIXES = ("backbone.", "head.")
_EXAMPLES = 3


def load_model(
    model: str | Path | ModelConfig | ResolvedModel,
    *,
    weights_path: str | Path | None = None,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
    offline: bool | None = None,
    progress: Progress | None = None,
) -> MultiTaskModel:
    """A model in eval mode on ``device``.

    ``model`` is a folder written by ``save_model`` (checked first), a registered model name (its published
    weights are fetched into the cache; see ``faceaffect.hub.fetch`` for ``cache_dir``, ``offline`` and
    ``progress``), a
    ModelConfig, or what ``faceaffect.hub.resolve_model`` made of one of those. ``weights_path`` replaces the
    published file with a local one for that architecture: a published pickle, a plain state dict (``.pt``,
    ``.pth``) or ``.safetensors``.
    """
    resolved = model if isinstance(model, ResolvedModel) else resolve_model(model)
    config = resolved.config
    if weights_path is not None:
        if resolved.folder is not None:
            raise InputError(f"{resolved.folder} is a saved model folder; it takes no weights_path")
        path, fmt = Path(weights_path), _local_format(Path(weights_path), config)
    else:
        path, fmt = _published_file(resolved, cache_dir=cache_dir, offline=offline, progress=progress)
    state = convert_state_dict(_READERS[fmt](path), config, origin=path)
    return _build(config, state, device, path)


def save_model(model: MultiTaskModel, directory: str | Path) -> Path:
    """Write ``model`` as ``config.json`` + ``model.safetensors`` into ``directory``, for ``load_model``."""
    return save_pretrained(model.state_dict(), model.config, directory)


def convert_state_dict(
    state: StateDict, config: ModelConfig, *, origin: str | Path = "checkpoint"
) -> StateDict:
    """Map a published state dict to MultiTaskModel keys with the architecture's ``checkpoint_filter_fn``.

    A ``module.`` prefix (DataParallel) is dropped; a state dict already in our keys is returned as is.
    """
    state = plain_state_dict(state)
    if state and all(key.startswith(_OUR_PREFIXES) for key in state):
        return state
    return filter_checkpoint(state, config, origin)


def _published_file(resolved: ResolvedModel, **fetching: Any) -> tuple[Path, str]:
    """The torch weight file of a resolved model (fetched when published) and its format."""
    config = resolved.config
    if not resolved.has_torch:
        if resolved.folder is not None:
            raise CheckpointError(f"{resolved.folder} holds no torch weights: {WEIGHTS_NAME} is missing")
        raise CheckpointError(
            f"{config.name} has no published weights; pass a state-dict file: "
            f"load_model({config.name!r}, weights_path='<file>.pth')"
        )
    if resolved.torch_format not in _READERS:
        raise CheckpointError(
            f"{config.name}: {resolved.torch_format} weights cannot be loaded into a torch model"
        )
    path = resolved.torch_file(**fetching)
    assert path is not None
    return path, resolved.torch_format


def _local_format(path: Path, config: ModelConfig) -> str:
    if path.suffix == ".safetensors":
        return "safetensors"
    if config.weights is not None and config.weights.format == "hsemotion_pickle":
        return "hsemotion_pickle"  # also reads plain state dicts
    return "state_dict"


def _build(config: ModelConfig, state: StateDict, device: str | torch.device, origin: Path) -> MultiTaskModel:
    model = create_model(config)
    _check_fit(model.state_dict(), state, f"{origin} does not fit {config.name} ({config.arch})")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def _check_fit(expected: StateDict, got: StateDict, what: str) -> None:
    missing = [key for key in expected if key not in got]
    unexpected = [key for key in got if key not in expected]
    reshaped = [
        f"{key} {tuple(got[key].shape)} in the file, {tuple(value.shape)} in the model"
        for key, value in expected.items()
        if key in got and got[key].shape != value.shape
    ]
    problems = [
        f"{len(keys)} {label} (e.g. {', '.join(keys[:_EXAMPLES])})"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shapes differ", reshaped),
        )
        if keys
    ]
    if problems:
        raise CheckpointError(f"{what}: {'; '.join(problems)}")
