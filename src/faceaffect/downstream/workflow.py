"""The downstream workflow: train a head, tune its post-processing, evaluate, predict, fuse, cluster.

Scores are computed as in the challenges: over every annotated frame of every video (frames without a face
get interpolated predictions), after smoothing with the chosen window and, for AUs, the tuned thresholds.

>>> store = FeatureStore.open("features")  # doctest: +SKIP
>>> predictor, report = train_head("va", store, read_annotations("Annotations", "va", "train"),
...                                read_annotations("Annotations", "va", "validation"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from faceaffect.downstream.options import CandidateCallback, TrainOptions
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


def train_head(
    task: str,
    store: FeatureStore,
    train_labels: Labels,
    val_labels: Labels | None = None,
    *,
    options: TrainOptions | None = None,
    val_fraction: float = 0.2,
    on_candidate: CandidateCallback | None = None,
) -> tuple[HeadPredictor, dict[str, Any]]:
    """Choose and fit the task's head on validation, fit the linear baseline beside it, and tune the window
    (and AU thresholds) of both on validation; returns the head (its ``baseline`` attribute holds the
    baseline) and a report.

    ``options`` default to :class:`TrainOptions`'s. Without ``val_labels`` a ``val_fraction`` of the training
    videos is held out. ``on_candidate(index, total, record)`` is called after each candidate of the search.
    """
    optional_import("torch", "training a head")
    options = options or TrainOptions()
    from faceaffect.downstream.fit import torch_threads
    from faceaffect.downstream.heads import HeadConfig
    from faceaffect.downstream.search import fit_baseline, search_head

    train_videos, missing = present(store, train_labels)
    if val_labels is None:
        train_videos, val_videos = split_videos(train_videos, val_fraction, options.seed)
        val_labels = train_labels
    else:
        val_videos, missing_val = present(store, val_labels)
        missing = missing + missing_val
    config = HeadConfig.for_task(task, 1, inputs=options.inputs, extractor=store.model)
    width = input_width(store, config.inputs)
    config = config.replace(in_dim=4 * width if config.pooled else width)
    samples = video_samples if config.pooled else partial(frame_samples, task=task)
    train = samples(store, labels=train_labels, inputs=config.inputs, videos=train_videos)
    val = samples(store, labels=val_labels, inputs=config.inputs, videos=val_videos)
    with torch_threads(options.threads):
        chosen = search_head(config, train, val, options, on_candidate)
        baseline = fit_baseline(config, train, val, options)
        predictor = HeadPredictor(
            chosen.head, HeadPredictor(baseline.head), {"train": train_videos, "validation": val_videos}
        )
        validation = {v: val_labels[v] for v in val_videos}
        figures = {}
        for name, member, model in (
            ("head", predictor, chosen.record["model"]),
            ("baseline", predictor.baseline, baseline.record["model"]),
        ):
            if config.pooled:
                scores = score_report(task, val.y, member.video_outputs(store, val_videos))
            else:
                scores = tune(member, store, validation, options.windows)
            figures[name] = {"model": model, **scores}
            member.metrics = {"task": task, "figures_on": "validation", **figures[name]}
    predictor.metrics = {
        "task": task,
        "inputs": config.inputs,
        "extractor": store.model.get("name"),
        "train": {"videos": len(train_videos), "samples": len(train)},
        "validation": {"videos": len(val_videos), "samples": len(val)},
        "missing_videos": len(missing),
        "figures_on": "validation",
        **figures,
        "search": chosen.record["candidates"],
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
    """Scores of a predictor (and of its linear baseline, when it has one) on labelled videos.

    ``per_frame``: default decisions, no smoothing; ``tuned`` (AU): with the predictor's thresholds;
    ``final``: with its window and thresholds too. ``tuned_on`` says where those were chosen, and how many
    of the evaluated videos took part in the training or validation split of the head's training run.
    """
    videos, missing = present(store, labels)
    report: dict[str, Any] = {"task": predictor.task, "videos": len(videos), "missing_videos": len(missing)}
    if predictor.task != "emi":
        report["frames"] = int(sum(labelled(predictor.task, labels[v]).sum() for v in videos))
    splits = getattr(predictor, "splits", None)
    if splits is not None:
        report["tuned_on"] = {
            "split": "validation",
            "videos": len(splits.get("validation", [])),
            "evaluated_videos_in_it": len(set(videos) & set(splits.get("validation", []))),
            "evaluated_videos_in_training_split": len(set(videos) & set(splits.get("train", []))),
        }
    report["head"] = _scores(predictor, store, {v: labels[v] for v in videos})
    baseline = getattr(predictor, "baseline", None)
    if baseline is not None:
        report["baseline"] = _scores(baseline, store, {v: labels[v] for v in videos})
    return report


def _scores(predictor: Predictor, store: FeatureStore, labels: Labels) -> dict[str, Any]:
    task = predictor.task
    head = getattr(predictor, "head", None)
    model = {"model": head.config.training["model"]} if head is not None and head.config.training else {}
    if task == "emi":
        predictor.check(store)
        outputs = predictor.video_outputs(store, list(labels))
        return {**model, **score_report(task, np.stack(list(labels.values())), outputs)}
    pairs = collect(predictor, store, labels)
    thresholds = 0.5 if predictor.thresholds is None else predictor.thresholds
    y, p = _stack(task, pairs, predictor.window)
    figures: dict[str, Any] = {**model, "per_frame": series_score(task, pairs)}
    if task == "au":
        figures["tuned"] = series_score(task, pairs, 0, thresholds)
    figures["window"] = predictor.window
    figures["final"] = score_report(task, y, decisions(task, p, thresholds))
    return figures


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
