"""Reference side of bench/torch_vs_hsemotion.py, run by the reference environment's python: the
``hsemotion`` package classifies a list of face crops with its batched ``predict_multi_emotions``, on the
caller's weights (see ``_hsemotion_model.py``).

    python hsemotion_runner.py CROPS_DIR WEIGHTS.npz --model enet_b0_8_best_vgaf
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _hsemotion_model import hsemotion_recognizer
from _serve import serve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("crops", type=Path)
    parser.add_argument("weights", type=Path)
    parser.add_argument("--model", default="enet_b0_8_best_vgaf")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    recognizer = hsemotion_recognizer(args.weights, args.model, args.threads)
    crops = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(args.crops.glob("*.png"))]
    _, scores = recognizer.predict_multi_emotions(crops, logits=False)
    serve(
        lambda: recognizer.predict_multi_emotions(crops, logits=False),
        faces=len(crops),
        probabilities=scores.tolist(),
        torch_threads=torch.get_num_threads(),
    )


if __name__ == "__main__":
    main()
