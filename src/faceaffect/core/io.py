"""Writing files atomically; result tables and arrays as CSV, Parquet, JSON lines or npy, by extension, whole
(:func:`write_table`, :func:`write_array`) or chunk by chunk as results are made (:class:`TableWriter`,
:class:`ArrayWriter`), and reading tables back chunk by chunk (:func:`read_table_chunks`); a lock that
processes sharing a file take turns on."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import struct
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from faceaffect.core.errors import FaceaffectError

if TYPE_CHECKING:
    import pyarrow as pa

TABLE_FORMATS = (".csv", ".parquet", ".jsonl")
TEXT_COLUMNS = ("source", "top_label", "model", "path", "dominant")  # read back as text, whatever they hold
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
        with disk_errors(path):
            yield Path(tmp)
            os.chmod(tmp, _file_mode(path))  # mkstemp makes files private (0600)
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def disk_errors(path: str | Path) -> Iterator[None]:
    """Writes of the block that fail for the disk's reasons (full, quota, read-only, I/O) become a one-line
    FaceaffectError naming ``path``; other errors pass unchanged."""
    try:
        yield
    except OSError as error:
        if error.errno not in WRITE_FAILURES:
            raise
        raise FaceaffectError(f"cannot write {path}: {os.strerror(error.errno)}") from None


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


def table_format(path: Path) -> str:
    """The table format of ``path`` by its extension; a FaceaffectError for others."""
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise FaceaffectError(
            f"unknown table format {path.suffix!r} for {path}; use one of {', '.join(TABLE_FORMATS)}"
        )
    return suffix


class _Staged:
    """A temporary file beside ``path`` (from :func:`atomic_path`) that replaces ``path`` on :meth:`commit`
    and is removed by :meth:`discard`; both close what :meth:`closing` registered first."""

    def __init__(self, path: Path) -> None:
        self._exits = ExitStack()
        self.tmp = self._exits.enter_context(atomic_path(path))

    def closing(self, close: Callable[[], object]) -> None:
        self._exits.callback(close)

    def commit(self) -> None:
        self._exits.close()

    def discard(self) -> None:
        self._exits.__exit__(FaceaffectError, FaceaffectError("discarded"), None)


class _Incremental:
    """What the incremental writers share: staged on first use, committed or discarded once, and a context
    manager that commits on success and discards on error."""

    path: Path | None
    _staged: _Staged | None = None
    _done = False

    def _stage(self) -> _Staged:
        if self._staged is None:
            assert self.path is not None
            self._staged = _Staged(self.path)
        return self._staged

    def commit(self) -> Path | None:
        """Finish the file and move it onto its path (stdout: flush); returns the path."""
        if self._done:
            return self.path
        with disk_errors(self.path or "the output"):
            self._finish()
            self._done = True
            if self._staged is not None:
                self._staged.commit()
        return self.path

    def discard(self) -> None:
        """Drop what was written (a file at the path is left as it was)."""
        if not self._done and self._staged is not None:
            self._staged.discard()
        self._done = True

    def _finish(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


class TableWriter(_Incremental):
    """A table written chunk by chunk as CSV, Parquet (one row group per chunk) or JSON lines, by extension,
    atomically: chunks go to a temporary file beside ``path``, flushed as they come, which replaces ``path``
    on :meth:`commit`. ``path=None`` writes to stdout instead: CSV, or JSON lines with ``lines=True``.
    ``schema`` (pyarrow) fixes the columns and their types, also of an empty table.

    >>> with TableWriter("t.parquet", schema) as table:  # doctest: +SKIP
    ...     table.append(first_rows); table.append(more_rows)
    """

    def __init__(self, path: str | Path | None, schema: pa.Schema, *, lines: bool = False) -> None:
        self.path = None if path is None else Path(path)
        self.format = table_format(self.path) if self.path is not None else ".jsonl" if lines else ".csv"
        self.schema = schema
        self.rows = 0
        self._text: IO[str] | None = None
        self._parquet: Any = None
        self._header = self.format == ".csv"  # a CSV header is still to write

    def _open(self) -> None:
        if self._text is not None or self._parquet is not None:
            return
        if self.path is None:
            self._text = sys.stdout
            return
        staged = self._stage()
        if self.format == ".parquet":
            import pyarrow.parquet as pq

            self._parquet = pq.ParquetWriter(staged.tmp, self.schema)
            staged.closing(self._parquet.close)
        else:
            self._text = open(staged.tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed on commit)
            staged.closing(self._text.close)

    def append(self, frame: pd.DataFrame) -> None:
        """Write rows (the schema's columns) and flush them."""
        self._open()
        with disk_errors(self.path or "the output"):
            if self._parquet is not None:
                import pyarrow as pa

                if len(frame):
                    table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
                    self._parquet.write_table(table)
            else:
                self._write_text(frame)
        self.rows += len(frame)

    def copy_from(self, path: str | Path) -> None:
        """Append every row of an existing table of the same format and columns (to continue it)."""
        self._open()
        rows = 0
        for chunk in read_table_chunks(path):
            if list(chunk.columns) != self.schema.names:
                raise FaceaffectError(f"cannot continue {path}: its columns are not those of this table")
            rows += len(chunk)
            if self._parquet is not None:
                self.append(chunk)
        if self._parquet is None:
            assert self._text is not None
            with open(path, encoding="utf-8", newline="") as old, disk_errors(self.path or "the output"):
                shutil.copyfileobj(old, self._text)
            self._header = False
            self.rows += rows

    def _write_text(self, frame: pd.DataFrame) -> None:
        assert self._text is not None
        if self.format == ".csv":
            frame.to_csv(self._text, index=False, header=self._header)
            self._header = False
        elif len(frame):
            self._text.write(frame.to_json(orient="records", lines=True).rstrip("\n") + "\n")
        self._text.flush()

    def _finish(self) -> None:
        self._open()
        if self._header:
            self._write_text(pd.DataFrame(columns=self.schema.names))


class ArrayWriter(_Incremental):
    """A float32 matrix written to .npy block by block, atomically; the header gets the row count on commit.

    >>> with ArrayWriter("embeddings.npy") as array:  # doctest: +SKIP
    ...     array.append(np.zeros((3, 512), np.float32))
    """

    HEADER_BYTES = 128  # room for any (rows, columns) shape; numpy aligns headers to 64 bytes as well

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".npy":
            raise FaceaffectError(f"arrays are written as .npy, got {self.path}")
        self.rows = 0
        self.columns: int | None = None
        self._file: IO[bytes] | None = None

    def _open(self, columns: int) -> IO[bytes]:
        if self._file is None:
            staged = self._stage()
            self._file = open(staged.tmp, "w+b")  # noqa: SIM115 (closed on commit)
            staged.closing(self._file.close)
            self._file.write(self._header(0, columns))
            self.columns = columns
        elif columns != self.columns:
            raise FaceaffectError(
                f"rows of {columns} values cannot follow rows of {self.columns} in {self.path}"
            )
        return self._file

    def append(self, rows: np.ndarray) -> None:
        """Write a block of rows (rows, columns) and flush it."""
        rows = np.ascontiguousarray(rows, dtype="<f4")
        handle = self._open(rows.shape[1])
        with disk_errors(self.path):
            handle.write(rows.tobytes())
            handle.flush()
        self.rows += rows.shape[0]

    def copy_from(self, path: str | Path) -> None:
        """Append every row of an existing .npy matrix (to continue it)."""
        old = np.load(path, mmap_mode="r")
        for start in range(0, old.shape[0], 4096):
            self.append(np.asarray(old[start : start + 4096]))
        if old.shape[0] == 0 and old.ndim == 2 and old.shape[1]:
            self._open(old.shape[1])

    def _header(self, rows: int, columns: int) -> bytes:
        text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {columns}), }}"
        body = text.ljust(self.HEADER_BYTES - 11) + "\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body.encode("latin1")

    def _finish(self) -> None:
        handle = self._open(self.columns or 0)
        handle.seek(0)
        handle.write(self._header(self.rows, self.columns or 0))
        handle.flush()


def read_table_chunks(
    path: str | Path, columns: Sequence[str] | None = None, chunk_rows: int = 65536
) -> Iterator[pd.DataFrame]:
    """A CSV, Parquet or JSON lines table (by extension) as DataFrames of at most ``chunk_rows`` rows, so a
    table of any length is read in bounded memory; ``columns`` picks some."""
    path = Path(path)
    suffix = table_format(path)
    wanted = None if columns is None else list(columns)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=wanted):
            yield batch.to_pandas()
    elif suffix == ".csv":
        text = dict.fromkeys(TEXT_COLUMNS, str)
        yield from pd.read_csv(path, usecols=wanted, chunksize=chunk_rows, dtype=text)
    else:
        for chunk in pd.read_json(path, lines=True, chunksize=chunk_rows, dtype=False):
            yield chunk if wanted is None else chunk[wanted]
