"""The one progress hook of every long job: ``progress(done, total)``, total None while unknown.

Nothing below the user-facing layer prints: library code reports through this hook, and the CLI (a rich
bar), the service (a job's status) or a corpus run (a driver's bar) decide what to show.

>>> seen = []
>>> report: Progress = lambda done, total: seen.append((done, total))
>>> report(3, None); report(4, 10); seen
[(3, None), (4, 10)]
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Called with the units done so far (frames, files, bytes) and the total, or None when unknown."""

    def __call__(self, done: int, total: int | None, /) -> None: ...
