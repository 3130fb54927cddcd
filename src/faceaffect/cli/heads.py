"""``faceaffect heads train|evaluate|predict|fuse|export``: small task heads on a feature store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from faceaffect.cli.common import QuietOption, app, say, stderr, user_errors
from faceaffect.core.errors import InputError
from faceaffect.downstream import smoothing
from faceaffect.downstream.options import TrainOptions

heads_app = typer.Typer(help="Train, evaluate and apply task heads on stored features.", no_args_is_help=True)
app.add_typer(heads_app, name="heads")

TASKS = ("va", "expr", "au", "emi", "ce")
FeaturesOption = Annotated[
    Path, typer.Option("--features", "-f", help="Feature store made by `faceaffect features`.")
]
HeadArgument = Annotated[str, typer.Argument(help="Head folder, or zero-shot-expr / zero-shot-ce.")]
ReportOption = Annotated[Path | None, typer.Option("--report", help="Also write the report as JSON.")]
DEFAULT_WINDOWS = ",".join(map(str, smoothing.DEFAULT_WINDOWS))
EMI_VALIDATION_NAMES = ("valid_split.csv", "val_split.csv", "validation_split.csv")


def _task(task: str) -> str:
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return task


def read_labels(task: str, path: Path, split: str) -> dict[str, Any]:
    """Labels of one split: Aff-Wild2 annotation folders, or a Hume-Vidmimic2 CSV (or its folder) for EMI."""
    from faceaffect.downstream.abaw import read_annotations, read_emi_csv

    if task != "emi":
        return read_annotations(path, task, split)
    if path.is_file():
        return read_emi_csv(path)
    names = ("train_split.csv",) if split == "train" else EMI_VALIDATION_NAMES
    for name in names:
        if (path / name).is_file():
            return read_emi_csv(path / name)
    raise InputError(f"no EMI label CSV in {path} (looked for {', '.join(names)})")


def _validation_labels(task: str, labels: Path, val_labels: Path | None) -> dict[str, Any] | None:
    """Explicit validation labels, else the validation split beside the training one, else None."""
    from faceaffect.downstream.abaw import annotation_folder

    if val_labels is not None:
        return read_labels(task, val_labels, "validation")
    if task == "emi":
        found = labels.is_dir() and any((labels / n).is_file() for n in EMI_VALIDATION_NAMES)
        return read_labels(task, labels, "validation") if found else None
    try:
        separate = annotation_folder(labels, task, "validation") != annotation_folder(labels, task, "train")
    except InputError:
        return None
    return read_labels(task, labels, "validation") if separate else None


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Printable rows of a (nested) report: ``"final score" -> "0.6812"``; window searches stay in JSON."""
    if isinstance(value, dict):
        rows: dict[str, str] = {}
        for key, inner in value.items():
            if key not in ("window_scores", "search"):
                rows.update(_flatten(inner, f"{prefix} {key}".strip()))
        return rows
    if isinstance(value, float):
        return {prefix: f"{value:.4f}"}
    if isinstance(value, int | str):
        return {prefix: str(value)}
    return {prefix: "-"} if value is None and prefix else {}


def _print_report(report: dict[str, Any], title: str) -> None:
    """A table of the head's figures beside its linear baseline's, the run's facts on one line below; a
    report without figures of a predictor (the compound prior) is all facts."""
    columns = [name for name in ("head", "baseline") if isinstance(report.get(name), dict)]
    said = (*columns, "tuned_on", "figures_on")  # the figures, and what the note below says in words
    facts = _flatten({k: v for k, v in report.items() if k not in said})
    if not columns:
        table = Table("figure", "value", title=title)
        for key, value in facts.items():
            table.add_row(key, value)
    else:
        table = Table(
            "figure", *columns, title=title, caption="; ".join(f"{k}: {v}" for k, v in facts.items())
        )
        figures = [_flatten(report[name]) for name in columns]
        for key in dict.fromkeys(k for rows in figures for k in rows):
            table.add_row(key, *(rows.get(key, "") for rows in figures))
    Console(stderr=True).print(table)
    if columns:
        say(_honesty_note(report))


def _honesty_note(report: dict[str, Any]) -> str:
    """Which split tuned the figures of a report, said in words."""
    if report.get("figures_on") == "validation":
        return (
            "All figures are on the validation split, which also chose the head, the baseline's L2, the "
            "window and the thresholds: per_frame uses argmax / 0.5 without smoothing; tuned and smoothed "
            "are tuned on this same split (optimistic). `heads evaluate` on another split gives held-out "
            "figures."
        )
    tuned_on = report.get("tuned_on")
    if not tuned_on:
        return "per_frame: argmax / 0.5 without smoothing; tuned, final: with the predictor's own settings."
    note = (
        "per_frame: argmax / 0.5 without smoothing; tuned, final: with the window and thresholds tuned on "
        f"the validation split of the head's training run ({tuned_on['videos']} videos)."
    )
    inside = tuned_on["evaluated_videos_in_it"]
    trained = tuned_on["evaluated_videos_in_training_split"]
    if inside or trained:
        note += (
            f" {inside} of these {report['videos']} videos were in that validation split and {trained} in "
            "its training split: these are not held-out figures."
        )
    return note


def _save_report(report: dict[str, Any], output: Path | None) -> None:
    if output is not None:
        from faceaffect.core.io import atomic_path

        with atomic_path(output) as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def _windows(text: str) -> tuple[int, ...]:
    try:
        windows = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(f"--windows takes comma-separated whole numbers, got {text!r}") from None
    if not windows or min(windows) < 0:
        raise InputError(f"--windows needs at least one half-width >= 0, got {text!r}")
    return windows


@heads_app.command("train")
@user_errors
def train(
    task: Annotated[str, typer.Argument(help="va, expr, au, emi, or ce (k-means clusters named zero-shot).")],
    features: FeaturesOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the trained head.")],
    labels: Annotated[
        Path | None, typer.Option(help="Training labels: Aff-Wild2 annotation folder, or EMI CSV / folder.")
    ] = None,
    val_labels: Annotated[
        Path | None,
        typer.Option(
            help="Validation labels (default: the validation split of --labels, else --val-fraction)."
        ),
    ] = None,
    val_fraction: Annotated[
        float, typer.Option(help="Held-out fraction of videos without validation labels.")
    ] = 0.2,
    inputs: Annotated[
        str | None, typer.Option(help="logits, embedding or audio (default: METHOD.md's).")
    ] = None,
    hidden: Annotated[
        int | None,
        typer.Option(min=0, help="Pin the hidden width (0: linear; default: 0 or 128, chosen)."),
    ] = None,
    weight_decay: Annotated[
        float | None, typer.Option(min=0.0, help="Pin the L2 strength (default: chosen on validation).")
    ] = None,
    dropout: Annotated[
        float | None,
        typer.Option(min=0.0, max=0.95, help="Pin the dropout of hidden-layer heads (default: 0 or 0.5)."),
    ] = None,
    max_class_weight: Annotated[
        float, typer.Option(min=0.0, help="Cap of the expr / au class weights (0: uncapped, METHOD.md's).")
    ] = TrainOptions.max_class_weight,
    search_rows: Annotated[
        int,
        typer.Option(
            min=2, help="Search on at most this many rows per split (the winner then trains on all)."
        ),
    ] = TrainOptions.search_rows,
    epochs: Annotated[int, typer.Option(min=1, help="Hidden-layer heads: at most this many epochs.")] = 100,
    patience: Annotated[
        int, typer.Option(min=1, help="Hidden-layer heads: stop after this many epochs without improvement.")
    ] = 10,
    lr: Annotated[float, typer.Option(help="Hidden-layer heads: Adam learning rate.")] = 1e-3,
    batch_size: Annotated[int, typer.Option(min=2, help="Hidden-layer heads: batch size.")] = 256,
    seed: int = 0,
    windows: Annotated[
        str, typer.Option(help="Smoothing half-widths to try on validation.")
    ] = DEFAULT_WINDOWS,
    clusters: Annotated[int, typer.Option(help="ce only: number of k-means clusters.")] = 7,
    report_path: ReportOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train a head with the paper's loss, its capacity and L2 chosen on validation, beside a linear baseline;
    smoothing and AU thresholds tuned on validation."""
    from faceaffect.downstream.features import FeatureStore
    from faceaffect.downstream.workflow import fit_clusters, train_head

    store = FeatureStore.open(features)
    if _task(task) == "ce":
        predictor = fit_clusters(store, k=clusters, seed=seed)
        predictor.save(out)
        stderr.print(f"{clusters} clusters named by zero-shot CE saved in {out}")
        return
    if labels is None:
        raise InputError(f"training a {task} head needs --labels")
    train_labels = read_labels(task, labels, "train")
    validation = _validation_labels(task, labels, val_labels)
    options = TrainOptions(
        inputs=inputs,
        hidden=hidden,
        weight_decay=weight_decay,
        dropout=dropout,
        max_class_weight=max_class_weight or None,
        search_rows=search_rows,
        epochs=epochs,
        patience=patience,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        windows=_windows(windows),
    )

    def on_candidate(index: int, total: int, record: dict[str, Any]) -> None:
        if not quiet:
            line = f"candidate {index}/{total}, {record['model']}: validation {record['score']:.4f}"
            say(line)

    predictor, report = train_head(
        task,
        store,
        train_labels,
        validation,
        options=options,
        val_fraction=val_fraction,
        on_candidate=on_candidate,
    )
    predictor.save(out)
    _save_report(report, report_path)
    _print_report(report, f"{task} head saved in {out}: head and linear baseline on the validation split")


@heads_app.command("evaluate")
@user_errors
def evaluate(
    head: HeadArgument,
    features: FeaturesOption,
    labels: Annotated[
        Path | None, typer.Option(help="Labels (ce: optional; without, KL to the known prior).")
    ] = None,
    split: Annotated[
        str, typer.Option(help="Split of an annotation root: train or validation.")
    ] = "validation",
    window: Annotated[
        int | None, typer.Option(min=0, help="Override the head's smoothing half-width.")
    ] = None,
    report_path: ReportOption = None,
) -> None:
    """Score a head per frame, with tuned thresholds and smoothing (ce without labels: KL to the prior)."""
    from faceaffect.downstream.features import FeatureStore
    from faceaffect.downstream.predictors import load_predictor
    from faceaffect.downstream.workflow import compound_prior_report
    from faceaffect.downstream.workflow import evaluate as evaluate_predictor

    store = FeatureStore.open(features)
    predictor = load_predictor(head)
    if window is not None:
        predictor.window = window
    if labels is None:
        if predictor.task != "ce":
            raise InputError(f"evaluating a {predictor.task} head needs --labels")
        report = compound_prior_report(predictor, store)
    else:
        report = evaluate_predictor(predictor, store, read_labels(predictor.task, labels, split))
    _save_report(report, report_path)
    _print_report(report, f"{head} on {features}")


@heads_app.command("predict")
@user_errors
def predict(
    head: HeadArgument,
    features: FeaturesOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the prediction files.")],
    lengths_from: Annotated[
        Path | None, typer.Option(help="Annotation folder giving each video's frame count.")
    ] = None,
    split: Annotated[str, typer.Option(help="Split of --lengths-from.")] = "validation",
    window: Annotated[
        int | None, typer.Option(min=0, help="Override the head's smoothing half-width.")
    ] = None,
) -> None:
    """Challenge-format predictions: <video>.txt per video plus predictions.txt (EMI: predictions.csv)."""
    from faceaffect.downstream.abaw import write_emi_csv, write_frame_predictions, write_submission
    from faceaffect.downstream.features import FeatureStore
    from faceaffect.downstream.predictors import load_predictor
    from faceaffect.downstream.workflow import predict as predict_outputs

    store = FeatureStore.open(features)
    predictor = load_predictor(head)
    if window is not None:
        predictor.window = window
    videos, lengths = None, None
    if lengths_from is not None:
        reference = read_labels(predictor.task, lengths_from, split)
        videos, lengths = sorted(reference), {v: len(rows) for v, rows in reference.items()}
    predictions = predict_outputs(predictor, store, videos, lengths)
    if predictor.task == "emi":
        write_emi_csv(out / "predictions.csv", predictions)
    else:
        write_frame_predictions(out, predictor.task, predictions)
        write_submission(out / "predictions.txt", predictor.task, predictions)
    frames = (
        "" if predictor.task == "emi" else f", {sum(len(rows) for rows in predictions.values())} frame(s)"
    )
    stderr.print(f"{predictor.task} predictions of {len(predictions)} video(s){frames} in {out}")


@heads_app.command("fuse")
@user_errors
def fuse(
    first: HeadArgument,
    second: Annotated[str, typer.Argument(help="Second head folder (same task; e.g. on audio).")],
    features: FeaturesOption,
    labels: Annotated[Path, typer.Option(help="Labels to choose the per-class weights on.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the fused predictor.")],
    split: Annotated[str, typer.Option(help="Split of an annotation root.")] = "validation",
    report_path: ReportOption = None,
) -> None:
    """Late fusion with per-class weights (and window, AU thresholds) chosen on labelled data."""
    from faceaffect.downstream.features import FeatureStore
    from faceaffect.downstream.predictors import load_predictor, save_predictor
    from faceaffect.downstream.workflow import fit_fusion

    store = FeatureStore.open(features)
    a, b = load_predictor(first), load_predictor(second)
    fused, report = fit_fusion(a, b, store, read_labels(a.task, labels, split))
    save_predictor(fused, out)
    _save_report(report, report_path)
    _print_report(
        {k: v for k, v in report.items() if k != "weights"}, f"fused {a.task} predictor saved in {out}"
    )


@heads_app.command("export")
@user_errors
def export(
    head: Annotated[Path, typer.Argument(help="Trained head folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .onnx file to write.")],
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
) -> None:
    """Export a trained head to ONNX (input "features", output "output", dynamic batch)."""
    from faceaffect.downstream.heads import export_onnx, load_head

    loaded = load_head(head)
    export_onnx(loaded, out, opset)
    stderr.print(f"{loaded.config.task} head ({loaded.config.in_dim} inputs) exported to {out}")
