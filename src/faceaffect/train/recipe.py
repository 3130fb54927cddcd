"""The HSEmotion two-stage multi-task recipe: frozen backbone + new head, then everything; SAM around Adam.

``train(TrainConfig.from_file("train.yaml"), progress=callback)`` runs it; ``TrainConfig`` lives in
``faceaffect.train.config`` and is re-exported here.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from faceaffect.core.errors import FaceaffectError
from faceaffect.hub import save_pretrained
from faceaffect.hub.registry import ModelConfig
from faceaffect.models import MultiTaskModel, create_model
from faceaffect.runtime.base import resolve_device
from faceaffect.train.checkpoint import load_checkpoint, load_init_weights, save_checkpoint
from faceaffect.train.config import StageConfig, TrainConfig
from faceaffect.train.datasets import FaceDataset, read_samples
from faceaffect.train.evaluate import evaluate, model_outputs
from faceaffect.train.losses import class_weights, multitask_loss
from faceaffect.train.sam import SAM
from faceaffect.train.transforms import ImageTransform

METRIC_COLUMNS = (
    "epoch", "stage", "lr", "train_loss", "train_expression_loss", "train_va_loss", "train_accuracy",
    "val_accuracy_8", "val_accuracy_7", "val_macro_f1", "val_valence_ccc", "val_arousal_ccc",
    "val_valence_rmse", "val_arousal_rmse", "seconds", "images_per_s",
)  # fmt: skip


@dataclass(frozen=True)
class TrainEvent:
    """A progress report: ``kind`` is ``note`` (message), ``batch`` (step of steps) or ``epoch`` (metrics,
    the row written to ``metrics.csv``). ``epoch`` and ``stage`` count from 1, as in ``metrics.csv``."""

    kind: str
    epoch: int = 0
    epochs: int = 0
    stage: int = 0
    step: int = 0
    steps: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    best_epoch: int
    best_accuracy: float
    best_model_dir: Path | None
    last_checkpoint: Path
    history: list[dict[str, str]]


EventHook = Callable[[TrainEvent], None]  # training reports events (notes, batches, epochs)


def is_main_process() -> bool:
    """False in the other processes of a ``torchrun`` launch (RANK > 0): they train, but neither write nor
    report."""
    return _rank() == 0


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); joins the process group under torchrun when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return _rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def _datasets(config: TrainConfig, model_config: ModelConfig) -> tuple[FaceDataset, FaceDataset | None]:
    data = config.data
    train_samples = read_samples(data.kind, data.train, data.image_root)
    train_set = FaceDataset(train_samples, ImageTransform(model_config, config.augment), model_config.labels)
    if len(train_set) < config.batch_size:
        raise FaceaffectError(
            f"{data.train}: {len(train_set)} samples, fewer than one batch ({config.batch_size})"
        )
    if not data.val:
        return train_set, None
    val_samples = read_samples(data.kind, data.val, data.image_root)
    return train_set, FaceDataset(val_samples, ImageTransform(model_config), model_config.labels)


@contextlib.contextmanager
def _frozen_batchnorm_stats(model: nn.Module) -> Iterator[None]:
    """Keep BatchNorm running statistics unchanged (SAM's second pass must not count a batch twice)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum


class _Trainer:
    """One run's state: model, data, loss settings, output folder."""

    def __init__(self, config: TrainConfig, progress: EventHook | None) -> None:
        self.config = config
        self.owns_process_group = not (dist.is_available() and dist.is_initialized())
        self.rank, self.world, local_rank = _distributed()
        self.notify = progress if progress is not None and self.rank == 0 else (lambda event: None)
        device = resolve_device(config.device)
        self.device = device
        if device.startswith("cuda") and self.world > 1:
            self.device = f"cuda:{local_rank}"
            torch.cuda.set_device(local_rank)
        self.amp = config.amp and self.device.startswith("cuda") and torch.cuda.is_bf16_supported()
        self.model_config = config.model_config()
        torch.manual_seed(config.seed)
        self.model: MultiTaskModel = create_model(self.model_config).to(self.device)
        if config.init_weights:
            loaded, skipped = load_init_weights(self.model, config.init_weights)
            self.notify(
                TrainEvent("note", message=f"initial weights: {loaded} tensors loaded, {skipped} skipped")
            )
        self.train_set, self.val_set = _datasets(config, self.model_config)
        num_classes = self.model_config.num_classes
        weight = class_weights(self.train_set.targets(), num_classes) if config.class_weighted else None
        smoothing = config.label_smoothing
        self.loss_options = {
            "weight": None if weight is None else weight.to(self.device),
            "label_smoothing": (0.0 if self.model_config.has_va else 0.1) if smoothing is None else smoothing,
            "soft_targets": config.data.soft_targets,
        }
        self.out = Path(config.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.schedule = [i for i, stage in enumerate(config.stages) for _ in range(stage.epochs)]

    def _optimizer(self, stage: StageConfig) -> tuple[nn.Module, torch.optim.Optimizer | SAM]:
        """(Un)freeze the backbone; return the trained part (the head alone, fed embeddings, while the
        backbone is frozen), wrapped for DDP, and a fresh Adam (inside SAM) over its parameters."""
        for p in self.model.backbone.parameters():
            p.requires_grad_(not stage.freeze_backbone)
        trained: nn.Module = self.model.head if stage.freeze_backbone else self.model
        adam = torch.optim.Adam(trained.parameters(), lr=stage.lr)
        optimizer = SAM(adam, rho=self.config.rho) if self.config.sam else adam
        if self.world > 1:
            ids = [torch.device(self.device).index] if self.device.startswith("cuda") else None
            trained = nn.parallel.DistributedDataParallel(trained, device_ids=ids)
        return trained, optimizer

    def _loader(self, epoch: int) -> torch.utils.data.DataLoader:
        seed = self.config.seed * 100_003 + epoch
        torch.manual_seed(seed)
        sampler = None
        if self.world > 1:
            sampler = torch.utils.data.DistributedSampler(
                self.train_set, seed=self.config.seed, drop_last=True
            )
            sampler.set_epoch(epoch)
        return torch.utils.data.DataLoader(
            self.train_set,
            batch_size=self.config.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            drop_last=True,
            num_workers=self.config.num_workers,
            generator=torch.Generator().manual_seed(seed),
            pin_memory=self.device.startswith("cuda"),
        )

    @torch.no_grad()
    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            return self.model.forward_features(images).float()

    def _loss(self, model: nn.Module, inputs: torch.Tensor, targets: dict[str, torch.Tensor]) -> Any:
        """Loss parts and logits of ``model`` (whole model on images, or head on embeddings)."""
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            logits, va = model_outputs(model, inputs, self.model_config)
        parts = multitask_loss(
            logits.float(), None if va is None else va.float(), targets, **self.loss_options
        )
        return parts, logits

    def train_epoch(self, epoch: int, stage_index: int, model: nn.Module, optimizer: Any) -> dict[str, float]:
        stage = self.config.stages[stage_index]
        self.model.train()
        if stage.freeze_backbone:
            self.model.backbone.eval()  # a frozen backbone keeps its BatchNorm statistics too
        loader = self._loader(epoch)
        sums = {"loss": 0.0, "expression": 0.0, "va": 0.0, "correct": 0.0, "n": 0.0}
        start = time.perf_counter()
        steps = min(len(loader), self.config.max_steps_per_epoch or len(loader))
        epoch_in_stage, lr = epoch - self.schedule.index(stage_index), stage.lr
        for step, (images, targets) in enumerate(itertools.islice(loader, steps), 1):
            lr = stage.lr_at((epoch_in_stage * steps + step - 1) / (stage.epochs * steps))
            for group in optimizer.param_groups:
                group["lr"] = lr
            images = images.to(self.device, non_blocking=True)
            targets = {k: v.to(self.device, non_blocking=True) for k, v in targets.items()}
            inputs = self._embed(images) if stage.freeze_backbone else images  # SAM's 2nd pass reuses it
            parts, logits = self._loss(model, inputs, targets)
            parts.total.backward()
            if isinstance(optimizer, SAM):
                optimizer.first_step()
                with _frozen_batchnorm_stats(self.model):
                    self._loss(model, inputs, targets)[0].total.backward()
                optimizer.second_step()
            else:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            n = len(images)
            sums["n"] += n
            total, expression, va = (0.0 if t is None else float(t.detach()) for t in parts)
            sums["loss"] += total * n
            sums["expression"] += expression * n
            sums["va"] += va * n
            sums["correct"] += float((logits.argmax(1) == targets["expression"]).sum())
            self.notify(TrainEvent("batch", epoch + 1, len(self.schedule), stage_index + 1, step, steps))
        seconds = time.perf_counter() - start
        n = max(sums["n"], 1.0)
        return {
            "lr": lr,
            "train_loss": sums["loss"] / n,
            "train_expression_loss": sums["expression"] / n,
            "train_va_loss": sums["va"] / n,
            "train_accuracy": sums["correct"] / n,
            "seconds": seconds,
            "images_per_s": sums["n"] * self.world / seconds,
        }

    def run(self) -> TrainResult:
        config, last = self.config, self.out / "last.pt"
        state = load_checkpoint(last) if config.resume and last.is_file() else None
        done, best_epoch, best_accuracy = 0, 0, -1.0
        if state is not None:
            self.model.load_state_dict(state["model"])
            done, best_epoch, best_accuracy = state["epoch"], state["best_epoch"], state["best_accuracy"]
            self.notify(TrainEvent("note", message=f"resuming {last} after epoch {done}"))
        elif self.rank == 0:
            (self.out / "metrics.csv").unlink(missing_ok=True)
        writer = self._tensorboard() if self.rank == 0 else None
        key = f"val_accuracy_{self.model_config.num_classes}"
        stage_index, model, optimizer = -1, self.model, None
        for epoch in range(done, len(self.schedule)):
            if self.schedule[epoch] != stage_index:
                stage_index = self.schedule[epoch]
                model, optimizer = self._optimizer(config.stages[stage_index])
                if state is not None and state["stage"] == stage_index and epoch == done:
                    optimizer.load_state_dict(state["optimizer"])
            row = {"epoch": epoch + 1, "stage": stage_index + 1}
            row.update(self.train_epoch(epoch, stage_index, model, optimizer))
            if self.rank == 0:
                row.update(self._validate())
                accuracy = row[key] if self.val_set is not None else row["train_accuracy"]
                if accuracy > best_accuracy:
                    best_epoch, best_accuracy = epoch + 1, float(accuracy)
                    save_pretrained(self.model.state_dict(), self._trained_config(), self.out / "best")
                self._log(row, writer)
                save_checkpoint(
                    last,
                    {
                        "model": self.model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "epoch": epoch + 1,
                        "stage": stage_index,
                        "best_epoch": best_epoch,
                        "best_accuracy": best_accuracy,
                        "model_config": self.model_config.to_dict(),
                        "train_config": config.to_dict(),
                    },
                )
            if self.world > 1:
                dist.barrier()
            self.notify(TrainEvent("epoch", epoch + 1, len(self.schedule), stage_index + 1, metrics=row))
        if writer is not None:
            writer.close()
        if self.world > 1 and self.owns_process_group:
            dist.destroy_process_group()  # the one _distributed() joined; a caller's own group stays
        best_dir = self.out / "best"
        return TrainResult(
            self.out,
            best_epoch,
            best_accuracy,
            best_dir if best_dir.is_dir() else None,
            last,
            self._history(),
        )

    def _validate(self) -> dict[str, Any]:
        if self.val_set is None:
            return {}
        report = evaluate(
            self.model,
            self.val_set,
            batch_size=2 * self.config.batch_size,
            device=self.device,
            num_workers=self.config.num_workers,
            amp=self.amp,
        )
        return {f"val_{k}": v for k, v in report.items() if isinstance(v, int | float)}

    def _trained_config(self) -> ModelConfig:
        return self.model_config.replace(
            weights=None, onnx=None, description=f"trained: {self.model_config.name}"
        )

    def _tensorboard(self) -> Any:
        if not self.config.tensorboard:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return SummaryWriter(str(self.out / "tensorboard"))

    def _log(self, row: dict[str, Any], writer: Any) -> None:
        path = self.out / "metrics.csv"
        new = not path.is_file()
        with path.open("a", newline="", encoding="utf-8") as handle:
            out = csv.DictWriter(handle, fieldnames=METRIC_COLUMNS, restval="", extrasaction="ignore")
            if new:
                out.writeheader()
            out.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
        if writer is not None:
            for name, value in row.items():
                if name not in ("epoch", "stage") and isinstance(value, int | float):
                    writer.add_scalar(name, value, row["epoch"])

    def _history(self) -> list[dict[str, str]]:
        path = self.out / "metrics.csv"
        if not path.is_file():
            return []
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))


def train(config: TrainConfig, progress: EventHook | None = None) -> TrainResult:
    """Run the recipe: each stage trains ``epochs`` epochs at ``lr`` (backbone frozen or not) with a fresh
    Adam (inside SAM); after each epoch: validation, ``metrics.csv``, ``last.pt``, and ``best/`` when the
    validation accuracy improves (training accuracy without a validation set). With ``config.resume`` it
    continues from ``output_dir/last.pt`` at the stored stage and epoch. Under ``torchrun`` (WORLD_SIZE > 1)
    it trains with DistributedDataParallel; rank 0 validates and writes.
    """
    return _Trainer(config, progress).run()
