"""Per-face throughput on ONNX Runtime: faceaffect's Recognizer vs the ``hsemotion-onnx`` package, SAME graph.

One EfficientNet-B0 (random weights, BatchNorm statistics from real faces) is exported once in the published
layout and placed where hsemotion-onnx looks for its model (``~/.hsemotion/enet_b0_8_best_vgaf.onnx``, with
HOME pointed at a temporary folder). Both sides classify the same real face crops, from uint8 RGB arrays to
probabilities (preprocessing included): hsemotion-onnx with its batched ``predict_multi_emotions``, ours with
``Recognizer.predict``. Trials alternate between the two. Needs the reference environment (see
bench/reference/README.md).

    python bench/onnx_vs_hsemotion.py --faces 64 --trials 10
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Reference, alternate, calibrated_model, comparison, face_crops, machine, save_crops

MODEL = "enet_b0_8_best_vgaf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=64)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32, help="Recognizer batch_size (its default)")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads per batch (ours)")
    args = parser.parse_args()

    import onnxruntime

    from faceaffect.export import export_model
    from faceaffect.hub import sha256_file
    from faceaffect.recognizer import Recognizer

    crops = face_crops(args.faces)
    with tempfile.TemporaryDirectory(prefix="faceaffect-bench-") as tmp:
        root = Path(tmp)
        export_model(
            calibrated_model(MODEL, crops), root / "ours", layout="published", check_images=crops[:16]
        )
        (root / "home" / ".hsemotion").mkdir(parents=True)
        shutil.copy(root / "ours" / "model.onnx", root / "home" / ".hsemotion" / f"{MODEL}.onnx")
        save_crops(crops, root / "crops")
        recognizer = Recognizer(
            root / "ours", engine="onnx", batch_size=args.batch_size, threads=args.threads
        )
        runner = ("hsemotion_onnx_runner.py", str(root / "crops"), "--model", MODEL)
        with Reference(*runner, env={"HOME": str(root / "home")}) as reference:
            ours, theirs = alternate(lambda: recognizer.predict(crops), reference, args.trials)
            ours_p = np.stack([p.probabilities for p in recognizer.predict(crops)])
            theirs_p = np.asarray(reference.info["probabilities"])
            engine, info = recognizer.engine, reference.info
            same = info["model_sha256"] == sha256_file(root / "ours" / "model.onnx")
            agree = np.mean(ours_p.argmax(1) == theirs_p.argmax(1))
        print(
            f"per-face throughput, {MODEL} (EfficientNet-B0, 224 px), the same ONNX graph on both sides "
            f"(sha256 equal: {'yes' if same else 'NO'}); {args.faces} real face crops, uint8 RGB in, "
            f"probabilities out; {args.trials} alternating trials; onnxruntime {onnxruntime.__version__}\n"
            f"machine: {machine()}\n"
            f"ours: Recognizer.predict, batches of {min(args.batch_size, engine.preferred_batch or 10**9)}, "
            f"{engine.concurrency} in flight, "
            f"{engine.threads} thread(s) each; hsemotion-onnx: predict_multi_emotions (one batch), "
            f"{info['threads']} intra-op threads (0: onnxruntime's default, one per core)"
        )
        print(comparison("faceaffect (onnxruntime)", "faces/s", args.faces, ours, theirs, "hsemotion-onnx"))
        print(f"same top label for {agree:.0%} of faces (the inputs differ by OpenCV vs PIL resize rounding)")


if __name__ == "__main__":
    main()
