"""The settings of head training, and their defaults, in one place (torch-free, so the CLI can build them).

>>> TrainOptions().grid()[0]
Candidate(hidden=0, weight_decay=0.1, dropout=0.0)
>>> len(TrainOptions(hidden=128, dropout=0.0).grid())
2
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faceaffect.downstream.smoothing import DEFAULT_WINDOWS

LINEAR_WEIGHT_DECAY: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4)
HIDDEN_WEIGHT_DECAY: tuple[float, ...] = (1e-2, 1e-3)
HIDDEN_DROPOUT: tuple[float, ...] = (0.5, 0.0)
HIDDEN_WIDTH = 128  # METHOD.md's Dense(128)
CandidateCallback = Callable[[int, int, dict[str, Any]], None]  # (index, total, record) after each candidate


@dataclass(frozen=True)
class Candidate:
    """One head to try: hidden width (0: linear), L2 strength, dropout (hidden-layer heads only)."""

    hidden: int
    weight_decay: float
    dropout: float = 0.0

    def describe(self) -> str:
        """``linear, L2 0.01`` or ``hidden 128, dropout 0.5, L2 0.001``."""
        shape = "linear" if self.hidden == 0 else f"hidden {self.hidden}"
        dropout = f", dropout {self.dropout:g}" if self.dropout else ""
        return f"{shape}{dropout}, L2 {self.weight_decay:g}"


@dataclass(frozen=True)
class TrainOptions:
    """How heads are chosen and fitted; None leaves a setting to the search on validation data.

    ``hidden``, ``weight_decay`` and ``dropout`` pin a dimension of the head's search grid (all three pinned:
    one candidate); the linear baseline always chooses its L2 from ``LINEAR_WEIGHT_DECAY``.
    ``max_class_weight`` caps the class weights of expr and au (None: METHOD.md's uncapped weights). At
    most ``search_rows`` training (and validation) rows take part in the search; the chosen candidate then
    continues training on all training rows. ``epochs``, ``patience``, ``lr`` and ``batch_size`` drive the
    Adam training of hidden-layer heads (and that continuation); linear heads and the baselines are fitted
    exactly.
    """

    inputs: str | None = None
    hidden: int | None = None
    weight_decay: float | None = None
    dropout: float | None = None
    max_class_weight: float | None = 5.0
    search_rows: int = 200_000
    epochs: int = 100
    patience: int = 10
    lr: float = 1e-3
    batch_size: int = 256
    seed: int = 0
    threads: int | None = 1
    windows: tuple[int, ...] = DEFAULT_WINDOWS

    def grid(self) -> list[Candidate]:
        """The candidates, simplest first (ties on validation go to the earlier one): linear heads from the
        strongest L2 down, then hidden-layer heads."""
        widths = (0, HIDDEN_WIDTH) if self.hidden is None else (self.hidden,)
        candidates = []
        for width in widths:
            decays = LINEAR_WEIGHT_DECAY if width == 0 else HIDDEN_WEIGHT_DECAY
            dropouts = HIDDEN_DROPOUT if width and self.dropout is None else (self.dropout or 0.0,)
            for decay in decays if self.weight_decay is None else (self.weight_decay,):
                candidates.extend(Candidate(width, decay, dropout if width else 0.0) for dropout in dropouts)
        return list(dict.fromkeys(candidates))
