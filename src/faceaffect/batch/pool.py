"""What the driver asks of an engine's pool of workers (:class:`~faceaffect.batch.local.LocalPool` on this
machine, :class:`~faceaffect.batch.ray_pool.RayPool` on a Ray cluster): each worker runs one task at a time,
so a worker's death is blamed on exactly the task it was running."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class Finished:
    """A task given back by a pool: with the worker's record, or ``record`` None when the worker died
    while running it (``reason`` says how; the pool has replaced the worker)."""

    task: dict[str, Any]
    record: dict[str, Any] | None
    reason: str = ""


class WorkerPool(Protocol):
    """Workers that run tasks (dicts) one at a time each."""

    @property
    def size(self) -> int: ...

    @property
    def idle(self) -> int:
        """Workers without a task."""
        ...

    def submit(self, task: dict[str, Any]) -> None:
        """Give ``task`` to an idle worker (there must be one)."""
        ...

    def next(self) -> Finished:
        """Wait for the next task to finish, or for the worker running it to die."""
        ...

    def close(self) -> None:
        """End every worker (those still running a task too)."""
        ...
