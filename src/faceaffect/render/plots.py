"""Figures people would rather look at than tables; matplotlib with the file-only Agg backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from faceaffect.core.io import atomic_path


def _pyplot() -> Any:
    """matplotlib.pyplot, imported late (slow) on the Agg backend unless one was chosen."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(
    matrix: np.ndarray | Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Row-normalised confusion matrix (rows true, columns predicted) with counts, saved atomically."""
    plt = _pyplot()
    counts = np.asarray(matrix, dtype=np.int64)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(labels), 0.8 + 0.7 * len(labels)))
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="recall")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), rate in np.ndenumerate(rates):
        color = "white" if rate > 0.5 else "black"
        ax.text(j, i, f"{rate:.2f}\n{counts[i, j]}", ha="center", va="center", fontsize=7, color=color)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write a figure atomically (format from the suffix: .png, .pdf, .svg) and close it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, format=path.suffix.lstrip(".") or "png")
    _pyplot().close(fig)
    return path


def plot_expressions_over_time(
    table: pd.DataFrame, labels: Sequence[str], path: str | Path, title: str = "", max_tracks: int = 6
) -> Path:
    """Expression probabilities over time, one panel per track (the ``max_tracks`` longest), from an
    analysis table (columns ``time`` or ``frame``, ``source``, ``track_id`` and one per label)."""
    plt = _pyplot()
    tracks = _longest_tracks(table, max_tracks)
    x_column = "time" if table["time"].notna().any() else "frame"
    fig, axes = plt.subplots(max(1, len(tracks)), 1, sharex=True, squeeze=False,
                             figsize=(10, 1.2 + 2.0 * max(1, len(tracks))))  # fmt: skip
    colors = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    for ax, (name, _, rows) in zip(axes[:, 0], tracks, strict=False):
        for i, label in enumerate(labels):
            ax.plot(rows[x_column], rows[label], color=colors(i), linewidth=1.2, label=label)
        ax.set_ylim(0, 1)
        ax.set_ylabel(name)
    if not tracks:
        axes[0, 0].text(0.5, 0.5, "no faces found", ha="center", va="center", transform=axes[0, 0].transAxes)
    axes[-1, 0].set_xlabel("time (s)" if x_column == "time" else "frame")
    handles, names = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="upper right", ncol=min(len(names), 4), fontsize=8)
    fig.suptitle(f"expression probabilities {title}".strip(), x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return save_figure(fig, path)


def plot_valence_arousal(table: pd.DataFrame, path: str | Path, title: str = "", max_tracks: int = 6) -> Path:
    """Each track's valence-arousal trajectory on Russell's circumplex (colour: time; circle: start, square:
    end), from an analysis table; rows without valence/arousal are left out."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 6.4))
    ax.add_patch(plt.Circle((0, 0), 1.0, fill=False, color="0.6"))
    ax.axhline(0, color="0.8", linewidth=0.8)
    ax.axvline(0, color="0.8", linewidth=0.8)
    for (x, y), word in zip(((0.72, 0.9), (0.72, -0.9), (-0.72, -0.9), (-0.72, 0.9)),
                            ("excited", "calm", "sad", "tense"), strict=True):  # fmt: skip
        ax.text(x, y, word, ha="center", va="center", color="0.5", fontsize=9)
    tracks = _longest_tracks(table.dropna(subset=["valence", "arousal"]), max_tracks)
    for name, track, rows in tracks:
        color = f"C{track % 10}"  # the colours of the annotated video
        ax.plot(rows["valence"], rows["arousal"], color=color, linewidth=0.8, alpha=0.5, label=name)
        ax.scatter(rows["valence"], rows["arousal"], c=np.linspace(0, 1, len(rows)), cmap="viridis", s=8)
        ax.plot(*rows[["valence", "arousal"]].iloc[0], "o", color=color, markersize=8)
        ax.plot(*rows[["valence", "arousal"]].iloc[-1], "s", color=color, markersize=8)
    if tracks:
        ax.legend(loc="lower left", fontsize=8)
    ax.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), xlabel="valence", ylabel="arousal", aspect="equal")
    ax.set_title(f"valence-arousal {title}".strip())
    fig.tight_layout()
    return save_figure(fig, path)


def _longest_tracks(table: pd.DataFrame, count: int) -> list[tuple[str, int, pd.DataFrame]]:
    """(name, track id, rows in time order) of the ``count`` tracks with most rows, by track id."""
    groups = [(key, rows) for key, rows in table.groupby(["source", "track_id"], sort=True)]
    longest = sorted(groups, key=lambda group: -len(group[1]))[:count]
    single_source = table["source"].nunique() <= 1
    return [
        (
            f"track {track}" if single_source else f"{Path(source).name} #{track}",
            track,
            rows.sort_values("frame"),
        )
        for (source, track), rows in sorted(longest, key=lambda group: group[0])
    ]
