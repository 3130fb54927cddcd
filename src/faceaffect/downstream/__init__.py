"""The downstream workflow of METHOD.md: one frozen feature extractor, many small task heads.

1. :func:`~faceaffect.downstream.extract.extract_features` writes per-frame embeddings and logits to a
   :class:`~faceaffect.downstream.features.FeatureStore` (``faceaffect features``).
2. :mod:`~faceaffect.downstream.abaw` reads Aff-Wild2 annotation folders and Hume-Vidmimic2 CSVs and writes
   challenge-format predictions.
3. :func:`~faceaffect.downstream.workflow.train_head` trains a VA / EXPR / AU / EMI head with the paper's loss
   and tunes smoothing (and AU thresholds) on validation; zero-shot EXPR and CE need no training
   (``faceaffect heads train|evaluate|predict|fuse|export``).

The numpy-only parts are imported here; the torch parts live in ``heads``, ``fit``, ``workflow``.
"""

from faceaffect.downstream.abaw import (
    ABAW_AU,
    ABAW_EXPR,
    AFFECTNET_TO_ABAW,
    COMPOUND,
    EMI,
    AnnotationError,
    affectnet_to_abaw,
    read_annotations,
    read_emi_csv,
    read_frame_annotation,
)
from faceaffect.downstream.compound import COMPOUND_PAIRS, COMPOUND_PRIOR, compound_scores, prior_kl
from faceaffect.downstream.features import FeatureStore, VideoFeatures
from faceaffect.downstream.smoothing import centred_mean, fill_missing, search_window
from faceaffect.downstream.thresholds import search_thresholds

__all__ = [
    "ABAW_AU",
    "ABAW_EXPR",
    "AFFECTNET_TO_ABAW",
    "COMPOUND",
    "COMPOUND_PAIRS",
    "COMPOUND_PRIOR",
    "EMI",
    "AnnotationError",
    "FeatureStore",
    "VideoFeatures",
    "affectnet_to_abaw",
    "centred_mean",
    "compound_scores",
    "fill_missing",
    "prior_kl",
    "read_annotations",
    "read_emi_csv",
    "read_frame_annotation",
    "search_thresholds",
    "search_window",
]
