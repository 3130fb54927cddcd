"""Zero-shot compound expressions exactly as METHOD.md, KL to the prior, k-means naming."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import entropy

from faceaffect.core.errors import InputError
from faceaffect.core.labels import AFFECTNET_7, AFFECTNET_8
from faceaffect.downstream.abaw import COMPOUND
from faceaffect.downstream.compound import (
    COMPOUND_PAIRS,
    COMPOUND_PRIOR,
    compound_scores,
    fit_cluster_naming,
    kmeans,
    max_over_faces,
    prior_kl,
)


def test_pairs_and_prior_are_those_of_method() -> None:
    assert COMPOUND_PAIRS == ((3, 7), (4, 7), (6, 7), (2, 7), (0, 7), (6, 3), (6, 0))
    assert COMPOUND_PRIOR == (14445, 24915, 10780, 10637, 10535, 10112, 8878)
    assert COMPOUND == (
        "Fearfully Surprised",
        "Happily Surprised",
        "Sadly Surprised",
        "Disgustedly Surprised",
        "Angrily Surprised",
        "Sadly Fearful",
        "Sadly Angry",
    )
    for (i, j), name in zip(COMPOUND_PAIRS, COMPOUND, strict=True):  # names say which emotions are paired
        assert {word[:3].lower() for word in name.split()} == {
            AFFECTNET_8[i][:3].lower(),
            AFFECTNET_8[j][:3].lower(),
        }


def test_scores_are_mean_constituent_probabilities() -> None:
    logits = np.random.default_rng(0).normal(size=(10, 8)) * 3
    probabilities = softmax(logits, axis=1)
    expected = np.stack([(probabilities[:, i] + probabilities[:, j]) / 2 for i, j in COMPOUND_PAIRS], axis=1)
    np.testing.assert_allclose(compound_scores(logits), expected, rtol=1e-12)


def test_scores_from_a_seven_class_model_use_the_names() -> None:
    logits8 = np.random.default_rng(1).normal(size=(4, 8))
    logits8[:, AFFECTNET_8.index("Contempt")] = -np.inf
    logits7 = logits8[:, [AFFECTNET_8.index(n) for n in AFFECTNET_7]]
    np.testing.assert_allclose(compound_scores(logits7, AFFECTNET_7), compound_scores(logits8), rtol=1e-12)
    with pytest.raises(InputError, match="expected 8 logits"):
        compound_scores(np.zeros((2, 7)))


def test_maximum_over_faces_of_a_frame() -> None:
    frames, scores = max_over_faces([5, 5, 6], np.array([[0.1, 0.9], [0.5, 0.2], [0.3, 0.3]]))
    assert frames.tolist() == [5, 6]
    np.testing.assert_allclose(scores, [[0.5, 0.9], [0.3, 0.3]])


def test_kl_to_prior() -> None:
    prior = np.asarray(COMPOUND_PRIOR, dtype=float)
    matching = np.repeat(np.arange(7), (prior / prior.sum() * 10000).round().astype(int))
    assert prior_kl(matching) == pytest.approx(0.0, abs=1e-4)
    skewed = np.zeros(500, dtype=int)
    skewed[:100] = np.arange(100) % 7
    assert prior_kl(skewed) == pytest.approx(entropy(prior, np.bincount(skewed, minlength=7)), rel=1e-9)
    assert prior_kl(skewed) > 0.5


def test_kmeans_clusters_are_named_by_their_zero_shot_class() -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=10, size=(7, 5))
    truth = rng.integers(0, 7, size=700)
    features = centres[truth] + rng.normal(size=(700, 5))
    names = (truth + 2) % 7  # the class each group "looks like" zero-shot
    zero_shot = np.eye(7)[names] * 0.6 + rng.uniform(0, 0.4, size=(700, 7))
    naming = fit_cluster_naming(features, zero_shot, seed=0)
    assert (naming.predict(features) == names).mean() > 0.95
    assert kmeans(features, 7, seed=1).shape == (7, 5)
