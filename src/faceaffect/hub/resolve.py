"""One way from what a user names to a model: a registered name, a saved model folder or a ModelConfig
becomes a :class:`ResolvedModel` (its config and where each kind of weights lives). Anything else is one
:class:`UnknownModelError`, whoever asks (engines, torch loading, training configs).

>>> resolved = resolve_model("mbf_ferplus_8")
>>> resolved.config.input_size, resolved.has_onnx, resolved.has_torch
(64, True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceaffect.core.errors import UnknownModelError
from faceaffect.hub.cache import fetch
from faceaffect.hub.model_folder import ONNX_NAME, WEIGHTS_NAME, is_pretrained_dir, read_config
from faceaffect.hub.registry import REGISTRY, ModelConfig, WeightSource

ModelSpec = str | Path | ModelConfig


@dataclass(frozen=True)
class ResolvedModel:
    """A model's config and its weights: the files of a saved ``folder``, else the config's published
    sources (fetched into the cache on first use)."""

    config: ModelConfig
    folder: Path | None = None

    @property
    def onnx_source(self) -> Path | WeightSource | None:
        if self.folder is not None:
            return self.folder / ONNX_NAME if (self.folder / ONNX_NAME).is_file() else None
        return self.config.onnx

    @property
    def torch_source(self) -> Path | WeightSource | None:
        if self.folder is not None:
            return self.folder / WEIGHTS_NAME if (self.folder / WEIGHTS_NAME).is_file() else None
        return self.config.weights

    @property
    def has_onnx(self) -> bool:
        return self.onnx_source is not None

    @property
    def has_torch(self) -> bool:
        return self.torch_source is not None

    @property
    def origin(self) -> str:
        """How to name this model in a message: its folder, or its registered name."""
        return str(self.folder) if self.folder is not None else self.config.name

    def onnx_file(self, **fetching: Any) -> Path | None:
        """A local, verified ONNX file (downloaded once for published models; ``fetching``: the options of
        ``faceaffect.hub.fetch``), or None when there is none."""
        return _local(self.onnx_source, fetching)

    def torch_file(self, **fetching: Any) -> Path | None:
        """A local, verified torch weight file (see ``torch_format``), or None when there is none."""
        return _local(self.torch_source, fetching)

    @property
    def torch_format(self) -> str:
        """How to read :meth:`torch_file`: ``safetensors`` for saved folders, else the source's format."""
        source = self.torch_source
        return source.format if isinstance(source, WeightSource) else "safetensors"


def resolve_model(model: ModelSpec) -> ResolvedModel:
    """What ``model`` names: a ModelConfig as it is, a folder with ``config.json`` (checked first), or a
    registered name; an UnknownModelError for anything else."""
    if isinstance(model, ModelConfig):
        return ResolvedModel(model)
    if is_pretrained_dir(model):
        return ResolvedModel(read_config(model), Path(model))
    if str(model) in REGISTRY:
        return ResolvedModel(REGISTRY[str(model)])
    if Path(model).is_file():
        raise UnknownModelError(
            f"{model} is a file, not a saved model folder nor a registered model name; for a weight file: "
            f"load_model('<model name>', weights_path={str(model)!r})"
        )
    if Path(model).exists():
        raise UnknownModelError(
            f"{model} is neither a saved model folder (no config.json) nor a registered model name"
        )
    raise UnknownModelError(f"unknown model {str(model)!r}; run `faceaffect models` to list them")


def _local(source: Path | WeightSource | None, fetching: dict[str, Any]) -> Path | None:
    return fetch(source, **fetching) if isinstance(source, WeightSource) else source
