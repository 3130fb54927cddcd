"""Reference side of bench/onnx_vs_hsemotion.py, run by the reference environment's python.

The ``hsemotion-onnx`` package reads ``~/.hsemotion/<model>.onnx`` (the caller points HOME at a folder
holding our exported graph there) and classifies a list of face crops with ``predict_multi_emotions``, its
batched call.

    python hsemotion_onnx_runner.py CROPS_DIR --model enet_b0_8_best_vgaf
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import sys
from pathlib import Path

import cv2
from hsemotion_onnx.facial_emotions import HSEmotionRecognizer, get_model_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serve import serve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("crops", type=Path)
    parser.add_argument("--model", default="enet_b0_8_best_vgaf")
    args = parser.parse_args()
    crops = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(args.crops.glob("*.png"))]
    with contextlib.redirect_stdout(sys.stderr):  # in case the package prints while loading
        recognizer = HSEmotionRecognizer(model_name=args.model)
    _, scores = recognizer.predict_multi_emotions(crops, logits=False)
    serve(
        lambda: recognizer.predict_multi_emotions(crops, logits=False),
        faces=len(crops),
        probabilities=scores[:, :8].tolist(),
        model_sha256=hashlib.sha256(Path(get_model_path(args.model)).read_bytes()).hexdigest(),
        threads=recognizer.ort_session.get_session_options().intra_op_num_threads,
    )


if __name__ == "__main__":
    main()
