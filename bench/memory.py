"""Peak memory of the main job on long videos: does ``faceaffect analyze`` stay flat as the video grows?

A real one-face clip (pyfeat_tests/WolfgangLanger_Pexels.mp4, cropped and scaled to 640x360) is encoded once
with PyAV and looped, by copying its packets, to each asked duration (default 1, 10 and 60 minutes, at 30
frames/s); the videos are kept in a temporary folder between runs. Each one is analysed with every output on,

    faceaffect analyze VIDEO -o t.parquet --summary s.csv --plots p/ --video a.mp4

in its own process, whose resident memory (RSS) is sampled twice a second and whose peak is read from the
kernel when it exits. The table gives per duration: frames, wall time and frames/s (model loading and every
output included), peak RSS ("peak MB"), RSS when the summary file appears ("analysed MB": every frame is
analysed by then, and the table is written), and the growth of RSS per 1,000 frames: of the peak from the
previous duration ("across"), and within the run from 20 % of that time to its end ("within"). MB are 10^6
bytes.
The target: the longest run under 1 GB, and within 10 % of the peak of the run before it.

    python bench/memory.py                        # 1, 10 and 60 minutes (the last takes 20-30 min of 2 cores)
    python bench/memory.py --minutes 1 10 --env MALLOC_ARENA_MAX=1 --series rss.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from _common import SHARED, machine
from PIL import Image

CLIP = SHARED / "videos" / "pyfeat_tests" / "WolfgangLanger_Pexels.mp4"
WIDTH, HEIGHT = 640, 360
TARGET_GB = 1.0
TARGET_RATIO = 1.10


def fitted(image: np.ndarray) -> np.ndarray:
    """The frame centre-cropped to 16:9 and scaled to 640x360."""
    height, width = image.shape[:2]
    crop_w, crop_h = min(width, round(height * WIDTH / HEIGHT)), min(height, round(width * HEIGHT / WIDTH))
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    picture = Image.fromarray(image[top : top + crop_h, left : left + crop_w])
    return np.asarray(picture.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR))


def encode_segment(clip: Path, path: Path, fps: int) -> None:
    """The clip re-encoded as H.264 640x360 at ``fps``, with one key frame, at the start."""
    import av

    with av.open(str(clip)) as source, av.open(str(path), "w") as target:
        stream = target.add_stream("libx264", rate=fps, options={"crf": "23", "bf": "0"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for frame in source.decode(video=0):
            image = fitted(frame.to_ndarray(format="rgb24"))
            target.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        target.mux(stream.encode(None))


def looped_video(clip: Path, folder: Path, minutes: float, fps: int) -> tuple[Path, int]:
    """The clip looped to ``minutes`` (whole loops, packets copied: no second encoding); (path, frames)."""
    import av

    segment = folder / f"{clip.stem}_{fps}fps.mp4"
    if not segment.is_file():
        encode_segment(clip, segment, fps)
    with av.open(str(segment)) as source:
        packets = [packet for packet in source.demux(video=0) if packet.size]
    loops = max(1, round(minutes * 60 * fps / len(packets)))
    path = folder / f"{clip.stem}_{fps}fps_{minutes:g}min.mp4"
    if path.is_file():
        return path, loops * len(packets)
    partial = path.with_suffix(".part.mp4")
    with av.open(str(segment)) as source, av.open(str(partial), "w") as target:
        template = source.streams.video[0]
        stream = target.add_stream_from_template(template)
        period = int(Fraction(len(packets), fps) / template.time_base)  # one loop in the stream's time base
        for loop in range(loops):
            for packet in source.demux(template):
                if not packet.size:
                    continue
                packet.pts += loop * period
                packet.dts += loop * period
                packet.stream = stream
                target.mux(packet)
            source.seek(0, stream=template)
    partial.replace(path)
    return path, loops * len(packets)


def rss_kib(pid: int) -> int | None:
    """The resident memory of a running process in KiB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def analyze(video: Path, folder: Path, env: dict[str, str], interval: float) -> Run:
    """Run the CLI on ``video`` with every output on, sampling its RSS until it exits."""
    out = folder / f"out_{video.stem}"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "faceaffect", "analyze", str(video), "-o", str(out / "t.parquet"),
               "--summary", str(out / "s.csv"), "--plots", str(out / "p"), "--video", str(out / "a.mp4"),
               "--quiet"]  # fmt: skip
    log = folder / "stderr.txt"
    start = time.perf_counter()
    with log.open("w") as stderr:
        process = subprocess.Popen(command, env={**os.environ, **env}, stderr=stderr)
    samples: list[tuple[float, int]] = []
    analysed = math.nan
    while True:  # os.wait4, not Popen.poll: it gives the child's peak RSS as the kernel counted it
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        kib = rss_kib(process.pid)
        if kib is not None:
            samples.append((time.perf_counter() - start, kib))
        if math.isnan(analysed) and out.is_dir() and any("s.csv" in path.name for path in out.iterdir()):
            analysed = time.perf_counter() - start  # the summary is written once every frame is analysed
        time.sleep(interval)
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"analyze failed (exit {os.waitstatus_to_exitcode(status)}): {log.read_text().strip()}")
    return Run(time.perf_counter() - start, usage.ru_maxrss, samples, analysed)


@dataclass
class Run:
    """One analyze process: wall seconds, peak RSS (KiB), RSS samples (seconds, KiB), and the second at
    which the analysis ended and the outputs began."""

    seconds: float
    peak: int
    samples: list[tuple[float, int]]
    analysed: float

    def rss_at(self, second: float) -> int:
        """The last RSS sample taken at or before ``second`` (KiB)."""
        return max((sample for sample in self.samples if sample[0] <= second), default=(0, 0))[1]

    def growth_during_analysis(self, frames: int) -> float:
        """MB per 1,000 frames between 20 % of the analysis and its end (at a steady frame rate)."""
        if math.isnan(self.analysed):
            return math.nan
        growth = self.rss_at(self.analysed) - self.rss_at(0.2 * self.analysed)
        return megabytes(growth) / (0.8 * frames / 1000)


def megabytes(kib: float) -> float:
    return kib * 1024 / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--fps", type=int, default=30, help="frame rate of the looped videos")
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "faceaffect-memory")
    parser.add_argument("--env", nargs="*", default=[], help="KEY=VALUE for the analyze processes")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between RSS samples")
    parser.add_argument("--series", type=Path, help="write every RSS sample here (CSV)")
    args = parser.parse_args()
    if not args.clip.is_file():
        sys.exit(f"clip not found: {args.clip}")
    env = dict(item.split("=", 1) for item in args.env)
    args.folder.mkdir(parents=True, exist_ok=True)
    print(machine())
    print(f"clip {args.clip.name} looped at {WIDTH}x{HEIGHT}, {args.fps} frames/s; videos in {args.folder}")
    if env:
        print("environment: " + " ".join(f"{key}={value}" for key, value in env.items()))
    print(f"{'minutes':>7} {'frames':>7} {'wall s':>7} {'frames/s':>8} {'peak MB':>8} {'analysed MB':>11} "
          f"{'MB/1k across':>12} {'MB/1k within':>12}")  # fmt: skip
    runs: list[tuple[int, Run]] = []
    series = []
    for minutes in sorted(args.minutes):
        video, frames = looped_video(args.clip, args.folder, minutes, args.fps)
        run = analyze(video, args.folder, env, args.interval)
        across = math.nan
        if runs:
            across = megabytes(run.peak - runs[-1][1].peak) / ((frames - runs[-1][0]) / 1000)
        runs.append((frames, run))
        series += [(minutes, second, kib) for second, kib in run.samples]
        print(f"{minutes:7g} {frames:7d} {run.seconds:7.1f} {frames / run.seconds:8.1f} "
              f"{megabytes(run.peak):8.0f} {megabytes(run.rss_at(run.analysed)):11.0f} {across:12.2f} "
              f"{run.growth_during_analysis(frames):12.2f}", flush=True)  # fmt: skip
    if args.series is not None:
        with args.series.open("w", newline="") as file:
            csv.writer(file).writerows([("minutes", "seconds", "rss_kib"), *series])
    last = megabytes(runs[-1][1].peak) / 1000
    verdict = f"longest run: peak {last:.2f} GB ({'under' if last < TARGET_GB else 'OVER'} {TARGET_GB:g} GB)"
    if len(runs) > 1:
        ratio = runs[-1][1].peak / runs[-2][1].peak
        within = "within" if ratio <= TARGET_RATIO else "NOT within"
        verdict += f", {ratio:.2f}x the run before ({within} 10 %)"
    print(verdict)


if __name__ == "__main__":
    main()
