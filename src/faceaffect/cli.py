"""The ``faceaffect`` command: parse, call the API, save. Errors become one line on stderr and exit code 1."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from faceaffect.errors import FaceaffectError, InputError
from faceaffect.registry import REGISTRY

app = typer.Typer(
    help="Facial affect analysis: expressions, valence and arousal per face.", no_args_is_help=True
)
stderr = Console(stderr=True)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

P = ParamSpec("P")
R = TypeVar("R")


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a FaceaffectError into one line on stderr and exit code 1 (no traceback for user mistakes)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except FaceaffectError as error:
            stderr.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


@contextmanager
def progress_bar(description: str, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr, driven through a ``(done, total)`` callback."""
    if quiet:
        yield lambda done, total: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def expand_images(paths: list[Path]) -> list[Path]:
    """Files as given; folders expanded to their image files (sorted, recursive)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.exists():
            files.append(path)
        else:
            raise InputError(f"no such file or folder: {path}")
    return files


ModelOption = Annotated[
    str,
    typer.Option(
        "--model", "-m", help="Registered model name or saved model folder (see `faceaffect models`)."
    ),
]
DeviceOption = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")]
OfflineOption = Annotated[bool, typer.Option(help="Never download; use only cached or local weights.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


@app.command()
@user_errors
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print the configs as JSON.")] = False,
) -> None:
    """List every registered model."""
    if as_json:
        typer.echo(json.dumps([config.to_dict() for config in REGISTRY.values()], indent=2))
        return
    table = Table("name", "architecture", "input", "embedding", "classes", "VA", "published weights")
    for c in REGISTRY.values():
        weights = "pickle + onnx" if c.onnx else "pickle" if c.weights else "-"
        table.add_row(c.name, c.arch, str(c.input_size), str(c.embedding_dim), str(c.num_classes),
                      "yes" if c.has_va else "no", weights)  # fmt: skip
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@app.command("predict-crops")
@user_errors
def predict_crops(
    paths: Annotated[list[Path], typer.Argument(help="Face crop images, or folders of them.")],
    model: ModelOption = "enet_b0_8_va_mtl",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help=".csv, .parquet or .jsonl; stdout CSV if omitted."),
    ] = None,
    embeddings: Annotated[
        Path | None, typer.Option(help="Also write embeddings (one row per table row) to this .npy.")
    ] = None,
    device: DeviceOption = "cpu",
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    offline: OfflineOption = False,
    quiet: QuietOption = False,
) -> None:  # fmt: skip
    """Predict expressions, valence and arousal for face crops (no detection: each image is one face)."""
    import numpy as np

    from faceaffect.recognizer import Recognizer
    from faceaffect.tables import crop_predictions_table, write_array, write_table

    files = expand_images(paths)
    if not files:
        raise InputError("no image files found in " + ", ".join(map(str, paths)))
    recognizer = Recognizer(model, device=device, batch_size=batch_size, offline=offline or None)
    with progress_bar("crops", quiet) as progress:
        rows, failures = recognizer.predict_files(files, embeddings=embeddings is not None, progress=progress)
    for failure in failures:
        stderr.print(f"[yellow]skipped:[/yellow] {failure.reason}", highlight=False, soft_wrap=True)
    frame = crop_predictions_table(rows, recognizer.labels, recognizer.config.name)
    if output is None:
        frame.to_csv(sys.stdout, index=False)
    else:
        write_table(frame, output)
    if embeddings is not None:
        write_array(
            np.stack([p.embedding for _, p in rows]) if rows else np.zeros((0, 0), np.float32), embeddings
        )
    if failures and not rows:
        raise InputError(f"none of the {len(failures)} inputs could be read")
