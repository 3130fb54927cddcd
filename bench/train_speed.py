"""Training throughput of the recipe on FER+ train images: images/s per input size, with and without SAM.

Runs ``faceaffect.train.train`` for a few steps of one epoch (real data read from the archive, decoding and
augmentation included, no validation) and reads ``images_per_s`` from its metrics.

    python bench/train_speed.py --data /work/shared/data/ferplus/FER2013Train.tar.gz --sizes 48 64 --frozen
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from faceaffect.train import TrainConfig, train


def measure(data: str, model: str, size: int, sam: bool, frozen: bool, args: argparse.Namespace) -> float:
    """Median images per second of ``args.repeats`` short epochs, after ``args.warmup`` untimed steps."""
    with tempfile.TemporaryDirectory() as out:
        options = {
            "model": {"name": model, "input_size": size},
            "data": {"kind": "ferplus", "train": data},
            "stages": [{"epochs": 1, "lr": 1e-4, "freeze_backbone": frozen}],
            "batch_size": args.batch_size,
            "sam": sam,
            "num_workers": args.workers,
            "device": "cpu",
            "tensorboard": False,
            "output_dir": out,
        }
        if args.warmup:
            train(TrainConfig.from_dict({**options, "max_steps_per_epoch": args.warmup}))
        config = TrainConfig.from_dict({**options, "max_steps_per_epoch": args.steps})
        speeds = [float(train(config).history[0]["images_per_s"]) for _ in range(args.repeats)]
    return statistics.median(speeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="/work/shared/data/ferplus/FER2013Train.tar.gz")
    parser.add_argument("--model", default="mbf_va_mtl")
    parser.add_argument("--sizes", type=int, nargs="+", default=[48, 64])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--frozen", action="store_true", help="also time stage 1 (backbone frozen)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    setup = f"batch {args.batch_size}, {args.threads} threads, {args.workers} workers, {args.steps} steps"
    print(f"{args.model}, {setup}")
    print("size  stage          SAM   images/s  FER+ train epoch (27,097 images)")
    for size in args.sizes:
        for frozen in (True, False) if args.frozen else (False,):
            for sam in (False, True):
                start = time.perf_counter()
                speed = measure(args.data, args.model, size, sam, frozen, args)
                stage = "1 (frozen)" if frozen else "2 (all)"
                print(
                    f"{size:4d}  {stage:<12}  {'on' if sam else 'off':<4}  {speed:8.1f}  "
                    f"{27097 / speed / 60:5.1f} min   (run {time.perf_counter() - start:.0f} s)"
                )


if __name__ == "__main__":
    main()
