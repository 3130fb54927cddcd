"""Plots of a table file of any length, drawn in bounded memory: the longest tracks (from the summary) are
read back chunk by chunk, each cut into at most ``points`` runs of consecutive rows that become their means
(a figure 10 inches wide shows no more anyway), then drawn as the plots of a short table.

>>> plot_table_file("t.parquet", summary, labels, "plots/", "clip.mp4")  # doctest: +SKIP
[PosixPath('plots/expressions.png'), PosixPath('plots/valence_arousal.png')]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from faceaffect.core.io import read_table_chunks

MAX_TRACKS = 6


def plot_table_file(
    table: str | Path,
    summary: pd.DataFrame,
    labels: Sequence[str],
    directory: str | Path,
    title: str,
    image_format: str = "png",
    points: int = 2000,
) -> list[Path]:
    """``expressions.<format>`` and, when any row has valence and arousal, ``valence_arousal.<format>``
    in ``directory``, for the ``MAX_TRACKS`` longest tracks of ``summary``."""
    from faceaffect.render.plots import plot_expressions_over_time, plot_valence_arousal

    directory = Path(directory)
    series = track_series(table, summary.nlargest(MAX_TRACKS, "frames"), labels, points)
    paths = [plot_expressions_over_time(series, labels, directory / f"expressions.{image_format}", title)]
    if series["valence"].notna().any():
        paths.append(plot_valence_arousal(series, directory / f"valence_arousal.{image_format}", title))
    return paths


def track_series(table: str | Path, tracks: pd.DataFrame, labels: Sequence[str], points: int) -> pd.DataFrame:
    """The rows of ``tracks`` (summary rows: source, track_id, frames) in ``table``, each track's rows
    averaged over at most ``points`` runs of consecutive rows; the table's columns it needs."""
    numeric = ["frame", "time", *labels, "valence", "arousal"]
    keys = list(zip(tracks["source"], tracks["track_id"].astype(int), strict=True))
    runs = {key: min(points, int(frames)) for key, frames in zip(keys, tracks["frames"], strict=True)}
    totals = dict(zip(keys, tracks["frames"].astype(int), strict=True))
    sums = {key: np.zeros((count, len(numeric))) for key, count in runs.items()}
    counts = {key: np.zeros((count, len(numeric))) for key, count in runs.items()}
    seen = dict.fromkeys(keys, 0)
    for chunk in read_table_chunks(table, columns=["source", "track_id", *numeric]):
        chunk = chunk[pd.MultiIndex.from_frame(chunk[["source", "track_id"]]).isin(keys)]
        for (source, track), rows in chunk.groupby(["source", "track_id"], sort=False):
            key = (source, int(track))
            rank = seen[key] + np.arange(len(rows))
            seen[key] += len(rows)
            run = np.minimum(rank * runs[key] // max(totals[key], 1), runs[key] - 1)
            values = rows[numeric].to_numpy(dtype=np.float64)
            np.add.at(sums[key], run, np.nan_to_num(values))
            np.add.at(counts[key], run, ~np.isnan(values))
    parts = []
    for key in keys:
        with np.errstate(invalid="ignore", divide="ignore"):
            means = pd.DataFrame(sums[key] / counts[key], columns=numeric)
        parts.append(means.assign(source=key[0], track_id=key[1]))
    columns = ["source", "track_id", *numeric]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
