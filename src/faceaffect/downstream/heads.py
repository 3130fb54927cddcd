"""Small torch heads on frozen features, saved as a folder (``config.json`` + ``model.safetensors``).

METHOD.md's heads (the inputs and activations; the width, linear or one hidden layer, and the dropout are
chosen on validation data by :mod:`~faceaffect.downstream.search` unless pinned):

- va: logits -> one linear layer -> tanh (valence, arousal);
- expr: embedding -> Dense(128, relu) -> Dense(8) (softmax over the ABAW classes);
- au: embedding -> Dense(128, relu) -> Dense(12, sigmoid);
- emi: video descriptor (mean, std, min, max over frames of the logits) -> Dense(6, sigmoid).

Every head first standardises its input with the training set's mean and standard deviation (stored as
buffers, so an ONNX export includes them). "logits" means the extractor's whole output layer: the expression
logits and, for multi-task models, valence and arousal. The linear baselines are heads too (no hidden layer;
``identity`` activation for the ridge regressions).

>>> head = Head(HeadConfig.for_task("expr", in_dim=1280))
>>> head(torch.zeros(4, 1280)).shape
torch.Size([4, 8])
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceaffect.core.errors import InputError
from faceaffect.core.io import atomic_path
from faceaffect.downstream.folders import CONFIG_NAME, WEIGHTS_NAME, read_config, write_config
from faceaffect.downstream.scores import TASK_LABELS

HEAD_TASKS = ("va", "expr", "au", "emi")
INPUT_KINDS = ("logits", "embedding", "audio")
ACTIVATIONS = ("tanh", "softmax", "sigmoid", "identity")
_DEFAULTS: dict[str, dict[str, Any]] = {
    "va": {"inputs": "logits", "hidden": 0, "activation": "tanh", "pooled": False},
    "expr": {"inputs": "embedding", "hidden": 128, "activation": "softmax", "pooled": False},
    "au": {"inputs": "embedding", "hidden": 128, "activation": "sigmoid", "pooled": False},
    "emi": {"inputs": "logits", "hidden": 0, "activation": "sigmoid", "pooled": True},
}


@dataclass(frozen=True)
class HeadConfig:
    """Everything needed to rebuild and use a head.

    ``in_dim`` is the input width (for pooled heads 4 x the per-frame width); ``hidden`` the hidden width (0:
    one linear layer); ``dropout`` the drop probability of the inputs of each layer while training;
    ``extractor`` is the feature store's record of the model whose features the head reads; ``window``
    (smoothing half-width) and ``thresholds`` (AU decisions) are chosen on validation data; ``training``
    records how the head was fitted and chosen; ``metrics`` keeps the validation figures.
    """

    task: str
    inputs: str
    in_dim: int
    hidden: int
    activation: str
    pooled: bool
    outputs: tuple[str, ...]
    extractor: dict[str, Any] = field(default_factory=dict)
    window: int = 0
    thresholds: tuple[float, ...] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    dropout: float = 0.0
    training: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_task(cls, task: str, in_dim: int, **overrides: Any) -> HeadConfig:
        """The METHOD.md head of ``task`` for inputs of width ``in_dim`` (``overrides`` replace defaults)."""
        if task not in _DEFAULTS:
            raise InputError(f"no trainable head for task {task!r}; choose one of {', '.join(HEAD_TASKS)}")
        settings = {**_DEFAULTS[task], **{k: v for k, v in overrides.items() if v is not None}}
        if settings["inputs"] not in INPUT_KINDS:
            raise InputError(
                f"unknown head input {settings['inputs']!r}; choose one of {', '.join(INPUT_KINDS)}"
            )
        if settings["activation"] not in ACTIVATIONS:
            raise InputError(f"unknown activation {settings['activation']!r}")
        return cls(task=task, in_dim=in_dim, outputs=TASK_LABELS[task], **settings)

    def replace(self, **changes: Any) -> HeadConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "head", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeadConfig:
        data = {k: v for k, v in data.items() if k not in ("format_version", "kind")}
        data["outputs"] = tuple(data["outputs"])
        if data.get("thresholds") is not None:
            data["thresholds"] = tuple(data["thresholds"])
        return cls(**data)


class Head(nn.Module):
    """Standardise -> [Dropout -> Linear -> ReLU] -> Dropout -> Linear -> activation.

    :meth:`raw` stops before the activation. Dropout acts only in training mode (an ONNX export has none).
    """

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.zeros(config.in_dim))
        self.register_buffer("std", torch.ones(config.in_dim))
        width = len(config.outputs)
        if config.hidden > 0:
            self.net = nn.Sequential(
                nn.Linear(config.in_dim, config.hidden), nn.ReLU(), nn.Linear(config.hidden, width)
            )
        else:
            self.net = nn.Sequential(nn.Linear(config.in_dim, width))

    def set_standardisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Use these input statistics (a floor keeps constant features from dividing by zero)."""
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-6))

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activation outputs (logits for softmax/sigmoid heads)."""
        x = (x - self.mean) / self.std
        for layer in self.net:
            if isinstance(layer, nn.Linear) and self.config.dropout > 0:
                x = F.dropout(x, self.config.dropout, self.training)
            x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Final outputs: values in [-1, 1] (tanh), class probabilities (softmax) or sigmoid probabilities."""
        out = self.raw(x)
        if self.config.activation == "tanh":
            return torch.tanh(out)
        if self.config.activation == "softmax":
            return torch.softmax(out, dim=1)
        if self.config.activation == "sigmoid":
            return torch.sigmoid(out)
        return out


def predict_array(head: Head, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Head outputs for a (N, in_dim) array, in batches, without autograd."""
    head.eval()
    with torch.inference_mode():
        parts = [
            head(torch.as_tensor(x[i : i + batch_size], dtype=torch.float32)).numpy()
            for i in range(0, len(x), batch_size)
        ]
    return np.concatenate(parts) if parts else np.zeros((0, len(head.config.outputs)), np.float32)


def save_head(head: Head, directory: str | Path) -> Path:
    """Write ``model.safetensors`` then ``config.json`` into ``directory``, each atomically."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: value.detach().cpu().contiguous() for name, value in head.state_dict().items()}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    write_config(directory, head.config.to_dict())
    return directory


def load_head(directory: str | Path) -> Head:
    """A head saved by :func:`save_head`, in eval mode, with its config."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    data = read_config(directory)
    if data.get("kind") != "head":
        raise InputError(f"{directory} holds a {data.get('kind')!r}, not a trained head")
    try:
        config = HeadConfig.from_dict(data)
    except (KeyError, TypeError) as error:
        raise InputError(f"{Path(directory) / CONFIG_NAME}: not a head config ({error})") from None
    head = Head(config)
    try:
        head.load_state_dict(load_file(str(Path(directory) / WEIGHTS_NAME)))
    except (OSError, SafetensorError, RuntimeError) as error:
        raise InputError(f"{Path(directory) / WEIGHTS_NAME} does not fit its config: {error}") from None
    return head.eval()


def export_onnx(head: Head, path: str | Path, opset: int = 17) -> Path:
    """The head as ONNX: input ``features`` (batch, in_dim) -> ``output`` (batch, outputs), dynamic batch."""
    path = Path(path)
    dummy = torch.zeros(2, head.config.in_dim)
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter, chosen on purpose
        torch.onnx.export(
            head.eval(),
            (dummy,),
            str(tmp),
            input_names=["features"],
            output_names=["output"],
            dynamic_axes={"features": {0: "batch"}, "output": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    return path
