"""Results written to files as they are made: the table (and embeddings) chunk by chunk, flushed as they go,
the annotated video frame by frame, the per-track summary as running sums; at the end the summary and the
plots (read back from the table). Nothing per frame is kept once its rows are written.

However a run ends, every finished frame is kept: interrupted (Ctrl-C, SIGTERM) or stopped by an error, the
files are completed with the frames done so far (a valid table, summary, plots and video), and a resume
state beside the table lets ``--resume`` go on from there. Only a run that finished no frame leaves no files.

>>> sink = FileSink("t.parquet", summary="s.csv", video="a.mp4", plots="plots/")  # doctest: +SKIP
>>> Analyzer().run("long.mp4", sink)  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from faceaffect.core.errors import FaceaffectError, InputError
from faceaffect.core.io import ArrayWriter, TableWriter, read_table_chunks, write_table
from faceaffect.core.types import FrameResult
from faceaffect.results import (
    TrackSummary,
    embedding_schema,
    embeddings_table,
    frame_embeddings,
    frames_table,
    table_schema,
)
from faceaffect.sink.base import Mark, RunEnd, RunInfo
from faceaffect.sink.plots import plot_table_file
from faceaffect.sink.resume import ResumeState, input_size, state_path
from faceaffect.video.decode import InputFailure, SourceKind

CHUNK_ROWS = 2048  # rows per table chunk (a Parquet row group), and per update of the summary's sums
FLUSH_SECONDS = 5.0  # chunks at least this often, so that slow inputs are on disk too


class FileSink:
    """The outputs of ``faceaffect analyze``, written while the input is analysed.

    ``table``: the table (.csv, .parquet, .jsonl); None writes it to stdout (CSV, or JSON lines with
    ``json_lines``, one flush per frame for live streams). ``summary``: per-track summary table.
    ``embeddings``: .npy or .parquet, one row per table row. ``video``: annotated video (for an image input
    an image file, for a folder a folder). ``plots``: folder for the plots. ``resume``: continue the run
    that was interrupted writing ``table``, if there is one. ``name``: the input's name in the table's
    ``source`` column and the plots' titles (default: its path; a service names an upload as its client did).
    """

    wants_images: bool

    def __init__(
        self,
        table: str | Path | None = None,
        *,
        summary: str | Path | None = None,
        embeddings: str | Path | None = None,
        video: str | Path | None = None,
        plots: str | Path | None = None,
        json_lines: bool = False,
        resume: bool = False,
        name: str | None = None,
    ) -> None:
        self.table_path, self.summary_path = _path(table), _path(summary)
        self.embeddings_path, self.video_path, self.plots_path = _path(embeddings), _path(video), _path(plots)
        if resume and self.table_path is None:
            raise FaceaffectError("only a run that writes its table to a file (-o) can be resumed")
        self.json_lines, self.resume, self.name = json_lines, resume, name
        self.wants_images = video is not None
        self.written: list[Path] = []
        self.frames = 0
        self.resumed: ResumeState | None = None
        self.summary = TrackSummary(())  # the run's labels come with start()
        self.live = False
        self._exits = ExitStack()
        self._table: TableWriter | None = None
        self._plot_table: TableWriter | None = None
        self._embeddings: ArrayWriter | TableWriter | None = None
        self._video: Any = None
        self._pending: list[FrameResult] = []
        self._pending_rows = 0
        self._unsummed: list[pd.DataFrame] = []  # rows written, not yet in the summary's sums
        self._unsummed_rows = 0
        self._flushed = time.monotonic()
        self._mark: Mark | None = None

    def start(self, info: RunInfo) -> ResumeState | None:
        """Open the writers; when resuming, copy what the interrupted run wrote and return its state."""
        self.info = info
        if self.embeddings_path is not None and not info.options.get("embeddings"):
            raise FaceaffectError("embeddings are not computed in this run; analyse with embeddings=True")
        state = ResumeState.load(self.table_path) if self.resume and self.table_path else None
        if state is not None:
            state.check(info, self._outputs())
        self.live = info.kind == SourceKind.CAMERA
        self.summary = TrackSummary(info.labels)
        schema = table_schema(info.labels)
        try:
            self._table = self._plot_table = TableWriter(self.table_path, schema, lines=self.json_lines)
            if self.plots_path is not None and self.table_path is None:  # plots are drawn from a table file
                scratch = Path(self._exits.enter_context(tempfile.TemporaryDirectory(prefix="faceaffect-")))
                self._plot_table = TableWriter(scratch / "table.parquet", schema)
            self._embeddings = self._embeddings_writer(info)
            self._video = self._video_writer(info, extend=state is not None)
            if state is not None:
                self._continue(state)
        except BaseException:
            self._discard()
            self._exits.close()
            raise
        self.resumed = state
        return state

    def write(self, frame: FrameResult, image: np.ndarray | None, mark: Mark | None) -> None:
        """Take a finished frame (its rows go out with the next chunk; its picture now)."""
        self._pending.append(frame)
        self._pending_rows += len(frame.faces)
        if self._video is not None:
            self._video.write(image, frame)
        self.frames += 1
        self._mark = mark
        each_frame = self.live and self.table_path is None  # rows printed as they come
        if each_frame or self._pending_rows >= CHUNK_ROWS or time.monotonic() - self._flushed > FLUSH_SECONDS:
            self._flush()

    def finish(self, end: RunEnd) -> None:
        """Complete every output with the frames done; keep a resume state when the run was stopped."""
        try:
            self._flush()
            if self.frames == 0 and self.resumed is None and (end.stopped is not None or end.failures):
                self._discard()
                if end.stopped is None:  # nothing could be read
                    raise _unreadable(end.failures)
                return
            self._commit(end)
        except BaseException:
            self._discard()
            raise
        finally:
            self._exits.close()

    @property
    def rows(self) -> int:
        return self._table.rows if self._table is not None else 0

    def _outputs(self) -> dict[str, str | None]:
        paths = {"table": self.table_path, "embeddings": self.embeddings_path, "video": self.video_path}
        return {name: None if path is None else str(path.resolve()) for name, path in paths.items()}

    def _embeddings_writer(self, info: RunInfo) -> ArrayWriter | TableWriter | None:
        if self.embeddings_path is None:
            return None
        if self.embeddings_path.suffix.lower() == ".npy":
            return ArrayWriter(self.embeddings_path)
        return TableWriter(self.embeddings_path, embedding_schema(info.embedding_dim))

    def _video_writer(self, info: RunInfo, extend: bool) -> Any:
        from faceaffect.render.video import AnnotatedImages, AnnotatedVideo

        if self.video_path is None:
            return None
        if info.kind in (SourceKind.IMAGE, SourceKind.IMAGES):
            return AnnotatedImages(self.video_path, info.source, info.kind == SourceKind.IMAGE)
        video = AnnotatedVideo(self.video_path, info.fps, extend=extend)
        video.__enter__()
        return video

    def _continue(self, state: ResumeState) -> None:
        """Copy the interrupted run's rows into the new files and count them into the summary."""
        assert self.table_path is not None and self._table is not None
        self._table.copy_from(self.table_path)
        for chunk in read_table_chunks(self.table_path):
            self.summary.add(chunk)
        if self._embeddings is not None and self.embeddings_path is not None:
            self._embeddings.copy_from(self.embeddings_path)
        written = (self._table.rows, self._embeddings.rows if self._embeddings is not None else 0)
        if written != (state.rows, state.embedding_rows):
            raise FaceaffectError(
                f"cannot resume: {self.table_path} holds {written[0]} rows, the interrupted run wrote "
                f"{state.rows} (was it changed?); run without --resume to start again"
            )
        self.frames = state.frames
        self._mark = state.mark

    def _flush(self) -> None:
        if not self._pending or self._table is None:
            return
        info = self.info
        table = frames_table(self._pending, info.labels, info.model, info.source)
        if self.name is not None:
            table["source"] = self.name
        self._table.append(table)
        if self._plot_table is not self._table:
            self._plot_table.append(table)
        self._unsummed.append(table)
        self._unsummed_rows += len(table)
        if self._unsummed_rows >= CHUNK_ROWS:
            self._sum()
        if self._embeddings is not None and len(table):
            vectors = frame_embeddings(self._pending)
            if isinstance(self._embeddings, ArrayWriter):
                self._embeddings.append(vectors)
            else:
                self._embeddings.append(embeddings_table(table, vectors))
        self._pending, self._pending_rows, self._flushed = [], 0, time.monotonic()

    def _sum(self) -> None:
        """Add the rows written since the last time to the summary (in chunks: a frame at a time is slow)."""
        if self._unsummed:
            self.summary.add(pd.concat(self._unsummed, ignore_index=True))
        self._unsummed, self._unsummed_rows = [], 0

    def _commit(self, end: RunEnd) -> None:
        info = self.info
        self._sum()
        for writer in (self._table, self._embeddings):
            if writer is not None and writer.commit() is not None:
                self.written.append(writer.path)  # type: ignore[arg-type]
        if self._plot_table is not None and self._plot_table is not self._table:
            self._plot_table.commit()
        if self._video is not None:
            self._close_video(None)
            self.written.append(self.video_path)  # type: ignore[arg-type]
        report = end.report
        if self.summary_path is not None:
            self.written.append(write_table(self.summary.table(report), self.summary_path))
        if self.plots_path is not None and self._plot_table is not None:
            self.written += plot_table_file(self._plot_table.path, self.summary.table(report), info.labels,
                                            self.plots_path, Path(self.name or info.source).name)  # fmt: skip
        if self.table_path is not None:
            self._keep_state(end)

    def _keep_state(self, end: RunEnd) -> None:
        """A resume state beside the table when the run stopped early (removed when it completed)."""
        assert self.table_path is not None
        stale = state_path(self.table_path)
        if end.stopped is None or self.live or self._mark is None:
            stale.unlink(missing_ok=True)
            return
        info, mark = self.info, self._mark
        report = end.report.until(mark.index) if end.report is not None and mark.tracker else end.report
        state = ResumeState(
            source=info.source, size=input_size(info.source), kind=str(info.kind), model=info.model,
            options=info.options, outputs=self._outputs(), rows=self.rows,
            embedding_rows=self._embeddings.rows if self._embeddings is not None else 0, frames=self.frames,
            mark=mark, report=report, failures=[f for f in end.failures if (f.index or 0) <= mark.index],
        )  # fmt: skip
        state.save(self.table_path)

    def _discard(self) -> None:
        for writer in (self._table, self._embeddings, self._plot_table):
            if writer is not None:
                writer.discard()
        self._close_video(FaceaffectError("discarded"))

    def _close_video(self, error: BaseException | None) -> None:
        """Finish (or, after an ``error``, drop) an annotated video; annotated images are written already."""
        video, self._video = self._video, None
        if video is not None and hasattr(video, "__exit__"):
            video.__exit__(None if error is None else type(error), error, None)


def _unreadable(failures: list[InputFailure]) -> InputError:
    """The error of an input none of whose files could be read: the reason itself for one file."""
    first = failures[0].reason
    return InputError(
        f"none of the {len(failures)} inputs could be read ({first})" if len(failures) > 1 else first
    )


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)
