"""Small numeric helpers, against scipy."""

from __future__ import annotations

import numpy as np
from scipy.special import softmax as reference_softmax

from faceaffect.core.numeric import softmax


def test_softmax_matches_scipy_on_any_axis_and_huge_logits() -> None:
    logits = np.random.default_rng(0).normal(scale=30.0, size=(5, 8))
    for axis in (0, 1, -1):
        np.testing.assert_allclose(
            softmax(logits, axis=axis), reference_softmax(logits, axis=axis), rtol=1e-12
        )
    huge = np.array([[1000.0, 1000.0, -1000.0]])
    np.testing.assert_allclose(softmax(huge), [[0.5, 0.5, 0.0]])  # no overflow to NaN
