"""The Ray engine: a pool of actors on a Ray cluster (``pip install 'faceaffect[ray]'``), each loading the
models once and running one input at a time. CPU actors reserve ``cores`` CPUs and fill that many with
recognition batches; where the cluster has GPUs and the device is not ``cpu``, actors reserve ``gpus`` of
one GPU each and run the model there. An actor that dies (its process or node lost) is replaced and the
input it ran is handed back to the driver, which runs it again.

The only module that imports Ray.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any

from faceaffect.batch.pool import Finished
from faceaffect.batch.worker import Job, Worker
from faceaffect.core.errors import FaceaffectError
from faceaffect.core.extras import optional_import


class RayPool:
    """Actors for ``job`` on the cluster at ``address`` (None: the one this process is connected to, else
    a new local one). ``workers`` (default: as many as the cluster's CPUs, or GPUs, hold), capped at
    ``tasks``; ``cores`` CPUs per actor (default 1); ``gpus`` per actor (default: 1 where the cluster has
    GPUs and the job's device is not ``cpu``, else 0)."""

    def __init__(
        self,
        job: Job,
        tasks: int,
        *,
        address: str | None = None,
        workers: int | None = None,
        cores: int | None = None,
        gpus: float | None = None,
    ) -> None:
        self.ray = optional_import("ray", "--engine ray", extra="ray")
        self.owns_ray = not self.ray.is_initialized()
        if self.owns_ray:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            self.ray.init(
                address=address, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False
            )
        try:
            total = self.ray.cluster_resources()
            cores = cores or 1
            gpus = _gpus_per_actor(gpus, total.get("GPU", 0.0), job.runtime.device)
            per_actor = total.get("GPU", 0.0) / gpus if gpus else total.get("CPU", 1.0) / cores
            size = max(1, min(workers or int(per_actor), tasks))
            self.job = replace(job, runtime=job.runtime.replace(cores=cores)).to_dict()
            self.actor_class = self.ray.remote(Worker).options(
                num_cpus=cores, num_gpus=gpus, max_restarts=0, max_concurrency=1
            )
            self.actors = [self.actor_class.remote(self.job) for _ in range(size)]
            for _, problem in self.ray.get([actor.ready.remote() for actor in self.actors]):
                if problem:
                    raise FaceaffectError(problem)
        except BaseException:
            self.close()
            raise
        self.running: dict[Any, tuple[int, dict[str, Any]]] = {}  # object ref -> (actor index, task)

    @property
    def size(self) -> int:
        return len(self.actors)

    @property
    def idle(self) -> int:
        return self.size - len(self.running)

    def submit(self, task: dict[str, Any]) -> None:
        """Give ``task`` to an idle actor (there must be one)."""
        busy = {index for index, _ in self.running.values()}
        index = next(i for i in range(self.size) if i not in busy)
        self.running[self.actors[index].run.remote(task)] = (index, task)

    def next(self) -> Finished:
        """The next task to finish, or whose actor died (that actor is replaced)."""
        (ref,), _ = self.ray.wait(list(self.running), num_returns=1)
        index, task = self.running.pop(ref)
        exceptions = self.ray.exceptions
        try:
            return Finished(task, self.ray.get(ref))
        except (exceptions.RayActorError, exceptions.ObjectLostError) as error:
            self.ray.kill(self.actors[index], no_restart=True)
            self.actors[index] = self.actor_class.remote(self.job)
            return Finished(task, None, f"its Ray actor was lost: {type(error).__name__}")

    def close(self) -> None:
        """End the actors, and the local Ray instance if this pool started it."""
        for actor in getattr(self, "actors", []):
            self.ray.kill(actor, no_restart=True)
        self.actors = []
        if self.owns_ray:
            self.ray.shutdown()

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _gpus_per_actor(asked: float | None, cluster_gpus: float, device: str) -> float:
    if asked is None:
        return 1.0 if cluster_gpus and device != "cpu" else 0.0
    if asked and not cluster_gpus:
        raise FaceaffectError(f"{asked} GPUs per worker asked, but the Ray cluster has no GPU")
    return asked
