"""Synthetic ABAW-style data with a known signal: a feature store plus annotation folders in the real formats.

Each video has hidden per-frame states (valence, arousal, one of 8 ABAW classes, 12 AUs) that drift slowly;
the stored "embedding" and "logits" are noisy linear mixtures of them, some frames have no face, some labels
are unannotated. EMI videos carry 6 intensities that shift the mean of their logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceaffect.core.labels import AFFECTNET_8
from faceaffect.downstream.abaw import ABAW_AU, ABAW_EXPR, EMI
from faceaffect.downstream.features import FeatureStore, VideoEntry, VideoFeatures

EMBEDDING_DIM = 24
MODEL = {
    "name": "synthetic",
    "arch": "none",
    "input_size": 48,
    "embedding_dim": EMBEDDING_DIM,
    "labels": list(AFFECTNET_8),
    "has_va": True,
}


def segments(rng: np.random.Generator, n: int, values: int, mean_length: int) -> np.ndarray:
    """A piecewise-constant series of integers in [0, values) with segments of about ``mean_length``."""
    out = np.empty(n, dtype=np.int64)
    start = 0
    while start < n:
        length = int(rng.integers(mean_length // 2, mean_length * 3 // 2 + 1))
        out[start : start + length] = rng.integers(values)
        start += length
    return out


def smooth_signal(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n)
    waves = [
        rng.uniform(0.2, 0.4) * np.sin(2 * np.pi * t / rng.uniform(40, 160) + rng.uniform(0, 6))
        for _ in range(3)
    ]
    return np.clip(np.sum(waves, axis=0), -0.95, 0.95)


@dataclass
class Synthetic:
    root: Path
    store: FeatureStore
    annotations: Path
    videos: list[str]
    truth: dict[str, dict[str, np.ndarray]]


def add_video(
    store: FeatureStore,
    video: str,
    frames: np.ndarray,
    embedding: np.ndarray,
    logits: np.ndarray,
    valence_arousal: np.ndarray | None = None,
    *,
    n_frames: int | None = None,
    fps: float = 30.0,
) -> None:
    """One face per listed frame, written to the store as a decoded video of ``n_frames`` frames."""
    count = len(frames)
    va = None if valence_arousal is None else np.asarray(valence_arousal, np.float32)
    store.write(
        VideoFeatures(
            video,
            np.asarray(frames),
            np.zeros(count, np.int16),
            np.full((count, 5), np.nan),
            np.asarray(embedding, np.float32),
            np.asarray(logits, np.float32),
            va,
        ),
        VideoEntry("", "synthetic", "video", n_frames or int(max(frames, default=0)), 0, 0, fps=fps),
    )


def write_txt(path: Path, header: str, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


def make_dataset(
    root: Path, *, videos: int = 12, frames: int = 240, noise: float = 2.5, seed: int = 0
) -> Synthetic:
    rng = np.random.default_rng(seed)
    store = FeatureStore.create(root / "features", MODEL, "parquet")
    mix_embedding = rng.normal(size=(2 + 8 + 12, EMBEDDING_DIM))
    mix_logits = rng.normal(size=(2 + 8 + 12, 8))
    names = [f"{i + 1}-30-640x360" for i in range(videos)]
    truth: dict[str, dict[str, np.ndarray]] = {}
    for index, video in enumerate(names):
        split = "Train_Set" if index < videos * 2 // 3 else "Validation_Set"
        va = np.stack([smooth_signal(rng, frames), smooth_signal(rng, frames)], axis=1)
        expr = segments(rng, frames, 8, 30)
        au = np.stack([segments(rng, frames, 2, 20) for _ in ABAW_AU], axis=1)
        state = np.concatenate([va * 2, np.eye(8)[expr] * 2, au * 1.5], axis=1)
        embedding = state @ mix_embedding + noise * rng.normal(size=(frames, EMBEDDING_DIM))
        logits = state @ mix_logits + noise * rng.normal(size=(frames, 8))
        va_out = va + noise * 0.5 * rng.normal(size=va.shape)
        face = rng.random(frames) > 0.1
        numbers = np.arange(1, frames + 1)[face]
        add_video(store, video, numbers, embedding[face], logits[face], va_out[face], n_frames=frames)
        unannotated = rng.random(frames) < 0.05
        annotations = root / "Annotations"
        va_rows = ["-5,-5" if u else f"{v:.4f},{a:.4f}" for u, (v, a) in zip(unannotated, va, strict=True)]
        write_txt(
            annotations / "VA_Estimation_Challenge" / split / f"{video}.txt", "valence,arousal", va_rows
        )
        expr_rows = ["-1" if u else str(c) for u, c in zip(unannotated, expr, strict=True)]
        write_txt(
            annotations / "EXPR_Recognition_Challenge" / split / f"{video}.txt",
            ",".join(ABAW_EXPR),
            expr_rows,
        )
        au_rows = [
            ",".join(["-1"] * 12) if u else ",".join(map(str, row))
            for u, row in zip(unannotated, au, strict=True)
        ]
        write_txt(annotations / "AU_Detection_Challenge" / split / f"{video}.txt", ",".join(ABAW_AU), au_rows)
        truth[video] = {"va": va, "expr": expr, "au": au, "face": face}
    return Synthetic(root, store, root / "Annotations", names, truth)


def make_emi_dataset(
    root: Path, *, videos: int = 60, frames: int = 40, seed: int = 0
) -> tuple[FeatureStore, Path, Path]:
    """Videos 00001.. whose logits' mean depends on 6 intensities; train/valid CSVs as in Hume-Vidmimic2."""
    rng = np.random.default_rng(seed)
    store = FeatureStore.create(root / "features", MODEL, "npz")
    mix = rng.normal(size=(6, 8))
    rows = {"train": [], "valid": []}
    for index in range(videos):
        video = f"{index + 1:05d}"
        intensities = rng.uniform(0, 1, size=6)
        logits = intensities @ mix * 2 + rng.normal(size=(frames, 8))
        embedding = rng.normal(size=(frames, EMBEDDING_DIM))
        add_video(store, video, np.arange(1, frames + 1), embedding, logits, rng.normal(size=(frames, 2)))
        rows["train" if index < videos * 2 // 3 else "valid"].append(
            ",".join([video, *(f"{v:.4f}" for v in intensities)])
        )
    paths = []
    for split, lines in rows.items():
        path = root / f"{split}_split.csv"
        path.write_text("\n".join([",".join(["Filename", *EMI]), *lines]) + "\n", encoding="utf-8")
        paths.append(path)
    return store, paths[0], paths[1]
