"""The downstream workflow: train a head, tune its post-processing, evaluate, predict, fuse, cluster.

Scores are computed as in the challenges: over every annotated frame of every video (frames without a face
get interpolated predictions), after smoothing with the chosen window and, for AUs, the tuned thresholds.

>>> store = FeatureStore.open("features")  # doctest: +SKIP
>>> predictor, report = train_head("va", store, read_annotations("Annotations", "va", "train"),
...                                read_annotations("Annotations", "va", "validation"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from faceaffect.core.errors import InputError
from faceaffect.core.extras import optional_import
from faceaffect.downstream.abaw import labelled
from faceaffect.downstream.compound import COMPOUND_PRIOR, compound_scores, fit_cluster_naming, prior_kl
from faceaffect.downstream.data import frame_samples, input_width, present, split_videos, video_samples
from faceaffect.downstream.features import FeatureStore
from faceaffect.downstream.fusion import search_fusion_weights
from faceaffect.downstream.predictors import (
    ClusterCE,
    FusedPredictor,
    HeadPredictor,
    Predictor,
)
from faceaffect.downstream.scores import TASK_LABELS, decisions, score_report, task_score
from faceaffect.downstream.smoothing import DEFAULT_WINDOWS, centred_mean, search_window
from faceaffect.downstream.thresholds import search_thresholds

Labels = Mapping[str, np.ndarray]
EpochCallback = Callable[[int, int, dict[str, float]], None]


@dataclass(frozen=True)
class TrainOptions:
    """Head and optimiser settings; None keeps the METHOD.md default of the task."""

    inputs: str | None = None
    hidden: int | None = None
    epochs: int = 100
    patience: int = 10
    lr: float = 1e-3
    batch_size: int = 256
    weight_decay: float = 0.0
    seed: int = 0
    threads: int | None = 1
    windows: tuple[int, ...] = DEFAULT_WINDOWS


def train_head(
    task: str,
    store: FeatureStore,
    train_labels: Labels,
    val_labels: Labels | None = None,
    *,
    options: TrainOptions = TrainOptions(),
    val_fraction: float = 0.2,
    on_epoch: EpochCallback | None = None,
) -> tuple[HeadPredictor, dict[str, Any]]:
    """Train the task's head, choose its window (and AU thresholds) on validation; returns it and a report.

    Without ``val_labels`` a ``val_fraction`` of the training videos is held out.
    """
    optional_import("torch", "training a head")
    import torch

    from faceaffect.downstream.fit import fit_head, torch_threads
    from faceaffect.downstream.heads import Head, HeadConfig

    train_videos, missing = present(store, train_labels)
    if val_labels is None:
        train_videos, val_videos = split_videos(train_videos, val_fraction, options.seed)
        val_labels = train_labels
    else:
        val_videos, missing_val = present(store, val_labels)
        missing = missing + missing_val
    config = HeadConfig.for_task(task, 1, inputs=options.inputs, hidden=options.hidden, extractor=store.model)
    width = input_width(store, config.inputs)
    config = config.replace(in_dim=4 * width if config.pooled else width)
    samples = video_samples if config.pooled else partial(frame_samples, task=task)
    train = samples(store, labels=train_labels, inputs=config.inputs, videos=train_videos)
    val = samples(store, labels=val_labels, inputs=config.inputs, videos=val_videos)
    torch.manual_seed(options.seed)  # the initial weights too: the same seed gives the same head
    head = Head(config)
    with torch_threads(options.threads):
        fitted = fit_head(
            head,
            train.x,
            train.y,
            val.x,
            val.y,
            epochs=options.epochs,
            patience=options.patience,
            lr=options.lr,
            batch_size=options.batch_size,
            weight_decay=options.weight_decay,
            seed=options.seed,
            threads=None,
            on_epoch=on_epoch,
        )
        predictor = HeadPredictor(head)
        if config.pooled:
            figures = score_report(task, val.y, predictor.video_outputs(store, val_videos))
        else:
            figures = tune(predictor, store, {v: val_labels[v] for v in val_videos}, options.windows)
    predictor.metrics = {
        "task": task,
        "inputs": config.inputs,
        "extractor": store.model.get("name"),
        "train": {"videos": len(train_videos), "samples": len(train.x)},
        "validation": {"videos": len(val_videos), "samples": len(val.x)},
        "missing_videos": len(missing),
        "best_epoch": fitted.best_epoch,
        "epochs_run": len(fitted.history),
        "val_score_during_training": fitted.best_score,
        "validation_figures": figures,
    }
    return predictor, predictor.metrics


def collect(predictor: Predictor, store: FeatureStore, labels: Labels) -> list[tuple[np.ndarray, np.ndarray]]:
    """(labels, filled score series) of each labelled video in the store."""
    predictor.check(store)
    videos, _ = present(store, labels)
    return [(labels[v], predictor.series(store, v, len(labels[v]))) for v in videos]


def _stack(
    task: str, pairs: Sequence[tuple[np.ndarray, np.ndarray]], window: int
) -> tuple[np.ndarray, np.ndarray]:
    ys, ps = [], []
    for y, series in pairs:
        keep = labelled(task, y)
        ys.append(y[keep])
        ps.append(centred_mean(series, window)[keep])
    return np.concatenate(ys), np.concatenate(ps)


def series_score(
    task: str,
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    window: int = 0,
    thresholds: np.ndarray | float = 0.5,
) -> float:
    """The task score over all annotated frames after smoothing and decisions."""
    y, p = _stack(task, pairs, window)
    return task_score(task, y, decisions(task, p, thresholds))


def tune(
    predictor: Predictor, store: FeatureStore, labels: Labels, windows: Sequence[int] = DEFAULT_WINDOWS
) -> dict[str, Any]:
    """Choose ``predictor.window`` (and for AUs ``predictor.thresholds``) on labelled data; return figures."""
    pairs = collect(predictor, store, labels)
    task = predictor.task
    figures: dict[str, Any] = {"per_frame": series_score(task, pairs)}
    if task == "au":
        y, p = _stack(task, pairs, 0)
        figures["tuned"] = task_score(task, y, decisions(task, p, search_thresholds(y, p)))
        best = (-np.inf, 0, np.full(p.shape[1], 0.5))
        for d in sorted(set(windows)):
            y, p = _stack(task, pairs, d)
            thresholds = search_thresholds(y, p)
            score = task_score(task, y, decisions(task, p, thresholds))
            figures.setdefault("window_scores", {})[d] = score
            if score > best[0] + 1e-12:
                best = (score, d, thresholds)
        figures["smoothed"], predictor.window, predictor.thresholds = best
        figures["thresholds"] = dict(zip(TASK_LABELS[task], best[2].round(3).tolist(), strict=True))
    else:
        search = search_window(
            [s for _, s in pairs],
            lambda smoothed: series_score(task, [(y, s) for (y, _), s in zip(pairs, smoothed, strict=True)]),
            windows,
        )
        predictor.window = search.best
        figures["window_scores"] = search.scores
        figures["smoothed"] = search.scores[search.best]
    figures["window"] = predictor.window
    return figures


def evaluate(predictor: Predictor, store: FeatureStore, labels: Labels) -> dict[str, Any]:
    """Scores of a predictor on labelled videos: per frame, with its thresholds, with its window too."""
    task = predictor.task
    if task == "emi":
        predictor.check(store)
        videos, missing = present(store, labels)
        outputs = predictor.video_outputs(store, videos)
        return {
            "task": task,
            "videos": len(videos),
            "missing_videos": len(missing),
            **score_report(task, np.stack([labels[v] for v in videos]), outputs),
        }
    pairs = collect(predictor, store, labels)
    thresholds = 0.5 if predictor.thresholds is None else predictor.thresholds
    y, p = _stack(task, pairs, predictor.window)
    report: dict[str, Any] = {
        "task": task,
        "videos": len(pairs),
        "missing_videos": len(labels) - len(pairs),
        "frames": len(y),
        "per_frame": series_score(task, pairs),
    }
    if task == "au":
        report["tuned"] = series_score(task, pairs, 0, thresholds)
    report["window"] = predictor.window
    report["final"] = score_report(task, y, decisions(task, p, thresholds))
    return report


def predict(
    predictor: Predictor,
    store: FeatureStore,
    videos: Sequence[str] | None = None,
    lengths: Mapping[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """Final outputs per video: (n_frames, ...) rows for frame tasks (``lengths`` default to the store's
    frame counts), one (6,) row per video for EMI."""
    predictor.check(store)
    videos = list(store) if videos is None else list(videos)
    if predictor.task == "emi":
        return dict(zip(videos, predictor.video_outputs(store, videos), strict=True))
    out = {}
    for video in videos:
        if video not in store:
            raise InputError(f"video {video!r} is not in the feature store {store.root}")
        n = (lengths or {}).get(video, store.videos[video].n_frames)
        series = centred_mean(predictor.series(store, video, n), predictor.window)
        thresholds = 0.5 if predictor.thresholds is None else predictor.thresholds
        out[video] = decisions(predictor.task, series, thresholds)
    return out


def compound_prior_report(
    predictor: Predictor, store: FeatureStore, videos: Sequence[str] | None = None
) -> dict[str, Any]:
    """Without labels: KL(known CE prior || predicted class histogram) over all frames, and the histogram."""
    predictions = predict(predictor, store, videos)
    classes = np.concatenate(list(predictions.values()))
    histogram = np.bincount(classes, minlength=len(COMPOUND_PRIOR))
    return {
        "task": "ce",
        "videos": len(predictions),
        "frames": len(classes),
        "kl_to_prior": prior_kl(classes),
        "histogram": dict(zip(TASK_LABELS["ce"], histogram.tolist(), strict=True)),
    }


def fit_fusion(
    first: Predictor,
    second: Predictor,
    store: FeatureStore,
    labels: Labels,
    windows: Sequence[int] = DEFAULT_WINDOWS,
) -> tuple[FusedPredictor, dict[str, Any]]:
    """Per-class fusion weights of two predictors chosen on labelled data, then window (and thresholds)."""
    task = first.task
    if task == "emi":
        first.check(store)
        second.check(store)
        videos, _ = present(store, labels)
        y = np.stack([labels[v] for v in videos])
        a, b = first.video_outputs(store, videos), second.video_outputs(store, videos)
        weights, score = search_fusion_weights(a, b, lambda fused: task_score(task, y, fused))
        fused = FusedPredictor(first, second, weights)
        report = {
            "task": task,
            "weights": weights.tolist(),
            "first": task_score(task, y, a),
            "second": task_score(task, y, b),
            "fused": score,
        }
        fused.metrics = report
        return fused, report
    pairs_a, pairs_b = collect(first, store, labels), collect(second, store, labels)
    y, a = _stack(task, pairs_a, 0)
    _, b = _stack(task, pairs_b, 0)
    weights, score = search_fusion_weights(a, b, lambda fused: task_score(task, y, decisions(task, fused)))
    fused = FusedPredictor(first, second, weights)
    report = {
        "task": task,
        "weights": weights.tolist(),
        "first": series_score(task, pairs_a),
        "second": series_score(task, pairs_b),
        "fused_per_frame": score,
        **tune(fused, store, labels, windows),
    }
    fused.metrics = report
    return fused, report


def fit_clusters(
    store: FeatureStore, videos: Sequence[str] | None = None, k: int = 7, seed: int = 0
) -> ClusterCE:
    """k-means (k = 7) on the main faces' embeddings, clusters named by the zero-shot CE scores."""
    videos = list(store) if videos is None else list(videos)
    rows = [store.read(v).main_face() for v in videos]
    embedding = np.concatenate([r.embedding for r in rows])
    zero_shot = np.concatenate([compound_scores(r.logits, store.labels) for r in rows])
    return ClusterCE(fit_cluster_naming(embedding, zero_shot, k, seed=seed), store.model)
