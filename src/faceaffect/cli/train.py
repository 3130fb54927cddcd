"""``faceaffect train CONFIG`` and ``faceaffect evaluate MODEL DATASET``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from faceaffect.cli.common import (
    DeviceOption,
    OfflineOption,
    QuietOption,
    app,
    progress_display,
    say,
    user_errors,
)
from faceaffect.core.errors import FaceaffectError, InputError

if TYPE_CHECKING:
    from faceaffect.train import TrainConfig

EPOCH_COLUMNS = ("train_loss", "train_accuracy", "val_accuracy_8", "val_accuracy_7", "val_macro_f1",
                 "val_valence_ccc", "val_arousal_ccc", "images_per_s")  # fmt: skip
_CONFIGS_HELP = (
    "Training configs (.yaml or .json; see configs/), run in order: a later one may start from an earlier "
    "one's best model (its init_weights). With --resume, finished runs are skipped."
)


def _epoch_line(metrics: dict[str, Any]) -> str:
    parts = [f"{k}={metrics[k]:.4g}" for k in EPOCH_COLUMNS if isinstance(metrics.get(k), int | float)]
    return f"epoch {metrics['epoch']} (stage {metrics['stage']}): " + " ".join(parts)


@app.command()
@user_errors
def train(
    configs: Annotated[list[Path], typer.Argument(help=_CONFIGS_HELP)],
    output_dir: Annotated[Path | None, typer.Option(help="Overrides the config's output_dir.")] = None,
    device: Annotated[str | None, typer.Option(help="Overrides the configs' device.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from output_dir/last.pt when it exists.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Train a multi-task model with the HSEmotion recipe (two stages, SAM + Adam, CE + CCC)."""
    from faceaffect.core.io import check_writable
    from faceaffect.train import TrainConfig

    if output_dir is not None and len(configs) > 1:
        raise InputError("--output-dir needs a single config (each config names its own output_dir)")
    missing = [str(config) for config in configs if not config.is_file()]
    if missing:
        raise InputError(f"no such config file: {', '.join(missing)}")
    runs = [TrainConfig.from_file(config) for config in configs]  # all read before any training starts
    for settings in runs:
        settings.resume = resume or settings.resume
        if output_dir is not None:
            settings.output_dir = str(output_dir)
        if device is not None:
            settings.device = device
        check_writable(settings.output_dir, folder=True)
    for settings in runs:
        _train_one(settings, quiet)


def _train_one(settings: TrainConfig, quiet: bool) -> None:
    from faceaffect.train import TrainEvent, is_main_process
    from faceaffect.train import train as run_training

    main = is_main_process()  # under torchrun, only rank 0 reports
    with progress_display(disable=quiet or not main) as bar:
        task = bar.add_task("training", total=None)

        def report(event: TrainEvent) -> None:
            if event.kind == "batch":
                bar.update(task, description=f"epoch {event.epoch}/{event.epochs}", completed=event.step,
                           total=event.steps)  # fmt: skip
            elif not quiet:
                say(escape(event.message) if event.kind == "note" else _epoch_line(event.metrics))

        result = run_training(settings, report)
    if main:
        say(f"best epoch {result.best_epoch} (validation accuracy {result.best_accuracy:.4f}); "
            f"model saved in {escape(str(result.best_model_dir))}")  # fmt: skip


def _print_report(report: dict[str, Any], labels: tuple[str, ...]) -> None:
    table = Table("metric", "value", title=f"{report['n']} images")
    for key, value in report.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
    for label, recall in report["per_class_recall"].items():
        table.add_row(f"recall {label}", f"{recall:.4f}")
    Console().print(table)


@app.command()
@user_errors
def evaluate(
    model: Annotated[str, typer.Argument(help="Registered model name or saved model folder.")],
    dataset: Annotated[Path, typer.Argument(help="FER+ split folder, AffectNet CSV, CSV, or image folder.")],
    kind: Annotated[str, typer.Option(help="ferplus, affectnet, csv or folder.")] = "ferplus",
    image_root: Annotated[Path | None, typer.Option(help="Root of relative image paths (CSV kinds).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report as JSON.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Save the confusion matrix (.png/.pdf/.svg).")] = None,
    device: DeviceOption = "cpu",
    batch_size: Annotated[int, typer.Option(min=1)] = 128,
    offline: OfflineOption = False,
    quiet: QuietOption = False,
) -> None:  # fmt: skip
    """Accuracy-8/-7, macro-F1, per-class recall, confusion matrix; CCC/RMSE where VA is labelled."""
    from faceaffect.core.io import atomic_path, check_writable
    from faceaffect.models.loading import load_model
    from faceaffect.render.plots import plot_confusion_matrix
    from faceaffect.train import FaceDataset, ImageTransform, evaluate, read_samples

    if not dataset.exists():
        raise InputError(f"no such dataset: {dataset}")
    if output is not None:
        check_writable(output, (".json",))
    if plot is not None:
        check_writable(plot, (".png", ".pdf", ".svg"))
    network = load_model(model, device=device, offline=offline or None)
    config = network.config
    samples = read_samples(kind, dataset, image_root)
    data = FaceDataset(samples, ImageTransform(config), config.labels)
    if len(data) == 0:
        raise FaceaffectError(f"{dataset}: no samples with the model's labels")
    if not quiet:
        say(escape(f"evaluating {config.name} on {len(data)} images of {dataset}"))
    report = evaluate(network, data, batch_size=batch_size, device=device)
    report = {"model": config.name, "dataset": str(dataset), **report}
    _print_report(report, config.labels)
    if output is not None:
        with atomic_path(output) as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if plot is not None:
        title = (
            f"{config.name} on {dataset.name}: accuracy {report.get(f'accuracy_{config.num_classes}', 0):.3f}"
        )
        plot_confusion_matrix(report["confusion_matrix"], config.labels, plot, title)
