"""End-to-end speed of ``faceaffect.analyze`` on a video: decode, detect, track, crop, recognise.

Prints frames per second (analysed frames / wall time, model loading excluded) and the peak resident memory
of the process. Without downloaded weights the model is built with random weights (same architecture, same
cost); denormals are flushed, as random weights would otherwise make torch 10-80x slower on CPU.

    python bench/analyze_speed.py                                   # default model, every frame
    python bench/analyze_speed.py --model enet_b0_8_va_mtl --detect-every 3 --min-face-size 64 --threads 1
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

VIDEO = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "videos"
    / "pyfeat_tests"
    / "WolfgangLanger_Pexels.mp4"
)


def build_recognizer(model: str, batch_size: int, threads: int):
    """A Recognizer with the published weights when they are cached, else with random weights."""
    import torch

    from faceaffect.core.errors import FaceaffectError
    from faceaffect.models import create_model
    from faceaffect.recognizer import Recognizer

    torch.set_flush_denormal(True)
    torch.set_num_threads(threads)
    try:
        return Recognizer(model, batch_size=batch_size, offline=True), "loaded weights"
    except FaceaffectError:
        return Recognizer(create_model(model), batch_size=batch_size), "random weights"


def main() -> None:
    from faceaffect.analysis import Analyzer
    from faceaffect.hub.registry import DEFAULT_MODEL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=VIDEO)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--detect-every", type=int, default=1)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument(
        "--min-face-size", type=float, default=None, help="detector option (default: its own)"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not args.video.is_file():
        sys.exit(f"video not found: {args.video}")
    recognizer, weights = build_recognizer(args.model, args.batch_size, args.threads)
    analyzer = Analyzer(recognizer, detect_every=args.detect_every, stride=args.stride,
                        max_frames=args.max_frames, min_face_size=args.min_face_size)  # fmt: skip
    start = time.perf_counter()
    result = analyzer.analyze(args.video)
    seconds = time.perf_counter() - start
    faces = sum(len(frame.faces) for frame in result.frames)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    settings = (f"batch {args.batch_size}; detect every {args.detect_every}; stride {args.stride}; "
                f"min face {args.min_face_size or 'default'}; {args.threads} threads")  # fmt: skip
    print(f"video: {args.video.name}; model: {recognizer.config.name} ({weights}); {settings}")
    print(f"{len(result)} frames, {faces} faces in {seconds:.1f} s: {len(result) / seconds:.1f} frames/s; "
          f"peak memory (RSS) {peak_mib:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
