"""The record of a corpus run in its output folder: ``manifest.csv``, one row per input with its status,
frames, faces, seconds and error, kept by the driver alone and rewritten atomically as inputs finish; and
``batch.json``, the settings the outputs were made with, so that a run resumes only what it would make
the same way.

Columns of ``manifest.csv``:

==========  ==================================================================================
input       the input's absolute path
name        its outputs' path in the folder, without suffix (features: the video id)
kind        video, image, images (a folder of images) or, for features, frames
status      done, failed, or pending (not run yet: listed from the start of a run)
output      the table (features: the feature file), relative to the output folder
frames      frames (images) analysed
faces       faces found (table rows)
skipped     unreadable images left out
seconds     time the worker spent on the input, model loading excluded
attempts    runs started: more than 1 when a worker died while running the input
worker      host:pid of the worker that ran it last
error       why it failed, in one line
==========  ==================================================================================
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from faceaffect.core.errors import FaceaffectError, InputError
from faceaffect.core.io import atomic_path, write_table

MANIFEST = "manifest.csv"
SETTINGS = "batch.json"
LOCK = ".batch.lock"
DONE, FAILED, PENDING = "done", "failed", "pending"
SAVE_SECONDS_PER_ROW = 1e-4  # the manifest is rewritten at most every 0.1 ms per row (100,000 inputs: every
# 10 s), so that rewriting it stays a small share of a run however many inputs it has


@dataclass
class Record:
    """One input's row of the manifest (see the module docstring); ``entry`` carries a feature store entry
    from the worker to the driver and is not written."""

    input: str
    name: str
    kind: str
    status: str = ""
    output: str = ""
    frames: int = 0
    faces: int = 0
    skipped: int = 0
    seconds: float = 0.0
    attempts: int = 0
    worker: str = ""
    error: str = ""
    entry: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        return cls(**data)


COLUMNS = [field.name for field in fields(Record) if field.name != "entry"]


class Manifest:
    """``manifest.csv`` of an output folder: the rows of earlier runs, updated as inputs finish. Saving
    rewrites the file atomically, at most every ``SAVE_SECONDS_PER_ROW`` per row, and always on :meth:`save`;
    ``on_save`` is called each time (to save what the records refer to, such as a feature store's own
    manifest)."""

    def __init__(self, folder: Path, on_save: Callable[[], None] | None = None) -> None:
        self.path = folder / MANIFEST
        self.records: dict[str, Record] = _read(self.path) if self.path.is_file() else {}
        self.on_save = on_save
        self._next_save = 0.0

    def update(self, record: Record) -> None:
        """Enter ``record`` (replacing the input's earlier one) and save when it is time."""
        self.records[record.input] = record
        if time.monotonic() >= self._next_save:
            self.save()

    def save(self) -> None:
        if self.on_save is not None:
            self.on_save()
        rows = [asdict(record) for record in self.records.values()]
        write_table(pd.DataFrame(rows, columns=COLUMNS), self.path)
        self._next_save = time.monotonic() + SAVE_SECONDS_PER_ROW * len(rows)


def _read(path: Path) -> dict[str, Record]:
    try:
        table = pd.read_csv(path, dtype={"error": str, "worker": str}, keep_default_na=False)
    except (ValueError, OSError) as error:
        raise InputError(f"cannot read the manifest {path}: {error}") from None
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise InputError(f"{path} is not a batch manifest (no column {sorted(missing)[0]!r})")
    records = [Record(**{name: row[name] for name in COLUMNS}) for row in table.to_dict("records")]
    return {record.input: record for record in records}


def check_settings(folder: Path, settings: dict[str, Any]) -> None:
    """Record ``settings`` in ``folder/batch.json``; when it holds others, a one-line error: resuming would
    mix outputs made two ways."""
    path = folder / SETTINGS
    if path.is_file():
        try:
            earlier = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(f"cannot read {path}: {error}") from None
        if earlier != settings:
            changed = sorted(key for key in settings.keys() | earlier.keys()
                             if settings.get(key) != earlier.get(key))  # fmt: skip
            raise FaceaffectError(
                f"{folder} holds outputs made with other settings ({', '.join(changed)} differ); "
                "use another output folder, or the same settings to resume"
            )
        return
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(settings, indent=1, sort_keys=True) + "\n", encoding="utf-8")


@contextmanager
def claimed(folder: Path) -> Iterator[None]:
    """Hold ``folder`` for one run: a second run on it at the same time is a one-line error (both would
    keep its manifest; where ``fcntl`` is missing, as on Windows, nothing checks); files half-written when
    a worker was killed (``.*.part``) are removed first."""
    with open(folder / LOCK, "a") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:
            pass
        except OSError:
            raise FaceaffectError(f"another batch run is writing to {folder}") from None
        for stale in folder.rglob(".*.part"):
            stale.unlink(missing_ok=True)
        yield
