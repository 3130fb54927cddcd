"""From a feature store and labels to the arrays heads train on.

Frame tasks train on the frames that have both a face (the best-scoring one, ``face == 0``) and a label;
annotation row ``k - 1`` belongs to frame ``k``. Video tasks (EMI) train on one descriptor per video: the
mean, standard deviation, minimum and maximum over its frames.

>>> pool_stats(np.array([[0.0], [2.0]])).tolist()
[1.0, 1.0, 0.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from faceaffect.core.errors import InputError
from faceaffect.downstream.abaw import labelled
from faceaffect.downstream.features import FeatureStore


def pool_stats(x: np.ndarray) -> np.ndarray:
    """Concatenated mean, std, min and max over rows of (N, D) -> (4 D,); zeros when N = 0."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return np.zeros(4 * x.shape[1])
    return np.concatenate([x.mean(axis=0), x.std(axis=0), x.min(axis=0), x.max(axis=0)])


def input_width(store: FeatureStore, inputs: str) -> int:
    """Width of one frame's input of kind ``logits``, ``embedding`` or ``audio``."""
    if inputs == "logits":
        return len(store.output_names)
    if inputs == "embedding":
        return int(store.model["embedding_dim"])
    for video in store:
        if store.videos[video].audio is not None:
            return int(store.read_audio(video)[1].shape[1])
    raise InputError(f"the feature store {store.root} has no audio features (extract with --audio-model)")


def frame_inputs(store: FeatureStore, video: str, inputs: str) -> tuple[np.ndarray, np.ndarray]:
    """(frame numbers (M,), inputs (M, D)) of one video.

    logits / embedding: the frames with a face; audio: every frame, each with the audio state nearest to
    the frame's time (from the video's frame rate).
    """
    if inputs == "audio":
        times, hidden = store.read_audio(video)
        entry = store.videos[video]
        if len(hidden) == 0 or not entry.fps:
            return np.zeros(0, np.int64), np.zeros((0, hidden.shape[1]), np.float32)
        frames = np.arange(1, entry.n_frames + 1)
        return frames, hidden[nearest_index(times, (frames - 0.5) / entry.fps)]
    features = store.read(video).main_face()
    if inputs == "logits":
        return features.frames, features.outputs
    if inputs == "embedding":
        return features.frames, features.embedding
    raise InputError(f"unknown head input {inputs!r}")


def nearest_index(times: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted ``times`` for each query.

    >>> nearest_index(np.array([0.0, 1.0, 2.0]), np.array([-1.0, 0.4, 0.6, 9.0])).tolist()
    [0, 0, 1, 2]
    """
    if len(times) == 1:
        return np.zeros(len(queries), dtype=np.int64)
    index = np.clip(np.searchsorted(times, queries), 1, len(times) - 1)
    return index - ((queries - times[index - 1]) <= (times[index] - queries))


def video_descriptor(store: FeatureStore, video: str, inputs: str) -> np.ndarray:
    """The pooled (4 D,) descriptor of a video (for audio: over all encoder states)."""
    if inputs == "audio":
        return pool_stats(store.read_audio(video)[1])
    return pool_stats(frame_inputs(store, video, inputs)[1])


def present(store: FeatureStore, labels: Mapping[str, np.ndarray]) -> tuple[list[str], list[str]]:
    """(videos with labels and features, labelled videos missing from the store); InputError if none match."""
    found = [video for video in sorted(labels) if video in store]
    missing = [video for video in sorted(labels) if video not in store]
    if not found:
        examples = ", ".join(missing[:3])
        raise InputError(f"none of the {len(labels)} labelled videos ({examples}, ...) is in {store.root}")
    return found, missing


@dataclass(frozen=True)
class Samples:
    """Training arrays: inputs (N, D), labels (N, ...) and the video of each row."""

    x: np.ndarray
    y: np.ndarray
    videos: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def subsample(self, rows: int, seed: int = 0) -> Samples:
        """At most ``rows`` rows drawn uniformly without replacement, in their order (all when fewer)."""
        if len(self) <= rows:
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self), rows, replace=False))
        return Samples(self.x[keep], self.y[keep], self.videos[keep])


def frame_samples(
    store: FeatureStore, task: str, labels: Mapping[str, np.ndarray], inputs: str, videos: Sequence[str]
) -> Samples:
    """Rows for frames with a face and a label, over ``videos``."""
    xs, ys, names = [], [], []
    for video in videos:
        frames, x = frame_inputs(store, video, inputs)
        y_all = labels[video]
        inside = (frames >= 1) & (frames <= len(y_all))
        rows = frames[inside] - 1
        keep = labelled(task, y_all[rows])
        xs.append(x[inside][keep])
        ys.append(y_all[rows][keep])
        names.append(np.full(int(keep.sum()), video))
    return Samples(np.concatenate(xs).astype(np.float32), np.concatenate(ys), np.concatenate(names))


def video_samples(
    store: FeatureStore, labels: Mapping[str, np.ndarray], inputs: str, videos: Sequence[str]
) -> Samples:
    """One descriptor row per video."""
    x = np.stack([video_descriptor(store, video, inputs) for video in videos]).astype(np.float32)
    y = np.stack([labels[video] for video in videos]).astype(np.float32)
    return Samples(x, y, np.asarray(videos))


def split_videos(videos: Sequence[str], fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """A random split of whole videos into (train, validation), ``fraction`` of them (at least 1) held out."""
    if not 0.0 < fraction < 1.0:
        raise InputError(f"the validation fraction must lie strictly between 0 and 1, got {fraction}")
    if len(videos) < 2:
        raise InputError("at least 2 labelled videos are needed to hold some out for validation")
    order = np.random.default_rng(seed).permutation(len(videos))
    count = min(len(videos) - 1, max(1, round(fraction * len(videos))))
    held = {videos[i] for i in order[:count]}
    return [v for v in videos if v not in held], [v for v in videos if v in held]
