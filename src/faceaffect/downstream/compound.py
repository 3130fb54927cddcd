"""Compound expressions (ABAW-6 CE) without training: zero-shot scores, KL to the known prior, k-means.

METHOD.md: softmax over the 8 AffectNet logits; the score of a compound class is the mean of the
probabilities of its two constituents; per frame, the maximum over faces; then argmax. Without labels the
prediction is judged by KL(known class prior || predicted class histogram).

>>> COMPOUND_PAIRS[0]
(3, 7)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from faceaffect.core.errors import InputError
from faceaffect.core.labels import AFFECTNET_8
from faceaffect.core.numeric import softmax
from faceaffect.downstream.abaw import COMPOUND
from faceaffect.metrics import kl_divergence

# constituents of each COMPOUND class by AffectNet-8 name; the index pairs are those of METHOD.md
COMPOUND_CONSTITUENTS: tuple[tuple[str, str], ...] = (
    ("Fear", "Surprise"), ("Happiness", "Surprise"), ("Sadness", "Surprise"), ("Disgust", "Surprise"),
    ("Anger", "Surprise"), ("Sadness", "Fear"), ("Sadness", "Anger"),
)  # fmt: skip
COMPOUND_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (AFFECTNET_8.index(a), AFFECTNET_8.index(b)) for a, b in COMPOUND_CONSTITUENTS
)
COMPOUND_PRIOR: tuple[int, ...] = (14445, 24915, 10780, 10637, 10535, 10112, 8878)


def compound_scores(logits: ArrayLike, labels: tuple[str, ...] = AFFECTNET_8) -> np.ndarray:
    """Zero-shot scores (N, 7): the mean softmax probability of each compound class's two constituents."""
    logits = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    missing = sorted({name for pair in COMPOUND_CONSTITUENTS for name in pair} - set(labels))
    if missing or logits.shape[1] != len(labels):
        raise InputError(
            f"compound expressions need logits over {', '.join(labels)} including {', '.join(missing)}"
            if missing
            else f"expected {len(labels)} logits per row, got {logits.shape[1]}"
        )
    probabilities = softmax(logits)
    pairs = [(labels.index(a), labels.index(b)) for a, b in COMPOUND_CONSTITUENTS]
    return np.stack([(probabilities[:, i] + probabilities[:, j]) / 2 for i, j in pairs], axis=1)


def max_over_faces(frames: ArrayLike, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the element-wise maximum of the scores of its faces: (unique frames, (F, K) scores)."""
    frames = np.asarray(frames).ravel()
    unique, inverse = np.unique(frames, return_inverse=True)
    out = np.full((len(unique), scores.shape[1]), -np.inf)
    np.maximum.at(out, inverse, scores)
    return unique, out


def prior_kl(predicted: ArrayLike, prior: ArrayLike = COMPOUND_PRIOR) -> float:
    """KL(prior || histogram of predicted class indices), in nats; 0 when the histogram matches the prior."""
    prior = np.asarray(prior, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.int64).ravel()
    if len(predicted) == 0:
        raise InputError("no predictions to compare with the class prior")
    histogram = np.bincount(predicted, minlength=len(prior)).astype(np.float64)
    return kl_divergence(prior, histogram)


@dataclass(frozen=True)
class ClusterNaming:
    """k-means on standardised features; each cluster named by the zero-shot class it scores highest on."""

    mean: np.ndarray
    std: np.ndarray
    centroids: np.ndarray
    cluster_class: np.ndarray

    def assign(self, features: np.ndarray) -> np.ndarray:
        """The nearest centroid of each row."""
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.std
        return squared_distances(z, self.centroids).argmin(axis=1)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Compound class index of each row: the name of its cluster."""
        return self.cluster_class[self.assign(features)]


def squared_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(N, K) squared Euclidean distances without an (N, K, D) intermediate."""
    squared = (points**2).sum(axis=1)[:, None] - 2 * points @ centres.T + (centres**2).sum(axis=1)[None, :]
    return np.maximum(squared, 0.0)


def kmeans(data: np.ndarray, k: int, *, seed: int = 0, iterations: int = 100) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding; returns the (k, D) centroids."""
    data = np.asarray(data, dtype=np.float64)
    if len(data) < k:
        raise InputError(f"k-means with k={k} needs at least {k} rows, got {len(data)}")
    rng = np.random.default_rng(seed)
    centroids = [data[rng.integers(len(data))]]
    for _ in range(1, k):
        nearest = squared_distances(data, np.asarray(centroids)).min(axis=1)
        total = nearest.sum()
        pick = rng.integers(len(data)) if total == 0 else rng.choice(len(data), p=nearest / total)
        centroids.append(data[pick])
    centres = np.asarray(centroids)
    for _ in range(iterations):
        assignment = squared_distances(data, centres).argmin(axis=1)
        updated = np.stack(
            [data[assignment == c].mean(axis=0) if (assignment == c).any() else centres[c] for c in range(k)]
        )
        if np.allclose(updated, centres):
            break
        centres = updated
    return centres


def fit_cluster_naming(
    features: np.ndarray, zero_shot: np.ndarray, k: int = len(COMPOUND), *, seed: int = 0
) -> ClusterNaming:
    """k-means on ``features`` (N, D); each cluster is named by the argmax of its mean zero-shot scores."""
    features = np.asarray(features, dtype=np.float64)
    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
    centroids = kmeans((features - mean) / std, k, seed=seed)
    naming = ClusterNaming(mean, std, centroids, np.zeros(k, dtype=np.int64))
    assignment = naming.assign(features)
    classes = np.array(
        [zero_shot[assignment == c].mean(axis=0).argmax() if (assignment == c).any() else 0 for c in range(k)]
    )
    return ClusterNaming(mean, std, centroids, classes.astype(np.int64))
