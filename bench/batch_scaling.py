"""Corpus runs on this machine: inputs/s and frames/s of single-process ``analyze``, of ``batch`` with the
local pool and with Ray, side by side on the shared sample videos (every video file of ../shared/data/videos
and its folder of frames: 11 inputs), and the frame rate the cores allow.

The bound: each stage of the analysis (decode; detection and tracking; recognition with its crops and
preprocessing) timed alone on one thread over the same inputs, as bench/video_vs_reference.py's profile
does; frames x cores / CPU seconds of all stages is the most the cores can give. The local pool should reach
90 % of it, Ray should be within 10 % of the local pool. Ray's overhead per input: its run's wall time less
the local pool's, per input (actors' start and model loading excluded from both, reported apart). CPU per
frame (single process; local workers with their start) against the stages' sum shows what the pipeline adds,
whatever share of the cores other processes leave.

Modes alternate trial by trial (single, local, Ray) so load from other processes hits all alike.

    python bench/batch_scaling.py                      # every frame, 2 trials
    python bench/batch_scaling.py --max-frames 60 --trials 3
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, machine

VIDEOS = SHARED / "videos"


def stage_bound(paths: list[str], options) -> tuple[dict[str, float], int]:
    """CPU seconds of each stage over every input (stages one after another, one input at a time), and
    the frames analysed."""
    from faceaffect.analysis import Analyzer
    from faceaffect.preprocess import crop_box
    from faceaffect.video.tracking import FrameTracker

    analyzer = Analyzer(options=options)
    cpu = dict.fromkeys(("decode", "detect+track", "recognise"), 0.0)
    frames = 0
    for path in paths:
        source = analyzer.open(path)
        start = time.process_time()
        decoded = list(source)
        cpu["decode"] += time.process_time() - start
        tracker = FrameTracker(analyzer.detector, analyzer.tracking, track=source.kind == "video")
        start = time.process_time()
        tracked = [*(item for frame in decoded for item in tracker.push(frame)), *tracker.flush()]
        cpu["detect+track"] += time.process_time() - start
        start = time.process_time()
        crops = [crop_box(item.frame.image, box) for item in tracked for box in item.boxes.values()]
        analyzer.recognizer.predict(crops)
        cpu["recognise"] += time.process_time() - start
        frames += len(decoded)
    return cpu, frames


def single(analyzer, paths: list[str]) -> Run:
    """Analysing each input in turn in this process, the models loaded."""
    start, cpu, frames = time.perf_counter(), time.process_time(), 0
    for path in paths:
        frames += len(analyzer.analyze(path).frames)
    return Run(time.perf_counter() - start, 0.0, frames, time.process_time() - cpu)


def pooled(engine: str, out: Path, options) -> Run:
    """One ``batch`` run; its CPU time is known for local workers (this process's children) only."""
    from faceaffect.batch import Job, PoolOptions, run_batch

    shutil.rmtree(out, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = run_batch([VIDEOS], out, Job(str(out), analysis=options), PoolOptions(engine=engine))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if report.failed:
        raise SystemExit(f"{engine}: {report.failed[0].input} failed: {report.failed[0].error}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime if engine == "local" else None
    return Run(report.seconds - report.start_seconds, report.start_seconds, report.frames, cpu)


@dataclass
class Run:
    """Wall seconds (workers started), seconds to start the workers, frames, CPU seconds (None: unknown;
    for the local pool with the workers' start)."""

    wall: float
    start: float
    frames: int
    cpu: float | None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-frames", type=int, default=None, help="frames per input (default: all)")
    parser.add_argument("--trials", type=int, default=2)
    args = parser.parse_args()
    if not VIDEOS.is_dir():
        raise SystemExit(f"sample videos not found at {VIDEOS}")
    # a private local Ray: no usage reports, token authentication with a token of its own (none written)
    token = secrets.token_hex(32)
    os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    import ray

    from faceaffect.analysis import Analyzer
    from faceaffect.batch.inputs import analysis_tasks
    from faceaffect.options import AnalyzerOptions
    from faceaffect.runtime.onnx_engine import physical_cores

    options = AnalyzerOptions(max_frames=args.max_frames)
    paths = [task.path for task in analysis_tasks([VIDEOS])]
    cores = physical_cores()
    print(f"{len(paths)} inputs (frames per input: {args.max_frames or 'all'}); machine: {machine()}")
    cpu, frames = stage_bound(paths, options)
    bound = frames * cores / sum(cpu.values())
    stages = ", ".join(f"{name} {1000 * seconds / frames:.2f}" for name, seconds in cpu.items())
    total = 1000 * sum(cpu.values()) / frames
    print(f"stage CPU ms per frame: {stages}; sum {total:.2f}: at most {bound:.1f} frames/s on {cores} cores")
    start = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ray_start = time.perf_counter() - start
    analyzer = Analyzer(options=options)
    names = ("single-process analyze", "local pool", "Ray")
    runs: dict[str, list[Run]] = {name: [] for name in names}
    root = Path(tempfile.mkdtemp(prefix="faceaffect-scaling-"))
    try:
        single(analyzer, paths[:1])  # warm: files in the page cache
        for _ in range(args.trials):
            runs["single-process analyze"].append(single(analyzer, paths))
            for name, engine in (("local pool", "local"), ("Ray", "ray")):
                runs[name].append(pooled(engine, root / engine, options))
    finally:
        ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)
    walls = {name: statistics.median(run.wall for run in trials) for name, trials in runs.items()}
    for name, trials in runs.items():
        wall, counted = walls[name], trials[-1].frames
        started = statistics.median(run.start for run in trials)
        cpus = [run.cpu for run in trials if run.cpu is not None]
        used = f", {1000 * statistics.median(cpus) / counted:.2f} ms CPU per frame" if cpus else ""
        print(f"{name:23s} {len(paths) / wall:6.3f} inputs/s, {counted / wall:6.1f} frames/s "
              f"({counted / wall / bound:5.1%} of the bound), median of {len(trials)}; workers' start "
              f"{started:.1f} s{used}")  # fmt: skip
    overhead = (walls["Ray"] - walls["local pool"]) / len(paths)
    print(
        f"Ray against the local pool: {walls['local pool'] / walls['Ray']:.1%} of its rate; overhead "
        f"{1000 * overhead:+.0f} ms per input; starting the local Ray instance took {ray_start:.1f} s"
    )


if __name__ == "__main__":
    main()
