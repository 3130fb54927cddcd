"""Small numeric helpers shared across layers (pure numpy).

>>> softmax(np.array([[0.0, 0.0]]))
array([[0.5, 0.5]])
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis`` (rows by default), numerically stable."""
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)
