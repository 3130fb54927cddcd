"""The multi-task training recipe: data readers, transforms, losses, SAM, the two-stage loop, evaluation."""

from __future__ import annotations

from faceaffect.train.config import DataConfig, StageConfig, TrainConfig
from faceaffect.train.datasets import DatasetError, FaceDataset, Sample, read_samples
from faceaffect.train.evaluate import evaluate
from faceaffect.train.recipe import TrainEvent, TrainResult, is_main_process, train
from faceaffect.train.sam import SAM
from faceaffect.train.transforms import Augment, ImageTransform

__all__ = [
    "SAM",
    "Augment",
    "DataConfig",
    "DatasetError",
    "FaceDataset",
    "ImageTransform",
    "Sample",
    "StageConfig",
    "TrainConfig",
    "TrainEvent",
    "TrainResult",
    "evaluate",
    "is_main_process",
    "read_samples",
    "train",
]
