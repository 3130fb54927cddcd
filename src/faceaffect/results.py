"""The result of analysing an image, a folder, a video or a stream: tables, summary, files, plots.

The table has one row per (frame, face) and the same columns whatever the input (empty but valid when no
face was found):

========================  =====================================================================
column                    meaning
========================  =====================================================================
source                    the input (the image file, for folders)
frame                     frame number in the source (decode order); image number in a folder
time                      seconds from the start of the video (NaN for images)
track_id                  the face's track, kept across frames (for images: its rank in the image)
x1, y1, x2, y2            face box in pixels of the original frame
score                     detector score (NaN where the box was interpolated)
interpolated              True where the box comes from tracking, not from the detector
one column per label      expression probabilities (the model's labels, e.g. 8 AffectNet classes)
top_label                 the most probable expression
valence, arousal          in [-1, 1]; NaN for models without a valence-arousal head
model                     model name
========================  =====================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.io import write_array, write_table
from faceaffect.core.types import FacePrediction, FrameResult
from faceaffect.video.decode import InputFailure, Sampling, SourceKind
from faceaffect.video.faults import DecodeReport
from faceaffect.video.smoothing import Smoothing

if TYPE_CHECKING:
    import pyarrow as pa

BOX_COLUMNS = ("x1", "y1", "x2", "y2")
EMBEDDING_FORMATS = (".npy", ".parquet")
KEY_COLUMNS = ("source", "frame", "track_id")  # what names a row, beside its embedding
SUMMARY_COLUMNS = ("source", "track_id", "frames", "start", "end", "dominant", "dominant_probability",
                   "valence", "arousal", "lost_frames")  # fmt: skip


def table_columns(labels: Sequence[str]) -> list[str]:
    """The table's columns, in order, for a model's labels."""
    return ["source", "frame", "time", "track_id", *BOX_COLUMNS, "score", "interpolated", *labels,
            "top_label", "valence", "arousal", "model"]  # fmt: skip


def table_schema(labels: Sequence[str]) -> pa.Schema:
    """The table's columns with their Arrow types (what Parquet files get, empty ones too)."""
    import pyarrow as pa

    kinds = {"source": pa.string(), "frame": pa.int64(), "track_id": pa.int64(), "interpolated": pa.bool_(),
             "top_label": pa.string(), "model": pa.string()}  # fmt: skip
    return pa.schema([(name, kinds.get(name, pa.float64())) for name in table_columns(labels)])


def embedding_schema(dimension: int) -> pa.Schema:
    """The columns of an embeddings table: the row's keys, then e0 .. e{dimension-1} (float32)."""
    import pyarrow as pa

    keys = [("source", pa.string()), ("frame", pa.int64()), ("track_id", pa.int64())]
    return pa.schema(keys + [(f"e{i}", pa.float32()) for i in range(dimension)])


def embeddings_table(table: pd.DataFrame, vectors: np.ndarray) -> pd.DataFrame:
    """The embeddings of a table's rows as a table: keys, then e0 .. e{D-1}."""
    values = pd.DataFrame(vectors, columns=[f"e{i}" for i in range(vectors.shape[1])])
    return pd.concat([table[list(KEY_COLUMNS)].reset_index(drop=True), values], axis=1)


def frame_embeddings(frames: Sequence[FrameResult]) -> np.ndarray:
    """(rows, D) float32, one per table row of ``frames``; a FaceaffectError when they were not computed."""
    vectors = [face.embedding for frame in frames for face in frame.faces]
    if any(vector is None for vector in vectors):
        raise FaceaffectError("embeddings were not computed; analyse with embeddings=True")
    return np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, 0), np.float32)


def frames_table(
    frames: Sequence[FrameResult], labels: Sequence[str], model: str, source: str
) -> pd.DataFrame:
    """One row per (frame, face), columns as :func:`table_columns`, typed even when empty."""
    rows = [(frame, face) for frame in frames for face in frame.faces]
    boxes = np.array([[f.box.x1, f.box.y1, f.box.x2, f.box.y2] for _, f in rows], dtype=np.float64)
    probabilities = np.array([f.probabilities for _, f in rows], dtype=np.float64)
    columns: dict[str, object] = {
        "source": [frame.source or source for frame, _ in rows],
        "frame": np.array([frame.index for frame, _ in rows], dtype=np.int64),
        "time": np.array([frame.timestamp for frame, _ in rows], dtype=np.float64),
        "track_id": np.array([f.track_id for _, f in rows], dtype=np.int64),
        **{name: boxes[:, i] if rows else np.zeros(0) for i, name in enumerate(BOX_COLUMNS)},
        "score": np.array([f.box.score for _, f in rows], dtype=np.float64),
        "interpolated": np.array([f.box.interpolated for _, f in rows], dtype=bool),
        **{label: probabilities[:, i] if rows else np.zeros(0) for i, label in enumerate(labels)},
        "top_label": [f.top_label for _, f in rows],
        "valence": np.array([np.nan if f.valence is None else f.valence for _, f in rows], np.float64),
        "arousal": np.array([np.nan if f.arousal is None else f.arousal for _, f in rows], np.float64),
        "model": [model] * len(rows),
    }
    table = pd.DataFrame(columns)
    return table.astype({"source": object, "top_label": object, "model": object})


class TrackSummary:
    """The per-track summary of a table fed chunk by chunk (:meth:`add`): running sums, counts and time
    spans per (source, track), so its memory grows with the tracks, never with the rows."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.sums: pd.DataFrame | None = None

    def add(self, table: pd.DataFrame) -> None:
        """Count the rows of a table chunk (the table's columns)."""
        if table.empty:
            return
        groups = table.groupby(["source", "track_id"], sort=False)
        chunk = groups[[*self.labels, "valence", "arousal"]].sum()
        chunk[["valence_n", "arousal_n"]] = groups[["valence", "arousal"]].count().to_numpy()
        chunk["frames"] = groups.size()
        chunk["start"], chunk["end"] = groups["time"].min(), groups["time"].max()
        both = chunk if self.sums is None else pd.concat([self.sums, chunk])
        merge = {name: "sum" for name in chunk.columns} | {"start": "min", "end": "max"}
        self.sums = both.groupby(level=[0, 1], sort=False).agg(merge) if self.sums is not None else both

    def table(self, report: DecodeReport | None = None) -> pd.DataFrame:
        """One row per (source, track), sorted: frames, first and last time, dominant expression (highest
        mean probability), its mean probability, mean valence and arousal, and the frames inside the
        track's time span that could not be decoded (``report``: the video's faults)."""
        if self.sums is None:
            return pd.DataFrame({name: [] for name in SUMMARY_COLUMNS})
        sums = self.sums.sort_index()
        probabilities = sums[self.labels].div(sums["frames"], axis=0)
        summary = pd.DataFrame(
            {
                "frames": sums["frames"],
                "start": sums["start"],
                "end": sums["end"],
                "dominant": probabilities.idxmax(axis=1),
                "dominant_probability": probabilities.max(axis=1),
                "valence": sums["valence"] / sums["valence_n"].where(sums["valence_n"] > 0),
                "arousal": sums["arousal"] / sums["arousal_n"].where(sums["arousal_n"] > 0),
            }
        ).reset_index()
        lost = [
            report.lost_between(a, b) if report else 0
            for a, b in zip(summary.start, summary.end, strict=True)
        ]
        return summary.assign(lost_frames=np.array(lost, dtype=np.int64))[list(SUMMARY_COLUMNS)]


def summary_table(
    table: pd.DataFrame, labels: Sequence[str], report: DecodeReport | None = None
) -> pd.DataFrame:
    """One row per (source, track) of a whole table; see :meth:`TrackSummary.table`."""
    summary = TrackSummary(labels)
    summary.add(table)
    return summary.table(report)


def crop_predictions_table(
    rows: Iterable[tuple[str, FacePrediction]], labels: tuple[str, ...], model_name: str
) -> pd.DataFrame:
    """One row per crop: path, a probability column per label, top_label, valence, arousal, model.

    The columns are the same when there are no rows, so an empty result is still a valid table.
    """
    columns = ["path", *labels, "top_label", "valence", "arousal", "model"]
    records = [{"path": path, **prediction.as_dict(), "model": model_name} for path, prediction in rows]
    return pd.DataFrame.from_records(records, columns=columns)


@dataclass
class AnalysisResult:
    """Everything found in one input, in memory: frame results in order, plus what is needed to read them
    back; ``decode`` holds the faults met while decoding a video. (Long inputs are better written to files
    as they are analysed: ``Analyzer.run`` with a ``faceaffect.sink.FileSink``.)

    >>> result = faceaffect.analyze("clip.mp4")  # doctest: +SKIP
    >>> result.to_table().head(); result.summary()  # doctest: +SKIP
    >>> result.save("clip.parquet"); result.plot("plots/"); result.annotate("annotated.mp4")  # doctest: +SKIP
    """

    source: str
    kind: SourceKind
    labels: tuple[str, ...]
    model: str
    fps: float | None = None
    sampling: Sampling = field(default_factory=Sampling)
    frames: list[FrameResult] = field(default_factory=list)
    failures: list[InputFailure] = field(default_factory=list)
    decode: DecodeReport | None = None

    def __post_init__(self) -> None:
        self.kind = SourceKind(self.kind)

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[FrameResult]:
        return iter(self.frames)

    @property
    def has_va(self) -> bool:
        """Whether any face has valence and arousal (models without a VA head give None)."""
        return any(face.valence is not None for frame in self.frames for face in frame.faces)

    def to_table(self) -> pd.DataFrame:
        """One row per (frame, face); see the module docstring for the columns."""
        return frames_table(self.frames, self.labels, self.model, self.source)

    def summary(self) -> pd.DataFrame:
        """Per track (per face for images): frames, time span, dominant expression, mean valence/arousal."""
        return summary_table(self.to_table(), self.labels, self.decode)

    def embeddings(self) -> np.ndarray:
        """(rows, D) float32, one per table row; a FaceaffectError when they were not computed."""
        return frame_embeddings(self.frames)

    def smoothed(self, *, window_frames: int = 0, window_seconds: float = 0.0) -> AnalysisResult:
        """A copy with each track's probabilities, valence and arousal averaged over a centred window of
        ``window_frames`` frames or ``window_seconds`` seconds (images are left as they are)."""
        if self.kind in (SourceKind.IMAGE, SourceKind.IMAGES):
            return self
        return replace(self, frames=Smoothing(window_frames, window_seconds).apply(self.frames))

    def save(self, path: str | Path) -> Path:
        """Write the table as .csv, .parquet or .jsonl (by extension), atomically."""
        return write_table(self.to_table(), path)

    def save_summary(self, path: str | Path) -> Path:
        """Write :meth:`summary` as .csv, .parquet or .jsonl, atomically."""
        return write_table(self.summary(), path)

    def save_embeddings(self, path: str | Path) -> Path:
        """Write the embeddings, one per table row: .npy (rows, D), or .parquet with source, frame,
        track_id and columns e0 .. e{D-1}."""
        path = Path(path)
        if path.suffix.lower() not in EMBEDDING_FORMATS:
            raise FaceaffectError(f"embeddings are written as {' or '.join(EMBEDDING_FORMATS)}, got {path}")
        vectors = self.embeddings()
        if path.suffix.lower() == ".npy":
            return write_array(vectors, path)
        return write_table(embeddings_table(self.to_table(), vectors), path)

    def plot(self, directory: str | Path, image_format: str = "png") -> list[Path]:
        """Save ``expressions.<format>`` (probabilities over time, per track) and, for models with valence
        and arousal, ``valence_arousal.<format>`` (the trajectory on the circumplex); returns the paths."""
        from faceaffect.render.plots import plot_expressions_over_time, plot_valence_arousal

        directory = Path(directory)
        table = self.to_table()
        title = Path(self.source).name
        expressions = directory / f"expressions.{image_format}"
        paths = [plot_expressions_over_time(table, self.labels, expressions, title)]
        if self.has_va:
            paths.append(plot_valence_arousal(table, directory / f"valence_arousal.{image_format}", title))
        return paths

    def annotate(self, path: str | Path) -> Path:
        """Write the video (or, for images, a folder of images) with boxes, labels and a valence-arousal
        marker per face; videos are decoded again, so the drawing matches smoothed results."""
        from faceaffect.render.video import annotate_images, annotate_video

        if self.kind == SourceKind.CAMERA:
            raise FaceaffectError("a live stream cannot be read twice; draw while streaming (AnnotatedVideo)")
        if self.kind == SourceKind.VIDEO:
            return annotate_video(self.source, self.frames, self.fps, self.sampling, path)
        if self.kind == SourceKind.IMAGE and not Path(self.source).is_file():
            raise FaceaffectError(
                "an image given in memory is not kept: draw on it with faceaffect.render.draw_faces(image, "
                "frame.faces)"
            )
        return annotate_images(self.frames, self.source, self.kind == SourceKind.IMAGE, path)
