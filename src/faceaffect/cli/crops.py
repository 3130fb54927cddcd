"""``faceaffect models`` and ``faceaffect predict-crops``: the registry, and recognition of face crops."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from faceaffect.cli.common import (
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
    user_errors,
)
from faceaffect.core.errors import InputError
from faceaffect.core.limits import raised_limits
from faceaffect.hub.registry import REGISTRY
from faceaffect.images import expand_images

_WEIGHT_KINDS = {"hsemotion_pickle": "pickle", "state_dict": "state dict", "safetensors": "safetensors",
                 "onnx": "onnx"}  # fmt: skip


@app.command()
@user_errors
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print the configs as JSON.")] = False,
) -> None:
    """List every registered model."""
    if as_json:
        typer.echo(json.dumps([config.to_dict() for config in REGISTRY.values()], indent=2))
        return
    table = Table("name", "architecture", "input", "embedding", "classes", "VA", "weights")
    for c in REGISTRY.values():
        weights = " + ".join(_WEIGHT_KINDS[source.format] for source in (c.weights, c.onnx) if source) or "-"
        table.add_row(c.name, c.arch, str(c.input_size), str(c.embedding_dim), str(c.num_classes),
                      "yes" if c.has_va else "no", weights)  # fmt: skip
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@app.command("predict-crops")
@user_errors
def predict_crops(
    paths: Annotated[list[Path], typer.Argument(help="Face crop images, or folders of them.")],
    model: ModelOption = RUNTIME.model,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help=".csv, .parquet or .jsonl; stdout CSV if omitted."),
    ] = None,
    embeddings: Annotated[
        Path | None, typer.Option(help="Also write embeddings (one row per table row) to this .npy.")
    ] = None,
    device: DeviceOption = RUNTIME.device,
    engine: EngineOption = RUNTIME.engine,
    threads: ThreadsOption = RUNTIME.threads,
    batch_size: BatchSizeOption = RUNTIME.batch_size,
    offline: OfflineOption = False,
    max_image_pixels: MaxImagePixelsOption = None,
    quiet: QuietOption = False,
) -> None:  # fmt: skip
    """Predict expressions, valence and arousal for face crops (no detection: each image is one face)."""
    import numpy as np

    from faceaffect.core.io import TABLE_FORMATS, check_writable, write_array, write_table
    from faceaffect.recognizer import Recognizer
    from faceaffect.results import crop_predictions_table

    for path, formats in ((output, TABLE_FORMATS), (embeddings, (".npy",))):
        if path is not None:
            check_writable(path, formats)
    files = expand_images(paths)
    if not files:
        raise InputError("no image files found in " + ", ".join(map(str, paths)))
    recognizer = Recognizer(options=runtime_options(model, device, engine, threads, batch_size, offline))
    with progress_bar("crops", quiet) as progress, raised_limits(max_image_pixels=max_image_pixels):
        rows, failures = recognizer.predict_files(files, embeddings=embeddings is not None, progress=progress)
    report_skipped([failure.reason for failure in failures], kept=len(rows))
    frame = crop_predictions_table(rows, recognizer.labels, recognizer.config.name)
    if output is None:
        frame.to_csv(sys.stdout, index=False)
    else:
        write_table(frame, output)
    if embeddings is not None:
        write_array(
            np.stack([p.embedding for _, p in rows]) if rows else np.zeros((0, 0), np.float32), embeddings
        )
