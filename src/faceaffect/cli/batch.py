"""``faceaffect batch INPUTS... -o OUT_DIR``: analyse (or, with ``--features``, extract the features of)
every video, image and folder of images, on this machine's cores or on a Ray cluster; resumable."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import TextColumn

from faceaffect.cli.analyze import (
    DetectEveryOption,
    DetectorOption,
    MarginOption,
    MaxFramesOption,
    MaxGapOption,
    MinFaceOption,
    MinScoreOption,
    SmallFaceEveryOption,
    SmoothFramesOption,
    SmoothSecondsOption,
    StrideOption,
    TargetFpsOption,
    TrackIouOption,
    TrackScoreOption,
)
from faceaffect.cli.common import (
    ANALYSIS,
    RUNTIME,
    BatchSizeOption,
    DeviceOption,
    ModelOption,
    OfflineOption,
    QuietOption,
    ThreadsOption,
    app,
    progress_display,
    runtime_options,
    say,
    user_errors,
)
from faceaffect.options import AnalyzerOptions

if TYPE_CHECKING:
    from faceaffect.batch import Job, Outputs, PoolOptions

FEATURE_SETTINGS = ("detector", "min_face_size", "stride")  # the analysis flags --features uses too
FEATURES_MIN_FACE = 32.0  # faceaffect features' default


@app.command("batch")
@user_errors
def batch_command(
    inputs: Annotated[
        list[str],
        typer.Argument(help="Videos, images, folders, glob patterns, or .txt/.csv lists of paths."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (created, or resumed).")],
    features: Annotated[
        bool, typer.Option(help="Extract features into a feature store (as `faceaffect features`).")
    ] = False,
    engine: Annotated[str, typer.Option(help="local (processes on this machine) or ray.")] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (host:port); default: a new local Ray.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Workers (default: local, the cores; ray, the cluster's CPUs).")
    ] = None,
    cpus_per_worker: Annotated[
        int | None, typer.Option(min=1, help="CPU cores per worker (default: local, shared out; ray, 1).")
    ] = None,
    gpus_per_worker: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Ray: GPUs per worker (default 1 where the cluster has GPUs and --device is not cpu; 0.25 "
            "packs four workers on a GPU).",
        ),
    ] = None,
    retries: Annotated[int, typer.Option(min=0, help="Runs more of an input whose worker died.")] = 2,
    table_format: Annotated[str, typer.Option("--format", help="Tables: parquet, csv or jsonl.")] = "parquet",
    summary: Annotated[bool, typer.Option(help="Also write NAME.summary.<format> per input.")] = False,
    embeddings: Annotated[bool, typer.Option(help="Also write NAME.embeddings.npy per input.")] = False,
    plots: Annotated[bool, typer.Option(help="Also write the plots in NAME.plots/ per input.")] = False,
    video: Annotated[bool, typer.Option(help="Also write NAME.annotated.mp4 (images: a folder).")] = False,
    detect_images: Annotated[
        bool, typer.Option(help="--features: detect faces in images too (default: they are face crops).")
    ] = False,
    storage: Annotated[str, typer.Option(help="--features: parquet or npz.")] = "parquet",
    model: ModelOption = RUNTIME.model,
    detector: DetectorOption = ANALYSIS.detector,
    min_score: MinScoreOption = ANALYSIS.min_score,
    min_face_size: MinFaceOption = ANALYSIS.min_face_size,
    margin: MarginOption = ANALYSIS.margin,
    stride: StrideOption = ANALYSIS.stride,
    target_fps: TargetFpsOption = ANALYSIS.target_fps,
    max_frames: MaxFramesOption = ANALYSIS.max_frames,
    detect_every: DetectEveryOption = ANALYSIS.detect_every,
    max_gap: MaxGapOption = ANALYSIS.max_gap,
    small_face_every: SmallFaceEveryOption = ANALYSIS.small_face_every,
    track_iou: TrackIouOption = ANALYSIS.track_iou,
    min_track_score: TrackScoreOption = ANALYSIS.min_track_score,
    smooth_frames: SmoothFramesOption = ANALYSIS.smooth_frames,
    smooth_seconds: SmoothSecondsOption = ANALYSIS.smooth_seconds,
    device: DeviceOption = RUNTIME.device,
    model_engine: Annotated[
        str, typer.Option(help="How the model runs: onnx, torch or auto (analyze's --engine).")
    ] = RUNTIME.engine,
    threads: ThreadsOption = RUNTIME.threads,
    batch_size: BatchSizeOption = RUNTIME.batch_size,
    offline: OfflineOption = False,
    quiet: QuietOption = False,
) -> None:
    """Analyse every input into OUT_DIR: one table per input (+ the outputs asked for) and manifest.csv with
    each input's status. Run it again to resume: finished inputs are skipped, failed ones run again."""
    from faceaffect.batch import Job, Outputs, PoolOptions

    options = AnalyzerOptions(detector, min_score, min_face_size, margin, stride, target_fps, max_frames,
                              detect_every, max_gap, small_face_every, track_iou, min_track_score,
                              smooth_frames, smooth_seconds, embeddings=embeddings)  # fmt: skip
    outputs = Outputs(_table_suffix(table_format), summary, embeddings, plots, video)
    runtime = runtime_options(model, device, model_engine, threads, batch_size, offline)
    if features:
        _check_feature_flags(options, outputs)
    extraction = {"detector": detector, "detect_images": detect_images, "stride": stride,
                  "min_face_size": FEATURES_MIN_FACE if min_face_size is None else min_face_size}  # fmt: skip
    job = Job(str(out), runtime, options, outputs, features, extraction, storage)
    pool = PoolOptions(engine, address, workers, cpus_per_worker, gpus_per_worker, retries)
    _run(inputs, out, job, pool, quiet)


def _run(inputs: list[str], out: Path, job: Job, pool: PoolOptions, quiet: bool) -> None:
    from faceaffect.batch import Record, run_batch

    start, frames = time.perf_counter(), 0
    with progress_display(quiet, TextColumn("{task.fields[rate]}")) as bar:
        task = bar.add_task("inputs", total=None, rate="")

        def finished(record: Record) -> None:
            nonlocal frames
            frames += record.frames
            bar.update(task, rate=f"{frames / (time.perf_counter() - start):.1f} frames/s")
            if record.error:
                say(f"[red]failed:[/red] {record.input}: {record.error}")

        try:
            counted = lambda done, total: bar.update(task, completed=done, total=total)  # noqa: E731
            report = run_batch(inputs, out, job, pool, progress=counted, on_record=finished)
        except KeyboardInterrupt:
            say(f"interrupted: what finished is recorded in {out / 'manifest.csv'}; run again to resume")
            raise typer.Exit(130) from None
    faces = sum(record.faces for record in report.records)
    rate = report.frames / report.seconds if report.seconds else 0.0
    say(f"{len(report.done)} done, {len(report.failed)} failed, {len(report.already_done)} done before; "
        f"{report.frames} frames, {faces} faces in {report.seconds:.1f} s ({rate:.1f} frames/s, "
        f"{report.workers} workers); manifest {report.out / 'manifest.csv'}")  # fmt: skip
    if report.failed:
        say(f"[red]error:[/red] {len(report.failed)} input(s) failed (see the manifest); run again to retry")
        raise typer.Exit(1)


def _table_suffix(name: str) -> str:
    from faceaffect.core.io import TABLE_FORMATS

    suffix = "." + name.lower().lstrip(".")
    if suffix not in TABLE_FORMATS:
        names = ", ".join(known[1:] for known in TABLE_FORMATS)
        raise typer.BadParameter(f"use one of {names}", param_hint="--format")
    return suffix


def _check_feature_flags(options: AnalyzerOptions, outputs: Outputs) -> None:
    """--features writes a feature store: the analysis' outputs and its other settings do not apply."""
    from faceaffect.batch import Outputs

    changed = [name for name, value in options.to_dict().items()
               if name not in FEATURE_SETTINGS and value != ANALYSIS.to_dict()[name]]  # fmt: skip
    changed += [name for name, value in asdict(outputs).items() if value != asdict(Outputs())[name]]
    if changed:
        flag = "--" + changed[0].replace("_", "-").replace("table", "format")
        raise typer.BadParameter(f"{flag} is for the analysis, not for --features", param_hint="--features")
