"""`faceaffect serve` under load: N concurrent image clients and M concurrent video jobs for a bounded time.

Starts the real server (`faceaffect serve`, 127.0.0.1, a free port, a fresh state folder) and reports:

- image requests/s and p50/p95/p99 latency; errors by status (503 from a full queue is intended: the client
  waits Retry-After and tries again; anything else is an error);
- every video job: done, its table complete (one row per face of every analysed frame: rows = the job's
  faces, frames = the frames it expected) and identical to `faceaffect analyze` on the same file;
- the HTTP image path against the in-process `Analyzer` on the same images, one request at a time, in
  alternating trials (target: HTTP within 1.25x of the in-process cost);
- the server's resident memory over the run (sampled; peak per quarter of the run: flat means no growth).
- a large upload of non-media streamed in: the server's peak RSS must not grow by its size.

    python bench/serve_load.py                                   # 60 s, 4 image clients, 2 video jobs
    python bench/serve_load.py --seconds 30 --image-clients 6 --video-jobs 2 --max-queue 4   # with 503s
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

SHARED = Path(
    os.environ.get("FACEAFFECT_TEST_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)
IMAGES = ("face_recognition/two_people.jpg", "face_recognition/obama-240p.jpg", "face_recognition/biden.jpg",
          "fer/justin.jpg", "pyfeat_tests/0-f1-su-ph.jpg",
          "oarriaga_face_classification/test_image.jpg")  # fmt: skip
VIDEOS = ("pyfeat_tests/single_face.mp4", "fer_tests/test.mp4")


@dataclass
class Tally:
    """What the clients saw, shared between their threads; ``last_image``: when the last image came back."""

    last_image: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    jobs: list[tuple[Path, dict]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int, seconds: float | None = None) -> None:
        with self.lock:
            self.statuses[status] += 1
            if seconds is not None:
                self.latencies.append(seconds)


class Server:
    """`faceaffect serve` in its own process, with a sampler of its resident memory."""

    def __init__(self, state: Path, max_queue: int) -> None:
        command = [sys.executable, "-m", "faceaffect", "serve", "--port", "0", "--state-dir", str(state),
                   "--max-queue", str(max_queue)]  # fmt: skip
        self.log = state.parent / "server.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 120
        while not (found := re.search(r"http://127\.0\.0\.1:\d+", self.log.read_text())):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: {self.log.read_text()}")
            time.sleep(0.05)
        self.url = found.group(0)
        self.rss: list[tuple[float, float]] = []
        self._sampling = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def start_sampling(self) -> None:
        self._sampler.start()

    def _sample(self) -> None:
        while not self._sampling.wait(0.2):
            self.rss.append((time.monotonic(), _status_mb(self.process.pid, "VmRSS")))

    def peak_mb(self) -> float:
        return _status_mb(self.process.pid, "VmHWM")

    def stop(self) -> None:
        self._sampling.set()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _status_mb(pid: int, key: str) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{key}:\s+(\d+) kB", text).group(1)) / 1024


def post_image(client: httpx.Client, path: Path) -> httpx.Response:
    return client.post("/v1/images", files={"file": (path.name, path.read_bytes(), "image/jpeg")})


def image_client(url: str, images: list[Path], until: float, tally: Tally, offset: int) -> None:
    with httpx.Client(base_url=url, timeout=120) as client:
        for path in itertools.islice(itertools.cycle(images), offset, None):
            if time.monotonic() >= until:
                return
            start = time.perf_counter()
            answer = post_image(client, path)
            tally.add(answer.status_code, time.perf_counter() - start if answer.status_code == 200 else None)
            tally.last_image = max(tally.last_image, time.monotonic())
            if answer.status_code == 503:
                time.sleep(float(answer.headers.get("retry-after", 1)))


def video_client(url: str, videos: list[Path], until: float, tally: Tally, offset: int) -> None:
    with httpx.Client(base_url=url, timeout=120) as client:
        for path in itertools.islice(itertools.cycle(videos), offset, None):
            if time.monotonic() >= until:
                return
            answer = client.post("/v1/jobs", files={"file": (path.name, path.read_bytes(), "video/mp4")})
            tally.add(answer.status_code)
            if answer.status_code == 503:
                time.sleep(float(answer.headers.get("retry-after", 1)))
                continue
            job = answer.json()
            while job["status"] in ("queued", "running"):
                time.sleep(0.2)
                job = client.get(f"/v1/jobs/{job['id']}").json()
            with tally.lock:
                tally.jobs.append((path, job))


def check_jobs(url: str, jobs: list[tuple[Path, dict]], work: Path) -> tuple[int, list[str]]:
    """(jobs whose table is complete and identical to the CLI's, problems found)."""
    expected: dict[Path, pd.DataFrame] = {}
    problems = []
    good = 0
    with httpx.Client(base_url=url, timeout=120) as client:
        for path, job in jobs:
            if job["status"] != "done":
                problems.append(f"{path.name}: {job['status']} {job['error']}")
                continue
            if path not in expected:
                out = work / f"cli-{path.stem}.parquet"
                command = [sys.executable, "-m", "faceaffect", "analyze", path.name, "-o", str(out), "-q"]
                subprocess.run(command, cwd=path.parent, check=True)
                expected[path] = pd.read_parquet(out)
            stored = client.get(f"/v1/jobs/{job['id']}/table?format=parquet").content
            table = pd.read_parquet(io.BytesIO(stored))
            result = job["result"]
            complete = len(table) == result["faces"] and result["frames"] == job["progress"]["total"]
            try:
                pd.testing.assert_frame_equal(table, expected[path])
                identical = True
            except AssertionError as error:
                identical = False
                problems.append(f"{path.name}: differs from the CLI: {str(error).splitlines()[0]}")
            good += complete and identical
    return good, problems


def big_upload(server: Server, megabytes: int) -> tuple[int, float, float]:
    """Stream ``megabytes`` of non-media to /v1/jobs: (status, the server's peak RSS before and after): an
    upload goes to disk as it comes, so the peak must not grow by its size."""

    def body() -> Iterator[bytes]:
        yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
        for _ in range(megabytes):
            yield b"\x01" * 2**20
        yield b"\r\n--xyz--\r\n"

    before = server.peak_mb()
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    answer = httpx.post(f"{server.url}/v1/jobs", content=body(), headers=headers, timeout=600)
    return answer.status_code, before, server.peak_mb()


def compare_in_process(url: str, images: list[Path], trials: int) -> tuple[list[float], list[float]]:
    """Seconds per image, one at a time: in-process Analyzer vs HTTP, alternating trial by trial."""
    from faceaffect.analysis import Analyzer

    analyzer = Analyzer()
    analyzer.analyze(images[0])  # warm
    local, remote = [], []
    with httpx.Client(base_url=url, timeout=120) as client:
        post_image(client, images[0])
        for _ in range(trials):
            start = time.perf_counter()
            for path in images:
                analyzer.analyze(path)
            local.append((time.perf_counter() - start) / len(images))
            start = time.perf_counter()
            for path in images:
                assert post_image(client, path).status_code == 200
            remote.append((time.perf_counter() - start) / len(images))
    return local, remote


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--image-clients", type=int, default=4)
    parser.add_argument("--video-jobs", type=int, default=2)
    parser.add_argument("--max-queue", type=int, default=16)
    parser.add_argument("--upload-mb", type=int, default=256, help="size of the streamed-upload probe")
    parser.add_argument(
        "--trials", type=int, default=5, help="alternating trials of the in-process comparison"
    )
    args = parser.parse_args()
    images = [SHARED / "faces" / name for name in IMAGES]
    videos = [SHARED / "videos" / name for name in VIDEOS]
    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    server = Server(work / "state", args.max_queue)
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            for path in images:  # warm: first inference, each image size (detector canvases), each video
                assert post_image(client, path).status_code == 200
            for path in videos:
                job = client.post("/v1/jobs", files={"file": (path.name, path.read_bytes())}).json()
                while job["status"] in ("queued", "running"):
                    job = client.get(f"/v1/jobs/{job['id']}").json()
                    time.sleep(0.2)
        tally = Tally()
        server.start_sampling()
        start = time.monotonic()
        until = start + args.seconds
        threads = [threading.Thread(target=image_client, args=(server.url, images, until, tally, i))
                   for i in range(args.image_clients)]  # fmt: skip
        threads += [threading.Thread(target=video_client, args=(server.url, videos, until, tally, i))
                    for i in range(args.video_jobs)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = tally.last_image - start  # the image clients' time; the jobs may end later
        rss = list(server.rss)
        good, problems = check_jobs(server.url, tally.jobs, work)
        local, remote = compare_in_process(server.url, images, args.trials)
        report(args, tally, elapsed, rss, server.peak_mb(), good, problems, local, remote)
        status, before, after = big_upload(server, args.upload_mb)
        print(f"a {args.upload_mb} MB upload (not media: {status}): server peak RSS {before:.0f} MB before, "
              f"{after:.0f} MB after")  # fmt: skip
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(
    args: argparse.Namespace,
    tally: Tally,
    elapsed: float,
    rss: list[tuple[float, float]],
    peak: float,
    good: int,
    problems: list[str],
    local: list[float],
    remote: list[float],
) -> None:
    latencies = np.array(tally.latencies) * 1000
    images_done = tally.statuses[200]
    errors = {status: count for status, count in tally.statuses.items() if status not in (200, 202, 503)}
    print(f"load: {args.seconds:g} s, {args.image_clients} image clients, {args.video_jobs} video job "
          f"clients, max queue {args.max_queue} (2-core machine; other work may run beside it)")  # fmt: skip
    print(f"images: {images_done} in {elapsed:.1f} s = {images_done / elapsed:.1f} requests/s; latency ms "
          f"p50 {np.percentile(latencies, 50):.0f}, p95 {np.percentile(latencies, 95):.0f}, "
          f"p99 {np.percentile(latencies, 99):.0f}")  # fmt: skip
    print(f"jobs: {len(tally.jobs)} finished, {good} complete and identical to `faceaffect analyze`")
    for problem in problems:
        print(f"  problem: {problem}")
    print(f"responses: {json.dumps(dict(sorted(tally.statuses.items())))}; 503 (queue full, retried): "
          f"{tally.statuses[503]}; errors: {sum(errors.values())} {errors or ''}")  # fmt: skip
    ratio = statistics.median(remote) / statistics.median(local)
    print(f"one image at a time: in-process Analyzer {statistics.median(local) * 1000:.1f} ms "
          f"(best {min(local) * 1000:.1f}), HTTP {statistics.median(remote) * 1000:.1f} ms "
          f"(best {min(remote) * 1000:.1f}): HTTP costs {ratio:.2f}x (target <= 1.25x); under load "
          f"{images_done / elapsed:.1f} images/s (beside the jobs) vs "
          f"{1 / statistics.median(local):.1f} in-process alone")  # fmt: skip
    quarters = [q for q in np.array_split(np.array([mb for _, mb in rss]), 4) if len(q)]
    peaks = ", ".join(f"{q.max():.0f}" for q in quarters)
    medians = ", ".join(f"{np.median(q):.0f}" for q in quarters)
    print(f"server RSS MB per quarter of the run: peak {peaks}; median {medians}; "
          f"peak over the process's life {peak:.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
