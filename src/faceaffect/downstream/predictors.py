"""Everything that turns stored features into task outputs, behind one interface.

A predictor gives per-frame scores (values, class probabilities or AU probabilities) for the frames it can
see; :meth:`Predictor.series` fills the other frames (METHOD.md: interpolate, repeat at the ends). Its
``window`` and ``thresholds`` are the post-processing chosen on validation data.

- :class:`HeadPredictor`: a trained head (va, expr, au, emi), with the linear baseline of its training run;
- :class:`ZeroShotExpr`: AffectNet logits reordered to the ABAW classes (no training);
- :class:`ZeroShotCE`: compound expressions from constituent probabilities (no training);
- :class:`ClusterCE`: k-means clusters of embeddings named by zero-shot CE;
- :class:`FusedPredictor`: per-class weighted late fusion of two predictors of one task.

>>> predictor = load_predictor("zero-shot-ce")
>>> predictor.task
'ce'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from faceaffect.core.documents import read_document
from faceaffect.core.errors import InputError
from faceaffect.core.extras import optional_import
from faceaffect.core.io import atomic_path
from faceaffect.core.numeric import softmax
from faceaffect.downstream.abaw import affectnet_to_abaw
from faceaffect.downstream.compound import ClusterNaming, compound_scores, max_over_faces
from faceaffect.downstream.data import frame_inputs, video_descriptor
from faceaffect.downstream.features import FeatureStore
from faceaffect.downstream.folders import CONFIG_NAME, read_config, write_config, write_json
from faceaffect.downstream.fusion import fuse
from faceaffect.downstream.scores import TASK_LABELS
from faceaffect.downstream.smoothing import fill_missing

BUILT_IN = ("zero-shot-expr", "zero-shot-ce")
CLUSTERS_NAME = "clusters.safetensors"
BASELINE_FOLDER = "baseline"
SPLITS_NAME = "splits.json"


class Predictor:
    """Base: per-frame scores of the frames it sees, filled to a whole video; post-processing settings."""

    task: str = ""
    kind: str = ""

    def __init__(self, window: int = 0, thresholds: np.ndarray | None = None) -> None:
        self.window = int(window)
        self.thresholds = None if thresholds is None else np.asarray(thresholds, dtype=np.float64)
        self.metrics: dict[str, Any] = {}

    @property
    def width(self) -> int:
        return len(TASK_LABELS[self.task])

    def check(self, store: FeatureStore) -> None:
        """InputError when the store's features cannot feed this predictor."""

    def frame_scores(self, store: FeatureStore, video: str) -> tuple[np.ndarray, np.ndarray]:
        """(frame numbers (M,), scores (M, K)) for the frames this predictor sees."""
        raise NotImplementedError

    def default(self) -> np.ndarray:
        """Scores for a video in which no frame can be scored: uniform over classes, or zeros."""
        return np.zeros(self.width) if self.task == "va" else np.full(self.width, 1.0 / self.width)

    def series(self, store: FeatureStore, video: str, n_frames: int) -> np.ndarray:
        """Scores (n_frames, K) for frames 1..n_frames, missing frames interpolated or repeated."""
        frames, scores = self.frame_scores(store, video)
        return fill_missing(frames, scores, n_frames, default=self.default())

    def video_outputs(self, store: FeatureStore, videos: list[str]) -> np.ndarray:
        """(len(videos), K) outputs of a video-level task."""
        raise InputError(f"{self.kind} predictors do not give video-level outputs")


class HeadPredictor(Predictor):
    """A trained :class:`~faceaffect.downstream.heads.Head`; window and thresholds live in its config.

    ``baseline`` is the linear baseline fitted in the same run (a HeadPredictor itself, saved in the
    ``baseline/`` subfolder); ``splits`` the video ids of its training and validation splits
    (``splits.json``), so an evaluation can say whether its videos took part in training or tuning.
    """

    kind = "head"

    def __init__(
        self, head: Any, baseline: HeadPredictor | None = None, splits: dict[str, list[str]] | None = None
    ) -> None:
        config = head.config
        super().__init__(config.window, config.thresholds)
        self.head = head
        self.task = config.task
        self.metrics = dict(config.metrics)
        self.baseline = baseline
        self.splits = splits

    def check(self, store: FeatureStore) -> None:
        trained_on = self.head.config.extractor
        if trained_on and self.head.config.inputs != "audio":
            keys = ("name", "embedding_dim", "labels", "has_va")
            if any(trained_on.get(k) != store.model.get(k) for k in keys):
                raise InputError(
                    f"this head reads features of {trained_on.get('name')}; {store.root} holds features of "
                    f"{store.model.get('name')}"
                )

    def frame_scores(self, store: FeatureStore, video: str) -> tuple[np.ndarray, np.ndarray]:
        from faceaffect.downstream.heads import predict_array

        frames, x = frame_inputs(store, video, self.head.config.inputs)
        return frames, predict_array(self.head, x)

    def default(self) -> np.ndarray:
        from faceaffect.downstream.heads import predict_array

        return predict_array(self.head, self.head.mean.numpy()[None])[0]

    def video_outputs(self, store: FeatureStore, videos: list[str]) -> np.ndarray:
        from faceaffect.downstream.heads import predict_array

        if not self.head.config.pooled:
            return super().video_outputs(store, videos)
        x = np.stack([video_descriptor(store, v, self.head.config.inputs) for v in videos])
        return predict_array(self.head, x.astype(np.float32))

    def save(self, directory: str | Path) -> Path:
        from faceaffect.downstream.heads import save_head

        directory = Path(directory)
        thresholds = None if self.thresholds is None else tuple(float(t) for t in self.thresholds)
        self.head.config = self.head.config.replace(
            window=self.window, thresholds=thresholds, metrics=self.metrics
        )
        if self.baseline is not None:
            self.baseline.save(directory / BASELINE_FOLDER)
        if self.splits is not None:
            write_json(directory / SPLITS_NAME, self.splits)
        return save_head(self.head, directory)


class ZeroShotExpr(Predictor):
    """ABAW EXPR probabilities from AffectNet logits (class j <- AffectNet index (5,0,2,3,4,6,7,1)[j])."""

    task, kind = "expr", "zero-shot-expr"

    def frame_scores(self, store: FeatureStore, video: str) -> tuple[np.ndarray, np.ndarray]:
        features = store.read(video).main_face()
        return features.frames, softmax(affectnet_to_abaw(features.logits.astype(np.float64), store.labels))


class ZeroShotCE(Predictor):
    """Compound scores from constituent probabilities, maximum over the faces of each frame."""

    task, kind = "ce", "zero-shot-ce"

    def frame_scores(self, store: FeatureStore, video: str) -> tuple[np.ndarray, np.ndarray]:
        features = store.read(video)
        return max_over_faces(features.frames, compound_scores(features.logits, store.labels))


class ClusterCE(Predictor):
    """Compound classes from k-means clusters of the main face's embedding (one-hot scores)."""

    task, kind = "ce", "clusters"

    def __init__(self, naming: ClusterNaming, extractor: dict[str, Any], window: int = 0) -> None:
        super().__init__(window)
        self.naming = naming
        self.extractor = extractor

    def check(self, store: FeatureStore) -> None:
        if self.extractor.get("name") != store.model.get("name"):
            raise InputError(
                f"these clusters were fitted on {self.extractor.get('name')} features; "
                f"{store.root} holds {store.model.get('name')}"
            )

    def frame_scores(self, store: FeatureStore, video: str) -> tuple[np.ndarray, np.ndarray]:
        features = store.read(video).main_face()
        classes = self.naming.predict(features.embedding)
        return features.frames, np.eye(self.width)[classes]

    def save(self, directory: str | Path) -> Path:
        from safetensors.numpy import save_file

        directory = Path(directory)
        arrays = {
            "mean": self.naming.mean,
            "std": self.naming.std,
            "centroids": self.naming.centroids,
            "cluster_class": self.naming.cluster_class,
        }
        with atomic_path(directory / CLUSTERS_NAME) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp))
        write_config(
            directory,
            {
                "kind": self.kind,
                "task": self.task,
                "extractor": self.extractor,
                "window": self.window,
                "metrics": self.metrics,
            },
        )
        return directory


class FusedPredictor(Predictor):
    """``w[c] * first + (1 - w[c]) * second`` per class, over whole series or video outputs."""

    kind = "fusion"

    def __init__(
        self,
        first: Predictor,
        second: Predictor,
        weights: np.ndarray,
        window: int = 0,
        thresholds: np.ndarray | None = None,
    ) -> None:
        if first.task != second.task:
            raise InputError(f"cannot fuse a {first.task} predictor with a {second.task} one")
        super().__init__(window, thresholds)
        self.task = first.task
        self.first, self.second = first, second
        self.weights = np.asarray(weights, dtype=np.float64)

    def check(self, store: FeatureStore) -> None:
        self.first.check(store)
        self.second.check(store)

    def series(self, store: FeatureStore, video: str, n_frames: int) -> np.ndarray:
        return fuse(
            self.first.series(store, video, n_frames),
            self.second.series(store, video, n_frames),
            self.weights,
        )

    def video_outputs(self, store: FeatureStore, videos: list[str]) -> np.ndarray:
        return fuse(
            self.first.video_outputs(store, videos), self.second.video_outputs(store, videos), self.weights
        )

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        for index, member in enumerate((self.first, self.second)):
            save_predictor(member, directory / f"member_{index}")
        thresholds = None if self.thresholds is None else self.thresholds.tolist()
        write_config(
            directory,
            {
                "kind": self.kind,
                "task": self.task,
                "weights": self.weights.tolist(),
                "window": self.window,
                "thresholds": thresholds,
                "metrics": self.metrics,
            },
        )
        return directory


def save_predictor(predictor: Predictor, directory: str | Path) -> Path:
    """Save a trained head, cluster naming or fusion so that :func:`load_predictor` restores it."""
    if not hasattr(predictor, "save"):
        raise InputError(f"{predictor.kind} needs no saving: use its name ({', '.join(BUILT_IN)})")
    return predictor.save(directory)


def load_predictor(spec: str | Path) -> Predictor:
    """A built-in zero-shot predictor by name, or a folder saved by :func:`save_predictor`."""
    if str(spec) == "zero-shot-expr":
        return ZeroShotExpr()
    if str(spec) == "zero-shot-ce":
        return ZeroShotCE()

    directory = Path(spec)
    if not directory.is_dir():
        raise InputError(f"no such head folder: {spec} (built-in: {', '.join(BUILT_IN)})")
    config = read_config(directory)
    kind = config.get("kind")
    try:
        if kind == "head":
            return _load_head(directory)
        if kind == "clusters":
            return _load_clusters(directory, config)
        if kind == "fusion":
            fused = FusedPredictor(
                load_predictor(directory / "member_0"),
                load_predictor(directory / "member_1"),
                np.asarray(config["weights"]),
                config["window"],
                config.get("thresholds"),
            )
            fused.metrics = config.get("metrics", {})
            return fused
    except KeyError as error:
        raise InputError(f"{directory / CONFIG_NAME}: missing key {error}") from None
    raise InputError(f"{directory / CONFIG_NAME}: unknown kind {kind!r}")


def _load_head(directory: Path) -> HeadPredictor:
    optional_import("torch", "a trained head")
    from faceaffect.downstream.heads import load_head

    baseline = directory / BASELINE_FOLDER
    splits = read_document(directory / SPLITS_NAME) if (directory / SPLITS_NAME).is_file() else None
    if splits is not None and not (
        isinstance(splits, dict) and all(isinstance(v, list) for v in splits.values())
    ):
        raise InputError(f"{directory / SPLITS_NAME}: expected lists of video ids by split name")
    return HeadPredictor(
        load_head(directory), _load_head(baseline) if (baseline / CONFIG_NAME).is_file() else None, splits
    )


def _load_clusters(directory: Path, config: dict[str, Any]) -> ClusterCE:
    from safetensors.numpy import load_file

    arrays = load_file(str(directory / CLUSTERS_NAME))
    naming = ClusterNaming(arrays["mean"], arrays["std"], arrays["centroids"], arrays["cluster_class"])
    predictor = ClusterCE(naming, config["extractor"], config.get("window", 0))
    predictor.metrics = config.get("metrics", {})
    return predictor
