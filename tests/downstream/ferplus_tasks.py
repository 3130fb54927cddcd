"""FER+ as downstream tasks in the ABAW formats: each face crop a one-frame video, labels as annotation files.

Real labelled faces for the head tests and ``bench/heads_vs_baseline.py``. Images follow the FER+ majority
protocol (tied and unknown/not-a-face-dominated images dropped, as
:func:`faceaffect.train.datasets.read_ferplus` reads them). Two tasks, both written as folders of
``<video>.txt`` annotation files:

- ``expr``: the majority emotion in ABAW order (Contempt becomes "Other");
- ``votes``, in the AU format (12 binary columns): the 10 raters' votes as multi-label targets. Columns 1-8
  (``AU1`` ... ``AU15`` in the header) say "this emotion got at least 30 % of the emotion votes", for Neutral,
  Anger, Disgust, Fear, Happiness, Sadness, Surprise, Contempt; columns 9-12 (``AU23`` ... ``AU26``) say "at
  least 70 %" for Neutral, Happiness, Sadness, Surprise. The header's AU names are only the format's: the
  targets are emotions as people saw them, several per face when raters disagreed.

The training crops are a fixed random draw of FER+ train (the smaller sizes are prefixes of the larger);
validation and test are the whole FER+ valid and test splits. Caveat: the embedded default model was trained
on FER+ train, so its features of train crops are features of seen images; valid and test were not trained on.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceaffect.core.labels import AFFECTNET_8
from faceaffect.downstream.abaw import ABAW_EXPR, write_frame_predictions
from faceaffect.train.datasets import Sample, read_ferplus

PRESENT, STRONG = 0.3, 0.7
STRONG_CLASSES = ("Neutral", "Happiness", "Sadness", "Surprise")
TASKS = {"expr": "expr", "votes": "au"}  # task name here -> the ABAW format (and head task) it is written in


@dataclass(frozen=True)
class FerplusTasks:
    """The feature store of every crop and, per task, one annotation folder per split (``train_1000`` ...)."""

    store: Path
    labels: dict[str, dict[str, Path]]


def expression_index(sample: Sample) -> int:
    """The sample's majority emotion as an ABAW EXPR class index (Contempt -> Other)."""
    name = AFFECTNET_8[sample.expression]
    return ABAW_EXPR.index("Other" if name == "Contempt" else name)


def vote_targets(sample: Sample) -> np.ndarray:
    """The 12 binary vote targets of the module docstring, int8 (12,)."""
    share = dict(zip(AFFECTNET_8, sample.votes or (), strict=True))
    emotions = ["Contempt" if name == "Other" else name for name in ABAW_EXPR]
    present = [share[name] >= PRESENT - 1e-9 for name in emotions]
    strong = [share[name] >= STRONG - 1e-9 for name in STRONG_CLASSES]
    return np.array(present + strong, dtype=np.int8)


def _write_images(samples: list[tuple[str, Sample]], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for video, sample in samples:
        target = folder / f"{video}.png"
        if isinstance(sample.image, bytes):
            target.write_bytes(sample.image)
        else:
            shutil.copyfile(sample.image, target)


def _write_labels(samples: list[tuple[str, Sample]], folder: Path, task: str) -> Path:
    if task == "expr":
        rows = {video: np.array([expression_index(sample)]) for video, sample in samples}
    else:
        rows = {video: vote_targets(sample)[None] for video, sample in samples}
    return write_frame_predictions(folder, TASKS[task], rows)


def build(
    ferplus: Path, work: Path, sizes: tuple[int, ...] = (1000, 5000), held_out: tuple[str, ...] = ("valid",)
) -> FerplusTasks:
    """Write the crops, extract their features with ``faceaffect features`` (embedded default model) and
    write the label folders under ``work``; ``held_out`` FER+ splits are kept whole (valid, test)."""
    train = read_ferplus(ferplus, "train")
    draw = np.random.default_rng(0).permutation(len(train))[: max(sizes)]
    splits = {"train": [(f"train_{k:05d}", train[i]) for k, i in enumerate(draw)]}
    for split in held_out:
        splits[split] = [(f"{split}_{k:05d}", s) for k, s in enumerate(read_ferplus(ferplus, split))]
    for split, samples in splits.items():
        _write_images(samples, work / "crops" / split)
    store = work / "features"
    command = [sys.executable, "-m", "faceaffect", "features", str(work / "crops"), "-o", str(store), "-q"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"faceaffect features failed: {done.stderr[-2000:]}")
    labels: dict[str, dict[str, Path]] = {}
    for task in TASKS:
        parts = {f"train_{n}": splits["train"][:n] for n in sizes} | {s: splits[s] for s in held_out}
        labels[task] = {name: _write_labels(rows, work / task / name, task) for name, rows in parts.items()}
    return FerplusTasks(store, labels)
