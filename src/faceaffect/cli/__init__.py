"""The ``faceaffect`` command: parse, call the API, save. Errors become one line on stderr and exit code 1.

Each sub-command lives in its own module and registers itself on the shared ``app``.
"""

from faceaffect.cli import analyze, batch, crops, export, features, heads, train  # noqa: F401  (registers the commands)
from faceaffect.cli.common import app

__all__ = ["app"]
