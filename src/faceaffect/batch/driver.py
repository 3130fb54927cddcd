"""The driver of a corpus run: find the inputs, skip those already done, hand the others to a pool of
workers one at a time each, run again an input whose worker died (up to ``retries`` times), and record
every outcome in the output folder's manifest as it comes.

>>> job = Job("out/", analysis=AnalyzerOptions(target_fps=5))  # doctest: +SKIP
>>> report = run_batch(["clips/"], "out/", job, PoolOptions(engine="local"))  # doctest: +SKIP
>>> len(report.done), len(report.failed)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from faceaffect.batch.inputs import Task, analysis_tasks, feature_tasks, unique_names
from faceaffect.batch.manifest import DONE, FAILED, PENDING, Manifest, Record, check_settings, claimed
from faceaffect.batch.pool import Finished, WorkerPool
from faceaffect.batch.worker import Job
from faceaffect.core.errors import FaceaffectError, InputError
from faceaffect.core.io import check_writable
from faceaffect.core.progress import Progress
from faceaffect.downstream.features import FeatureStore, VideoEntry

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class PoolOptions:
    """Where a run's workers run. ``engine``: ``local`` (processes on this machine) or ``ray`` (actors on
    the cluster at ``address``; None: a new local one). ``workers``: how many (default: local, the physical
    cores; Ray, as many as the cluster's CPUs or GPUs hold). ``cores``: CPU cores per worker (default:
    local, the cores shared out; Ray, 1). ``gpus``: GPUs per Ray actor (default 1 where the cluster has
    GPUs and the device is not cpu). ``retries``: runs more of an input whose worker died."""

    engine: str = "local"
    address: str | None = None
    workers: int | None = None
    cores: int | None = None
    gpus: float | None = None
    retries: int = 2

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise FaceaffectError(f"unknown engine {self.engine!r}; use {' or '.join(ENGINES)}")
        if self.address is not None and self.engine != "ray":
            raise FaceaffectError("an address names a Ray cluster: use it with the ray engine")
        for name in ("workers", "cores"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise FaceaffectError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.retries < 0 or (self.gpus is not None and self.gpus < 0):
            raise FaceaffectError("retries and gpus must not be negative")


@dataclass
class BatchReport:
    """What a run did: ``records`` of the inputs it ran (in the order they finished), the inputs it found
    ``already_done``, its ``workers``, and its wall ``seconds`` (``start_seconds`` of them starting the
    workers and loading their models)."""

    out: Path
    records: list[Record] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    workers: int = 0
    seconds: float = 0.0
    start_seconds: float = 0.0

    @property
    def done(self) -> list[Record]:
        return [record for record in self.records if record.status == DONE]

    @property
    def failed(self) -> list[Record]:
        return [record for record in self.records if record.status == FAILED]

    @property
    def frames(self) -> int:
        return sum(record.frames for record in self.records)


def run_batch(
    inputs: Sequence[str | Path],
    out: str | Path,
    job: Job,
    pool: PoolOptions | None = None,
    *,
    progress: Progress | None = None,
    on_record: Callable[[Record], None] | None = None,
) -> BatchReport:
    """Analyse (or extract the features of) every input into ``out``; see the module docstring.

    ``inputs`` are files, folders, glob patterns or lists of paths (see :mod:`faceaffect.batch.inputs`).
    ``progress(done, total)`` counts inputs; ``on_record`` sees each input's record as it finishes.
    """
    pool = pool or PoolOptions()
    out = check_writable(out, folder=True).absolute()
    job = replace(job, out=str(out))
    tasks = feature_tasks(inputs) if job.features else analysis_tasks(inputs)
    if not tasks:
        raise InputError("no videos, images or folders of images in " + ", ".join(map(str, inputs)))
    out.mkdir(parents=True, exist_ok=True)
    with claimed(out):
        check_settings(out, job.settings())
        store = _feature_store(job, tasks) if job.features else None
        manifest = Manifest(out, on_save=None if store is None else store.flush)
        if store is None:
            tasks = unique_names(tasks, {record.name: record.input for record in manifest.records.values()})
        done = [task for task in tasks if _finished(task, manifest, store, out)]
        report = BatchReport(out, already_done=[task.path for task in done])
        pending = _pending([task for task in tasks if task not in done], manifest, job)
        if pending:
            _run(pending, job, pool, manifest, store, report, progress, on_record)
    return report


def _pending(tasks: list[Task], manifest: Manifest, job: Job) -> list[Task]:
    """The inputs to run, largest first, each listed in the manifest (pending, unless an earlier run's
    failure is there): if the run stops, the manifest shows what is left."""
    for task in tasks:
        pending = Record(task.path, task.name, task.kind, PENDING, job.output(task))
        manifest.records.setdefault(task.path, pending)
    if tasks:
        manifest.save()
    return sorted(tasks, key=_size, reverse=True)


def _size(task: Task) -> int:
    """Bytes to read for an input: the longest inputs go first, so no worker is left with one at the end
    while the others idle."""
    try:
        return sum(os.stat(path).st_size for path in task.files or (task.path,))
    except OSError:
        return 0


def _finished(task: Task, manifest: Manifest, store: FeatureStore | None, out: Path) -> bool:
    """Whether an earlier run made the input's outputs (they are written atomically: they are whole)."""
    if store is not None:
        return task.name in store
    record = manifest.records.get(task.path)
    return record is not None and record.status == DONE and (out / record.output).is_file()


def _feature_store(job: Job, tasks: list[Task]) -> FeatureStore:
    """The feature store of the output folder, created or resumed by the driver, its only manifest writer."""
    from faceaffect.downstream.extract import store_settings
    from faceaffect.downstream.features import model_info
    from faceaffect.hub.resolve import resolve_model

    has_videos = any(task.kind == "video" for task in tasks)
    settings = store_settings(has_videos, **job.extraction)
    config = resolve_model(job.runtime.model).config
    return FeatureStore.create(job.out, model_info(config), job.storage, settings)


def _run(
    pending: list[Task],
    job: Job,
    options: PoolOptions,
    manifest: Manifest,
    store: FeatureStore | None,
    report: BatchReport,
    progress: Progress | None,
    on_record: Callable[[Record], None] | None,
) -> None:
    start = time.perf_counter()
    queue = deque(pending)
    started = dict.fromkeys((task.path for task in pending), 0)
    if progress is not None:
        progress(0, len(pending))
    pool = _start_pool(job, options, len(pending))
    report.workers, report.start_seconds = pool.size, time.perf_counter() - start
    try:
        while queue or pool.idle < pool.size:
            _hand_out(queue, pool, started)
            finished = pool.next()
            task = Task.from_dict(finished.task)
            if finished.record is None and started[task.path] <= options.retries:
                queue.appendleft(task)
                continue
            record = _record(job, task, finished, started[task.path])
            if store is not None and record.entry is not None:
                store.record(task.name, VideoEntry(**record.entry), flush=False)
            manifest.update(record)
            report.records.append(record)
            _hand_out(queue, pool, started)  # the next input starts before anyone looks at this record
            if progress is not None:
                progress(len(report.records), len(pending))
            if on_record is not None:
                on_record(record)
    finally:
        pool.close()
        manifest.save()
        report.seconds = time.perf_counter() - start


def _hand_out(queue: deque[Task], pool: WorkerPool, started: dict[str, int]) -> None:
    while queue and pool.idle:
        task = queue.popleft()
        started[task.path] += 1
        pool.submit(task.to_dict())


def _record(job: Job, task: Task, finished: Finished, attempts: int) -> Record:
    if finished.record is None:
        error = f"its worker died on each of {attempts} runs (last: {finished.reason})"
        record = Record(task.path, task.name, task.kind, FAILED, job.output(task), error=error)
    else:
        record = Record.from_dict(finished.record)
    record.attempts = attempts
    return record


def _start_pool(job: Job, options: PoolOptions, tasks: int) -> WorkerPool:
    if options.engine == "ray":
        from faceaffect.batch.ray_pool import RayPool

        return RayPool(job, tasks, address=options.address, workers=options.workers, cores=options.cores,
                       gpus=options.gpus)  # fmt: skip
    from faceaffect.batch.local import LocalPool
    from faceaffect.runtime.onnx_engine import physical_cores

    size = min(options.workers or physical_cores(), tasks)
    cores = options.cores or max(1, physical_cores() // size)
    return LocalPool(replace(job, runtime=job.runtime.replace(cores=cores)).to_dict(), size)
