"""What every ``faceaffect`` sub-command shares: the app, one-line errors, progress bars, common options."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from faceaffect.core.errors import FaceaffectError, InputError
from faceaffect.core.limits import Limits, env_name
from faceaffect.options import AnalyzerOptions, RuntimeOptions

app = typer.Typer(
    help="Facial affect analysis: expressions, valence and arousal per face.", no_args_is_help=True
)
stderr = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def say(message: str) -> None:
    """One message line on stderr (rich markup allowed), never broken at the terminal's width: paths and
    figures stay whole for people and for programs reading the output."""
    stderr.print(message, highlight=False, soft_wrap=True)


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (line breaks included) as one space."""
    return " ".join(text.split())


def report_skipped(reasons: Sequence[str], kept: int) -> None:
    """Say which inputs were skipped and why; when none was ``kept``, an InputError instead (the reason
    itself for a single input, so that it stays one line)."""
    if not kept and len(reasons) == 1:
        raise InputError(reasons[0])
    for reason in reasons:
        say(f"[yellow]skipped:[/yellow] {escape(one_line(reason))}")
    if not kept and reasons:
        raise InputError(f"none of the {len(reasons)} inputs could be read")


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a FaceaffectError into one line on stderr and exit code 1 (no traceback for user mistakes)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except FaceaffectError as error:
            say(f"[red]error:[/red] {escape(one_line(str(error)))}")
            raise typer.Exit(1) from None

    return wrapper


def progress_display(disable: bool = False, *extra: ProgressColumn) -> Progress:
    """The one progress display of every command: description, bar, done/total, the ``extra`` columns
    (a rate), time left; on stderr, when it is a terminal (elsewhere a transient bar shows nothing but
    would leave a blank line before the messages)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeRemainingColumn(),
    )
    return Progress(*columns, console=stderr, transient=True, disable=disable or not stderr.is_terminal)


@contextmanager
def progress_bar(description: str, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr, driven through a ``(done, total)`` callback."""
    if quiet:
        yield lambda done, total: None
        return
    with progress_display() as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


RUNTIME = RuntimeOptions()  # the defaults every command's flags show
ANALYSIS = AnalyzerOptions()


def runtime_options(
    model: str, device: str, engine: str, threads: int | None, batch_size: int, offline: bool
) -> RuntimeOptions:
    """The runtime flags every model-running command shares, as options (``--offline`` absent: the
    environment decides)."""
    return RuntimeOptions(model, device, engine, threads, batch_size, offline or None)


ModelOption = Annotated[
    str,
    typer.Option(
        "--model", "-m", help="Registered model name or saved model folder (see `faceaffect models`)."
    ),
]
DeviceOption = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")]
EngineOption = Annotated[
    str,
    typer.Option(
        help="onnx (ONNX Runtime), torch, or auto: onnx on CPU when an ONNX file exists, torch on GPU."
    ),
]
BatchSizeOption = Annotated[int, typer.Option(min=1, help="Faces per batch at most.")]
ThreadsOption = Annotated[
    int | None,
    typer.Option(min=1, help="ONNX Runtime threads per batch (default 1, one batch per physical core)."),
]
OfflineOption = Annotated[bool, typer.Option(help="Never download; use only cached or local weights.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
MaxImagePixelsOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help=f"Skip images with more pixels, as decompression bombs (default {Limits().max_image_pixels}, "
        f"or ${env_name('max_image_pixels')}).",
    ),
]
MaxFramePixelsOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help=f"Refuse videos whose frames have more pixels, before decoding (default "
        f"{Limits().max_frame_pixels}, or ${env_name('max_frame_pixels')}).",
    ),
]
