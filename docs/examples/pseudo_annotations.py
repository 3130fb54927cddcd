"""Write Aff-Wild2-format annotation folders and Hume-Vidmimic2-style CSVs for videos that have no labels.

The worked example in docs/downstream.md needs labels in the real ABAW formats, and the sample videos have
none. This script derives PSEUDO-labels from the feature extractor's own zero-shot predictions, so that the
whole workflow (train, tune, evaluate, predict) can run end to end. The figures obtained with them show that
the machinery works; they say nothing about accuracy on Aff-Wild2.

- EXPR: the zero-shot ABAW class (AffectNet logits reordered, METHOD.md), smoothed over +-15 frames;
- VA: the model's own valence/arousal when it has them, else the expression probabilities weighted by a
  fixed circumplex table (below), smoothed the same way;
- AU: FACS prototypes of the expressions (below), active when the weighted evidence reaches 0.3;
- EMI: per video, the mean probability of a related expression for each of the 6 intensities.

Frames more than 5 frames away from any detected face are written as unannotated (-5 / -1). Every 3rd video
(sorted by id) goes to Validation_Set, the others to Train_Set.

Usage: python docs/examples/pseudo_annotations.py FEATURE_STORE OUTPUT_FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from faceaffect.downstream.abaw import (
    ABAW_AU,
    ABAW_EXPR,
    CHALLENGE_FOLDERS,
    EMI,
    write_emi_csv,
    write_frame_predictions,
)
from faceaffect.downstream.features import FeatureStore
from faceaffect.downstream.predictors import ZeroShotExpr
from faceaffect.downstream.smoothing import centred_mean, fill_missing

# (valence, arousal) of each ABAW class on Russell's circumplex (rounded, illustrative)
CIRCUMPLEX = {
    "Neutral": (0.0, 0.0),
    "Anger": (-0.6, 0.7),
    "Disgust": (-0.6, 0.3),
    "Fear": (-0.6, 0.8),
    "Happiness": (0.8, 0.5),
    "Sadness": (-0.7, -0.4),
    "Surprise": (0.3, 0.8),
    "Other": (-0.3, 0.2),
}
# EMFACS-style prototypes: the AUs (of the 12 ABAW ones) each expression shows
PROTOTYPES = {
    "Anger": ("AU4", "AU7", "AU23", "AU24"),
    "Disgust": ("AU10", "AU15"),
    "Happiness": ("AU6", "AU12", "AU25"),
    "Fear": ("AU1", "AU2", "AU4", "AU25"),
    "Sadness": ("AU1", "AU4", "AU15"),
    "Surprise": ("AU1", "AU2", "AU25", "AU26"),
    "Other": ("AU12",),
    "Neutral": (),
}
# the ABAW class whose mean probability stands for each EMI intensity
EMI_SOURCES = {
    "Admiration": "Surprise",
    "Amusement": "Happiness",
    "Determination": "Anger",
    "Empathic Pain": "Sadness",
    "Excitement": "Fear",
    "Joy": "Happiness",
}
SMOOTHING = 15
NEAR_FACE = 5


def pseudo_labels(store: FeatureStore, video: str) -> dict[str, np.ndarray]:
    entry = store.videos[video]
    frames, scores = ZeroShotExpr().frame_scores(store, video)
    n = entry.n_frames
    probabilities = centred_mean(fill_missing(frames, scores, n, default=np.full(8, 1 / 8)), SMOOTHING)
    distance = np.full(n, np.inf)
    for frame in frames:
        distance = np.minimum(distance, np.abs(np.arange(1, n + 1) - frame))
    annotated = distance <= NEAR_FACE
    expr = np.where(annotated, probabilities.argmax(axis=1), -1)
    main = store.read(video).main_face()
    if main.valence_arousal is not None:
        va = centred_mean(fill_missing(main.frames, main.valence_arousal, n), SMOOTHING)
    else:
        va = probabilities @ np.array([CIRCUMPLEX[name] for name in ABAW_EXPR])
    va = np.where(annotated[:, None], np.clip(va, -1, 1), -5.0)
    evidence = probabilities @ np.array(
        [[au in PROTOTYPES[name] for au in ABAW_AU] for name in ABAW_EXPR], float
    )
    au = np.where(annotated[:, None], (evidence >= 0.3).astype(int), -1)
    emi = np.array(
        [
            probabilities[annotated, ABAW_EXPR.index(EMI_SOURCES[name])].mean() if annotated.any() else 0.0
            for name in EMI
        ]
    )
    return {"va": va, "expr": expr, "au": au, "emi": np.clip(emi, 0, 1)}


def main(store_path: str, output: str) -> None:
    store = FeatureStore.open(store_path)
    root = Path(output)
    emi: dict[str, dict[str, np.ndarray]] = {"train": {}, "valid": {}}
    for index, video in enumerate(store):
        split = "Validation_Set" if index % 3 == 2 else "Train_Set"
        labels = pseudo_labels(store, video)
        for task in ("va", "expr", "au"):
            write_frame_predictions(root / CHALLENGE_FOLDERS[task] / split, task, {video: labels[task]})
        emi["valid" if split == "Validation_Set" else "train"][video] = labels["emi"]
        print(f"{split:15s} {video}: {store.videos[video].n_frames} frames")
    for split, rows in emi.items():
        write_emi_csv(root / "EMI" / f"{split}_split.csv", rows)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    main(sys.argv[1], sys.argv[2])
