"""``faceaffect features INPUT... --out DIR``: a frozen model's per-frame embeddings and logits, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from faceaffect.cli.common import (
    ANALYSIS,
    RUNTIME,
    BatchSizeOption,
    DeviceOption,
    EngineOption,
    MaxImagePixelsOption,
    ModelOption,
    OfflineOption,
    QuietOption,
    ThreadsOption,
    app,
    progress_bar,
    report_skipped,
    runtime_options,
    say,
    user_errors,
)
from faceaffect.core.limits import raised_limits


@app.command()
@user_errors
def features(
    inputs: Annotated[list[Path], typer.Argument(help="Videos, frame folders, images, or dataset folders.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Feature store folder (created or resumed).")],
    model: ModelOption = RUNTIME.model,
    detector: Annotated[
        str, typer.Option(help="Face detector for videos (and images with --detect-images).")
    ] = ANALYSIS.detector,
    detect_images: Annotated[
        bool, typer.Option(help="Detect faces in images too (default: images are face crops).")
    ] = False,
    min_face_size: Annotated[float, typer.Option(help="Smallest face to report, in pixels.")] = 32.0,
    stride: Annotated[int, typer.Option(min=1, help="Use every N-th frame of videos (1, 1+N, ...).")] = 1,
    storage: Annotated[str, typer.Option(help="parquet or npz.")] = "parquet",
    audio_model: Annotated[
        str | None, typer.Option(help="Also store wav2vec2-class audio states (local folder or cached name).")
    ] = None,
    batch_size: BatchSizeOption = RUNTIME.batch_size,
    device: DeviceOption = RUNTIME.device,
    engine: EngineOption = RUNTIME.engine,
    threads: ThreadsOption = RUNTIME.threads,
    offline: OfflineOption = False,
    max_image_pixels: MaxImagePixelsOption = None,
    quiet: QuietOption = False,
) -> None:
    """Per-frame embeddings and logits of every face, one Parquet (or npz) file per video plus manifest.json.

    Videos already in the store are skipped, so an interrupted run continues where it stopped.
    """
    from faceaffect.downstream.extract import extract_features

    encoder = None
    if audio_model is not None:
        from faceaffect.downstream.audio import Wav2Vec2Encoder

        encoder = Wav2Vec2Encoder(audio_model, device=device)
    with progress_bar("frames", quiet) as progress, raised_limits(max_image_pixels=max_image_pixels):
        report = extract_features(
            inputs,
            out,
            runtime=runtime_options(model, device, engine, threads, batch_size, offline),
            detector=detector,
            detect_images=detect_images,
            min_face_size=min_face_size,
            stride=stride,
            storage=storage,
            audio=encoder,
            progress=progress,
        )
    report_skipped([reason for _, reason in report.failures], kept=1)
    if not quiet:
        faces = sum(report.store.videos[v].rows for v in report.written)
        say(
            f"{len(report.written)} video(s) written ({faces} faces), {len(report.skipped)} already in the "
            f"store, {len(report.failures)} unreadable image(s); features in {escape(str(out))}"
        )
