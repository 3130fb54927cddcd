"""Training configuration: model, data, stages and options; read from YAML or JSON.

>>> config = TrainConfig.from_dict({"data": {"kind": "ferplus", "train": "FER2013Train.tar.gz"}})
>>> [(s.epochs, s.lr, s.freeze_backbone) for s in config.stages]
[(3, 0.001, True), (6, 0.0001, False)]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from faceaffect.core.documents import read_document
from faceaffect.core.errors import FaceaffectError
from faceaffect.core.validate import check_fields, check_range
from faceaffect.hub.registry import REGISTRY, ModelConfig
from faceaffect.hub.resolve import resolve_model
from faceaffect.train.datasets import READERS
from faceaffect.train.transforms import Augment


@dataclass
class StageConfig:
    """``epochs`` at ``lr``; with ``lr_end`` the rate follows a cosine from ``lr`` down to ``lr_end`` over the
    stage's steps (a warm restart when a later stage starts higher than the previous one ended)."""

    epochs: int
    lr: float
    freeze_backbone: bool = False
    lr_end: float | None = None

    def __post_init__(self) -> None:
        check_fields(self, "training stage")
        check_range(self, "training stage", "epochs", 0, 100_000)
        check_range(self, "training stage", "lr", 0, 10)
        check_range(self, "training stage", "lr_end", 0, 10)

    def lr_at(self, progress: float) -> float:
        """The learning rate after ``progress`` (0..1) of this stage."""
        if self.lr_end is None:
            return self.lr
        return self.lr_end + 0.5 * (self.lr - self.lr_end) * (1.0 + math.cos(math.pi * progress))


@dataclass
class DataConfig:
    """``kind``: affectnet, ferplus, csv or folder; ``train``/``val``: the path each reader takes (CSV file,
    FER+ split folder or archive, image folder); ``soft_targets``: train on vote distributions (FER+)."""

    kind: str = "ferplus"
    train: str = ""
    val: str | None = None
    image_root: str | None = None
    soft_targets: bool = False

    def __post_init__(self) -> None:
        check_fields(self, "training data")
        if self.kind not in READERS:
            raise FaceaffectError(f"training data kind {self.kind!r} is unknown; use {', '.join(READERS)}")


def _recipe_stages() -> list[StageConfig]:
    return [StageConfig(3, 1e-3, True), StageConfig(6, 1e-4, False)]


@dataclass
class TrainConfig:
    """Everything one training run needs; ``from_file`` reads it from YAML or JSON.

    ``model``: a registered name, or a dict of ModelConfig fields: applied on top of the registered config of
    its ``name`` when there is one (e.g. ``{"name": "mbf_va_mtl", "input_size": 64}``), else a full config.
    ``label_smoothing`` None means the recipe's: 0.1 for expression-only models, 0 for multi-task ones.
    ``augment`` None trains without augmentation. ``amp`` applies on cuda only (bfloat16 autocast).
    ``max_steps_per_epoch`` cuts epochs short (smoke runs, timing).
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: str | dict[str, Any] = "mbf_va_mtl"
    stages: list[StageConfig] = field(default_factory=_recipe_stages)
    batch_size: int = 64
    sam: bool = True
    rho: float = 0.05
    label_smoothing: float | None = None
    class_weighted: bool = True
    augment: Augment | None = field(default_factory=Augment)
    init_weights: str | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    num_workers: int = 2
    output_dir: str = "runs/train"
    max_steps_per_epoch: int | None = None
    resume: bool = False
    tensorboard: bool = True

    def __post_init__(self) -> None:
        what = "training config"
        check_fields(self, what)
        if not self.stages or not all(isinstance(stage, StageConfig) for stage in self.stages):
            raise FaceaffectError(f"{what} stages must be a non-empty list of stages")
        for name, low, high in (("batch_size", 1, 1 << 16), ("rho", 0, 10), ("label_smoothing", 0, 1),
                                ("num_workers", 0, 256), ("seed", 0, 2**32 - 1),
                                ("max_steps_per_epoch", 1, None)):  # fmt: skip
            check_range(self, what, name, low, high)
        if isinstance(self.model, dict):
            self.model_config()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """A config from JSON-like data; unknown names, wrong types and values out of range are one-line
        errors."""
        data = dict(data)
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise FaceaffectError(f"unknown training option(s): {', '.join(sorted(map(str, unknown)))}")
        try:
            if "data" in data:
                data["data"] = DataConfig(**data["data"])
            if "stages" in data:
                data["stages"] = [StageConfig(**stage) for stage in data["stages"]]
            if "augment" in data:
                augment = data["augment"]
                data["augment"] = None if augment in (None, False) else Augment(**(augment or {}))
        except TypeError as error:
            raise FaceaffectError(f"bad training config: {error}") from None
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """Read a ``.json`` or ``.yaml``/``.yml`` file (defensively: see :mod:`faceaffect.core.documents`);
        every problem is one line naming the file."""
        data = read_document(path, FaceaffectError)
        try:
            return cls.from_dict(data)
        except FaceaffectError as error:
            raise FaceaffectError(f"{path}: {error}") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def model_config(self) -> ModelConfig:
        if isinstance(self.model, str):
            return resolve_model(self.model).config
        overrides = dict(self.model)
        base = REGISTRY.get(str(overrides.get("name", "")))
        try:
            if base is None:
                return ModelConfig.from_dict(overrides)
            return base.replace(**{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
        except (TypeError, ValueError, AttributeError) as error:
            raise FaceaffectError(f"bad model config: {error}") from None
