"""How much of this CPU's compute the ONNX Runtime path uses: model FLOPs x images/s over the measured
float32 matmul peak.

FLOPs are counted by torch's FlopCounterMode (2 per multiply-add, convolutions and matmuls; elementwise work
and pooling are not counted, so the fraction is a lower bound of the work done). The peak is the best of
numpy's and torch's 2048 x 2048 float32 matmul on all cores. Images/s are faceaffect's OnnxEngine on
preprocessed batches the way the Recognizer runs them (one single-threaded batch in flight per physical
core), then per face with preprocessing included. Random weights with BatchNorm statistics from real faces.

    python bench/compute_fraction.py --models enet_b0_8_best_vgaf mbf_va_mtl --seconds 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import calibrated_model, face_crops, machine

MATMUL = 2048


def matmul_peak(repeats: int = 10) -> tuple[float, str]:
    """Best float32 matmul GFLOP/s of numpy and torch (all threads) and which one reached it."""
    import torch

    a = np.random.default_rng(0).standard_normal((MATMUL, MATMUL), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((MATMUL, MATMUL), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    flops = 2 * MATMUL**3
    best = {}
    for name, call in (("numpy", lambda: a @ b), ("torch", lambda: ta @ tb)):
        call()
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - start)
        best[name] = flops / min(seconds) / 1e9
    winner = max(best, key=best.get)
    return best[winner], f"{winner} ({', '.join(f'{k} {v:.0f}' for k, v in best.items())} GFLOP/s)"


def model_flops(model) -> int:
    """FLOPs of one image through the model (convolutions and matmuls, 2 per multiply-add)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    size = model.config.input_size
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    return counter.get_total_flops()


def images_per_second(run, items: int, seconds: float) -> float:
    """Best rate of ``run()`` (which handles ``items`` images) over repeated calls for about ``seconds``."""
    run()
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return items / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["enet_b0_8_best_vgaf", "mbf_va_mtl"])
    parser.add_argument("--faces", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32, help="Recognizer batch_size (its default)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timing budget per measurement")
    args = parser.parse_args()

    crops = face_crops(args.faces)
    peak, peak_source = matmul_peak()
    print(f"machine: {machine()}")
    print(f"matmul peak: {peak:.0f} GFLOP/s float32, {MATMUL}x{MATMUL}, best of {peak_source}")
    print(f"{'model':<22} {'GFLOP/img':>9} {'net img/s':>9} {'fraction':>8} {'face/s':>8} {'fraction':>8}")
    for name in args.models:
        flops, net, faces = measure(name, crops, args.batch_size, args.seconds)
        print(f"{name:<22} {flops / 1e9:9.3f} {net:9.1f} {flops * net / 1e9 / peak:8.1%} "
              f"{faces:8.1f} {flops * faces / 1e9 / peak:8.1%}")  # fmt: skip


def measure(name: str, crops: list[np.ndarray], batch_size: int, seconds: float) -> tuple[int, float, float]:
    """FLOPs per image, network images/s and faces/s (preprocessing included) of one model on ONNX Runtime."""
    from faceaffect.export import export_model
    from faceaffect.preprocess import preprocess
    from faceaffect.recognizer import Recognizer

    model = calibrated_model(name, crops)
    flops = model_flops(model)
    with tempfile.TemporaryDirectory(prefix="faceaffect-bench-") as tmp:
        export_model(model, tmp, check_images=crops[:8])
        recognizer = Recognizer(tmp, engine="onnx", batch_size=batch_size)
        engine = recognizer.engine
        batch = preprocess(crops, recognizer.config)
        size = min(batch_size, engine.preferred_batch or batch_size)
        chunks = [batch[i : i + size] for i in range(0, len(batch), size)]
        with ThreadPoolExecutor(engine.concurrency) as pool:
            net = images_per_second(lambda: list(pool.map(engine.run, chunks)), len(batch), seconds)
        faces = images_per_second(lambda: recognizer.predict(crops), len(crops), seconds)
    return flops, net, faces


if __name__ == "__main__":
    main()
