"""Jobs on disk: one folder per job under ``STATE/jobs/ID`` with the upload, ``job.json`` (written atomically
at every change of status) and the outputs; a server that restarts finds them all again.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from faceaffect.core.io import atomic_path
from faceaffect.serve.errors import NotFound, Unprocessable

OUTPUTS = ("annotated", "plots")  # besides the table and the summary, which every job writes
MAX_INTERRUPTIONS = 2  # a job the server stopped under this many times (crash, kill) is not retried again
_ID = re.compile(r"[0-9a-f]{32}")


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass
class Job:
    """One analysis of one upload. ``options``: the AnalyzerOptions it runs with (as a dict); ``outputs``:
    those of :data:`OUTPUTS` asked for; ``result``: frames, faces, tracks, model and files once done."""

    id: str
    name: str
    kind: str
    input: str
    options: dict[str, Any]
    outputs: list[str]
    status: Status = Status.QUEUED
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    done: int = 0
    total: int | None = None
    error: str | None = None
    interruptions: int = 0
    result: dict[str, Any] | None = None

    @property
    def folder(self) -> Path:
        return Path(self.input).parent

    @property
    def finished(self) -> bool:
        return self.status in (Status.DONE, Status.FAILED)

    def public(self) -> dict[str, Any]:
        """What the API shows (no server paths)."""
        return {
            "id": self.id, "status": self.status.value, "kind": self.kind, "name": self.name,
            "created": self.created, "updated": self.updated,
            "progress": {"done": self.done, "total": self.total}, "error": self.error,
            "options": self.options, "outputs": self.outputs, "result": self.result,
        }  # fmt: skip


def parse_outputs(text: str | None) -> list[str]:
    """The optional outputs asked for: a comma-separated list of :data:`OUTPUTS`."""
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    unknown = sorted(set(names) - set(OUTPUTS))
    if unknown:
        raise Unprocessable(f"unknown output {unknown[0]!r}; the outputs are: {', '.join(OUTPUTS)}")
    return sorted(set(names), key=OUTPUTS.index)


class JobStore:
    """Every job of a state folder, in memory and on disk; safe to use from several threads."""

    def __init__(self, root: Path) -> None:
        self.root = root / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def new_folder(self) -> tuple[str, Path]:
        """A fresh job id and its (new, empty) folder."""
        job_id = secrets.token_hex(16)
        folder = self.root / job_id
        folder.mkdir()
        return job_id, folder

    def add(self, job: Job) -> Job:
        self.save(job)
        with self._lock:
            self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id) if _ID.fullmatch(job_id) else None
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        return job

    def all(self) -> list[Job]:
        """Every job, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda job: -job.created)

    def save(self, job: Job, **changes: Any) -> None:
        """Change fields of ``job`` and write its job.json atomically (a deleted job is not written again)."""
        for name, value in changes.items():
            setattr(job, name, value)
        job.updated = time.time()
        if not job.folder.is_dir():
            return
        with atomic_path(job.folder / "job.json") as tmp:
            tmp.write_text(json.dumps({**asdict(job), "status": job.status.value}, indent=1))

    def remove(self, job: Job) -> None:
        """Forget ``job`` and delete its folder."""
        with self._lock:
            self._jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def load(self) -> list[Job]:
        """Read every job folder; returns the unfinished jobs, to queue again. A job that was running when the
        server stopped without saying so (a crash, a kill) counts an interruption; after
        :data:`MAX_INTERRUPTIONS` it is marked failed with the reason instead. Unreadable folders are removed
        (a crash while a job was being created)."""
        unfinished = []
        for folder in sorted(self.root.iterdir()):
            try:
                data = json.loads((folder / "job.json").read_text())
                job = Job(**{**data, "status": Status(data["status"])})
            except (OSError, ValueError, TypeError, KeyError):
                shutil.rmtree(folder, ignore_errors=True)
                continue
            if job.status == Status.RUNNING:
                job.interruptions += 1
                if job.interruptions >= MAX_INTERRUPTIONS:
                    reason = f"the server stopped {job.interruptions} times while this job ran; not retried"
                    self.save(job, status=Status.FAILED, error=reason)
                else:
                    self.save(job, status=Status.QUEUED, done=0)
            with self._lock:
                self._jobs[job.id] = job
            if not job.finished:
                unfinished.append(job)
        return sorted(unfinished, key=lambda job: job.created)
