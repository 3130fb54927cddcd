"""Heads against their linear baselines on real faces, per task and training size, from one run.

FER+ crops become one-frame videos in the ABAW formats (``tests/downstream/ferplus_tasks.py``: ``expr``, the
majority emotion, and ``votes``, 12 multi-label vote targets in the AU format). The embedded default model's
features are extracted once with ``faceaffect features`` (``--work`` keeps them; a second run reuses them).
For each task and size the head is trained as ``faceaffect heads train`` does (capacity, L2 and dropout chosen
on the validation split, the linear baseline beside it) with FER+ valid as the validation split, then both are
evaluated on FER+ test, which neither the backbone, nor the heads, nor their tuning ever saw. A third row pins
METHOD.md's head (hidden 128, no L2, no dropout, uncapped class weights: the defaults before the search).

Columns: ``valid`` = per-frame score on the validation split (it chose the head: optimistic); ``test`` =
per-frame score on FER+ test (argmax, or threshold 0.5); ``test tuned`` = AU-format thresholds tuned on valid,
applied to test; ``hidden`` = the best validation score of the search's hidden-layer candidates. Scores:
macro-F1 over the 8 classes (expr), mean F1 over the 12 labels (votes).

    python bench/heads_vs_baseline.py --work /tmp/heads_bench            # sizes 1000 and 5000
    python bench/heads_vs_baseline.py --work /tmp/heads_bench --sizes 500 1000 5000 20000
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "downstream"))

from _common import SHARED
from ferplus_tasks import TASKS, FerplusTasks, build

FERPLUS = SHARED / "ferplus"
METHOD_HEAD = {"hidden": 128, "weight_decay": 0.0, "dropout": 0.0, "max_class_weight": None}


def prepare(work: Path, sizes: tuple[int, ...]) -> FerplusTasks:
    """The tasks, extracted once: a finished ``work`` folder is reused."""
    marker = work / f"done_{max(sizes)}"
    if not marker.is_file():
        build(FERPLUS, work, sizes, held_out=("valid", "test"))
        marker.touch()
    labels = {task: {p.name: p for p in (work / task).iterdir() if p.is_dir()} for task in TASKS}
    return FerplusTasks(work / "features", labels)


def rows_of(task: str, size: int, tasks: FerplusTasks) -> list[tuple[str, ...]]:
    """Head, baseline and METHOD.md's head of one task and size: model, valid, test, test tuned, seconds."""
    from faceaffect.downstream.abaw import read_annotations
    from faceaffect.downstream.features import FeatureStore
    from faceaffect.downstream.options import TrainOptions
    from faceaffect.downstream.workflow import evaluate, train_head

    form = TASKS[task]
    store = FeatureStore.open(tasks.store)
    splits = (f"train_{size}", "valid", "test")
    train, valid, test = (read_annotations(tasks.labels[task][name], TASKS[task]) for name in splits)
    rows = []
    for pinned in ({}, METHOD_HEAD):
        start = time.perf_counter()
        options = TrainOptions(windows=(0,), **pinned)  # one-frame videos: nothing to smooth
        predictor, report = train_head(form, store, train, valid, options=options)
        seconds = time.perf_counter() - start
        held_out = evaluate(predictor, store, test)
        members = [("head", predictor)] if pinned else [("head", predictor), ("baseline", predictor.baseline)]
        for name, member in members:
            label = "METHOD.md head" if pinned else name
            figures = held_out[name]
            tuned = f"{figures['tuned']:.4f}" if "tuned" in figures else "-"
            model = member.head.config.training["model"]
            hidden = [c["score"] for c in report["search"] if c["hidden"]] if label == "head" else []
            rows.append(
                (task, str(size), f"{label}: {model}", f"{report[name]['per_frame']:.4f}",
                 f"{figures['per_frame']:.4f}", tuned, f"{max(hidden):.4f}" if hidden else "",
                 f"{seconds:.0f}" if name == "head" else "")
            )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for crops, features and labels")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    args = parser.parse_args()
    if not FERPLUS.is_dir():
        sys.exit(f"FER+ not found at {FERPLUS}")
    sizes = tuple(sorted(args.sizes))
    start = time.perf_counter()
    tasks = prepare(args.work, sizes)
    machine = platform.processor() or platform.machine()
    print(f"features ready in {time.perf_counter() - start:.0f} s ({machine})", flush=True)
    header = ("task", "size", "model", "valid", "test", "test tuned", "hidden", "train s")
    rows = [header] + [row for task in TASKS for size in sizes for row in rows_of(task, size, tasks)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)), flush=True)


if __name__ == "__main__":
    main()
