"""The ``faceaffect`` command: parse, call the API, save. Errors become one line on stderr: exit code 1 for
a user mistake or a file that cannot be used, 2 for a usage mistake (an unknown flag, a missing argument).

Each sub-command lives in its own module and registers itself on the shared ``app``; :func:`main` runs it.
"""

from __future__ import annotations

import errno
import os
import sys

import typer
from rich.markup import escape

from faceaffect.cli import (  # noqa: F401  (registers them)
    analyze,
    batch,
    crops,
    export,
    features,
    heads,
    serve,
    train,
)
from faceaffect.cli.common import app, one_line, say
from faceaffect.core.io import WRITE_FAILURES
from faceaffect.video.decode import opening

__all__ = ["app", "main"]

# typer vendors click (0.2x) or re-exports it (older); either way its error classes are the bases of the
# one it exports
_CLICK_ERRORS = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
UsageError, ClickException = _CLICK_ERRORS["UsageError"], _CLICK_ERRORS["ClickException"]


def main() -> None:
    """Run the command line and exit with its code (see the module docstring)."""
    try:
        code = app(prog_name="faceaffect", standalone_mode=False)
    except UsageError as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # a command group alone: its help
            typer.echo(error.format_message())
            code = 2
        else:
            command = error.ctx.command_path if error.ctx is not None else "faceaffect"
            message = escape(one_line(error.format_message()))
            say(f"[red]error:[/red] {message} (see `{command} --help`)")
            code = 2
    except ClickException as error:
        say(f"[red]error:[/red] {escape(one_line(error.format_message()))}")
        code = error.exit_code
    except typer.Abort:
        say("[yellow]interrupted[/yellow]")
        code = 130
    except OSError as error:  # stdout on a full disk or a closed pipe (files are written by atomic_path)
        if error.errno not in WRITE_FAILURES | {errno.EPIPE}:
            raise
        say(f"[red]error:[/red] cannot write the output: {os.strerror(error.errno)}")
        code = 1
    code = _flushed(code if isinstance(code, int) else 0)
    if opening():  # a thread still blocked opening a stream would crash Python's shutdown: skip it
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _flushed(code: int) -> int:
    """``code``, or 1 when what is left in stdout's buffer cannot be written (said in one line); stdout then
    points at /dev/null, so that Python's own flush at exit has nothing left to fail on."""
    try:
        sys.stdout.flush()
        return code
    except OSError as error:
        if code == 0:
            say(f"[red]error:[/red] cannot write the output: {os.strerror(error.errno or errno.EIO)}")
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return code or 1
