"""End-to-end video frames/s: ``faceaffect analyze`` (ONNX Runtime) vs the reference recipe of the upstream
demo (facenet-pytorch MTCNN on every frame, then hsemotion's recognizer one face at a time).

Both sides analyse the same frames of the same video with the same EfficientNet-B0 weights (random, BatchNorm
statistics from real faces): ours through the Python API (``Analyzer(Recognizer(folder, engine="onnx"))``:
decode, BlazeFace, tracking, batched recognition), the reference in its own environment
(bench/reference/video_reference_runner.py). Runs alternate. Needs the reference environment (see
bench/reference/README.md).

    python bench/video_vs_reference.py --frames 120 --trials 2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    SHARED,
    Reference,
    alternate,
    calibrated_model,
    comparison,
    face_crops,
    machine,
    timm_weights,
)

MODEL = "enet_b0_8_best_vgaf"
VIDEO = SHARED / "videos" / "pyfeat_tests" / "WolfgangLanger_Pexels.mp4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=VIDEO)
    parser.add_argument("--frames", type=int, default=120, help="first N frames (0: all)")
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32, help="Recognizer batch_size (its default)")
    parser.add_argument(
        "--small-face-every", type=int, default=10, help="BlazeFace tiles every N frames (its default)"
    )
    parser.add_argument("--detect-every", type=int, default=1, help="detector every N frames (default)")
    parser.add_argument(
        "--reference-threads",
        type=int,
        default=None,
        help="torch threads of the reference (default: torch's)",
    )
    args = parser.parse_args()
    if not args.video.is_file():
        raise SystemExit(f"video not found: {args.video}")

    from faceaffect.analysis import Analyzer
    from faceaffect.export import export_model
    from faceaffect.recognizer import Recognizer

    crops = face_crops(32)
    model = calibrated_model(MODEL, crops)
    with tempfile.TemporaryDirectory(prefix="faceaffect-bench-") as tmp:
        root = Path(tmp)
        np.savez(root / "weights.npz", **timm_weights(model))
        export_model(model, root / "ours", check_images=crops[:8])
        analyzer = Analyzer(
            Recognizer(root / "ours", engine="onnx", batch_size=args.batch_size),
            max_frames=args.frames or None,
            small_face_every=args.small_face_every,
            detect_every=args.detect_every,
        )
        counts: dict[str, int] = {}

        cpu_seconds: list[float] = []  # process CPU time (all threads) of each run

        def ours() -> None:
            start = time.process_time()
            result = analyzer.analyze(args.video)
            cpu_seconds.append(time.process_time() - start)
            counts.update(frames=len(result.frames), faces=sum(len(f.faces) for f in result.frames))

        env = {"HOME": str(root / "home"), "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
        runner = ("video_reference_runner.py", str(args.video), str(root / "weights.npz"))
        threads = ["--threads", str(args.reference_threads)] if args.reference_threads else []
        with Reference(*runner, "--frames", str(args.frames), *threads, env=env) as reference:
            our_times, reference_times = alternate(ours, reference, args.trials)
            theirs = reference.last
        if theirs["frames"] != counts["frames"]:
            raise SystemExit(f"frame counts differ: ours {counts['frames']}, reference {theirs['frames']}")
        print(
            f"end-to-end video, {args.video.name}, first {counts['frames']} frames, {MODEL} "
            f"(EfficientNet-B0), {args.trials} alternating runs\n"
            f"machine: {machine()}\n"
            f"ours: Analyzer (PyAV decode, BlazeFace with detect_every={args.detect_every} and "
            f"small_face_every={args.small_face_every}, tracking, decode and detection on a thread ahead of "
            f"ONNX Runtime on the faces of {args.batch_size} frames at a time), {counts['faces']} faces; "
            f"reference: OpenCV decode, MTCNN "
            f"every frame, hsemotion one face at a time, {theirs['faces']} faces, "
            f"{theirs['threads']} torch threads"
        )
        print(comparison("faceaffect analyze", "frames/s", counts["frames"], our_times, reference_times,
                         "reference recipe"))  # fmt: skip
        print(
            f"(reference time in the numpy NMS stand-in for torchvision's broken compiled op: "
            f"{theirs['nms_seconds']:.2f} s of {reference_times[-1]:.1f} s in its last run)"
        )
        best = int(np.argmin(our_times))
        print(profile(analyzer, args.video, our_times[best], cpu_seconds[1:][best]))


def profile(analyzer, video: Path, pipeline_seconds: float, pipeline_cpu: float) -> str:
    """Where our time goes: each stage alone on the same frames (wall and CPU time), against the whole
    pipeline's best run; the CPU work per frame bounds the frame rate on this machine's cores."""
    from faceaffect.preprocess import crop_box, preprocess
    from faceaffect.video.tracking import FrameTracker

    recognizer, size = analyzer.recognizer, analyzer.recognizer.batch_size
    tracker = FrameTracker(analyzer.detector, analyzer.tracking)
    frames, *decode = timed(lambda: list(analyzer.open(video)))
    tracked, *detect = timed(
        lambda: [*(item for frame in frames for item in tracker.push(frame)), *tracker.flush()]
    )
    crops = [crop_box(item.frame.image, box) for item in tracked for box in item.boxes.values()]
    _, prepare_wall, _ = timed(
        lambda: [preprocess(crops[i : i + size], recognizer.config) for i in range(0, len(crops), size)]
    )
    _, *recognise = timed(lambda: recognizer.predict(crops))
    stages = {"decode": decode, "detect+track": detect, "recognise": recognise}  # name -> [wall, CPU]
    wall = {name: seconds for name, (seconds, _) in stages.items()}
    wall["glue"] = pipeline_seconds - sum(wall.values())
    cpu = {name: seconds for name, (_, seconds) in stages.items()}
    n, cores, work = len(frames), len(os.sched_getaffinity(0)), sum(cpu.values())
    parts = ", ".join(f"{k} {1000 * s / n:.1f} ms ({s / pipeline_seconds:.0%})" for k, s in wall.items())
    return (
        f"profile of ours per frame (stages timed one after another on the same {n} frames, {len(crops)} "
        f"faces; best pipeline run {1000 * pipeline_seconds / n:.1f} ms/frame; the pipeline overlaps "
        f"stages, so glue can be negative): {parts}; recognise includes "
        f"preprocessing, {1000 * prepare_wall / max(1, len(crops)):.1f} ms/face on one thread.\n"
        f"CPU time per frame (all threads): "
        + ", ".join(f"{name} {1000 * c / n:.1f} ms" for name, c in cpu.items())
        + f"; sum {1000 * work / n:.1f} ms, so at most {n * cores / work:.0f} frames/s on {cores} fully "
        f"used cores; the best pipeline run used {pipeline_cpu / pipeline_seconds:.2f} cores "
        f"({1000 * pipeline_cpu / n:.1f} ms CPU per frame)"
    )


def timed(step):
    """(what ``step()`` returns, its wall seconds, its process CPU seconds over all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = step()
    return value, time.perf_counter() - wall, time.process_time() - cpu


if __name__ == "__main__":
    main()
