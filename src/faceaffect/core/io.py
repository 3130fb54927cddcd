"""Writing files atomically; result tables and arrays as CSV, Parquet, JSON lines or npy, by extension;
a lock that processes sharing a file take turns on."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from faceaffect.core.errors import FaceaffectError

TABLE_FORMATS = (".csv", ".parquet", ".jsonl")
WRITE_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})
"""errno values of writes that failed for the disk's reasons: full, quota, file size limit, read-only, I/O."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds. The file
    keeps the permissions of the one it replaces; a full disk (or quota, read-only file system) is a
    one-line FaceaffectError, and no partial file is left."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as error:
        raise FaceaffectError(f"cannot write {path}: {error.strerror or error}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _file_mode(path))  # mkstemp makes files private (0600)
        os.replace(tmp, path)
    except OSError as error:
        if error.errno not in WRITE_FAILURES:
            raise
        raise FaceaffectError(f"cannot write {path}: {os.strerror(error.errno)}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing) for the block: processes that
    lock the same file take turns (``fcntl.flock``; where the platform has none, the block runs unlocked)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        handle = open(path, "a")  # noqa: SIM115 (closed below, after unlocking)
    except OSError as error:
        raise FaceaffectError(f"cannot lock {path}: {error.strerror or error}") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_writable(path: str | Path, formats: Sequence[str] = TABLE_FORMATS, *, folder: bool = False) -> Path:
    """Fail early, before any work is spent, when ``path`` cannot be written: a format not in ``formats``
    (by extension; ignored for a ``folder``), or no writable folder to create it in."""
    path = Path(path)
    if not folder and path.suffix.lower() not in formats:
        raise FaceaffectError(f"unknown format {path.suffix!r} for {path}; use one of {', '.join(formats)}")
    if path.exists() and path.is_dir() != folder:
        raise FaceaffectError(f"cannot write {path}: it is {'not ' if folder else ''}a folder")
    parent = path if folder and path.is_dir() else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise FaceaffectError(f"cannot write {path}: {parent} is not a writable folder")
    return path


def _file_mode(path: Path) -> int:
    """The permissions of the file ``path`` replaces, or those ``open()`` gives a new file: 0666 less the
    process umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _writer(path: Path) -> Callable[[pd.DataFrame, Path], None]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return lambda frame, out: frame.to_csv(out, index=False)
    if suffix == ".parquet":
        return lambda frame, out: frame.to_parquet(out, index=False)
    if suffix == ".jsonl":  # no rows: an empty file (pandas would write one blank line)
        return lambda frame, out: frame.to_json(out, orient="records", lines=True) if len(frame) else None
    raise FaceaffectError(
        f"unknown table format {path.suffix!r} for {path}; use one of {', '.join(TABLE_FORMATS)}"
    )


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as CSV, Parquet or JSON lines (by extension), atomically."""
    path = Path(path)
    writer = _writer(path)
    with atomic_path(path) as tmp:
        writer(frame, tmp)
    return path


def write_array(array: np.ndarray, path: str | Path) -> Path:
    """Save an array as .npy, atomically."""
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise FaceaffectError(f"arrays are written as .npy, got {path}")
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)
    return path
