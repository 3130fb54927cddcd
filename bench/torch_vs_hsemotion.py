"""Per-face throughput on torch: faceaffect's torch engine vs the ``hsemotion`` package, same architecture
and the same weights.

EfficientNet-B0 (timm ``tf_efficientnet_b0``, 8 classes) with random weights whose BatchNorm statistics come
from real faces; the weights go to the reference side, which pickles the whole module where hsemotion looks
for it (``~/.hsemotion/enet_b0_8_best_vgaf.pt``, HOME pointed at a temporary folder). Both classify the same
real face crops from uint8 RGB arrays (preprocessing included): hsemotion with its batched
``predict_multi_emotions``, ours with ``Recognizer(model, engine="torch").predict``. Trials alternate.
Needs the reference environment (see bench/reference/README.md).

    python bench/torch_vs_hsemotion.py --faces 32 --trials 6
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    Reference,
    alternate,
    calibrated_model,
    comparison,
    face_crops,
    machine,
    save_crops,
    timm_weights,
)

MODEL = "enet_b0_8_best_vgaf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=32)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads, both sides (default: torch's)"
    )
    args = parser.parse_args()

    import torch

    from faceaffect.recognizer import Recognizer

    if args.threads:
        torch.set_num_threads(args.threads)
    crops = face_crops(args.faces)
    model = calibrated_model(MODEL, crops)
    with tempfile.TemporaryDirectory(prefix="faceaffect-bench-") as tmp:
        root = Path(tmp)
        np.savez(root / "weights.npz", **timm_weights(model))
        save_crops(crops, root / "crops")
        recognizer = Recognizer(model, engine="torch", batch_size=args.batch_size)
        extra = ["--threads", str(args.threads)] if args.threads else []
        env = {"HOME": str(root / "home"), "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
        runner = ("hsemotion_runner.py", str(root / "crops"), str(root / "weights.npz"), "--model", MODEL)
        with Reference(*runner, *extra, env=env) as reference:
            ours, theirs = alternate(lambda: recognizer.predict(crops), reference, args.trials)
            ours_p = np.stack([p.probabilities for p in recognizer.predict(crops)])
            theirs_p = np.asarray(reference.info["probabilities"])
            reference_threads = reference.info["torch_threads"]
        print(
            f"per-face throughput, {MODEL} (EfficientNet-B0, 224 px), torch {torch.__version__}, the same "
            f"weights on both sides; {args.faces} real face crops, uint8 RGB in, probabilities out; "
            f"{args.trials} alternating trials\n"
            f"machine: {machine()}\n"
            f"ours: Recognizer(engine='torch').predict, batches of <= {args.batch_size}, inference mode, "
            f"channels-last, {torch.get_num_threads()} threads; hsemotion: predict_multi_emotions (one "
            f"batch, autograd on), {reference_threads} threads"
        )
        print(comparison("faceaffect (torch)", "faces/s", args.faces, ours, theirs, "hsemotion"))
        difference = np.abs(ours_p - theirs_p).max()
        print(f"max |probability difference| (same weights, same PIL preprocessing): {difference:.1e}")


if __name__ == "__main__":
    main()
