"""Shared by the comparison benchmarks: real face crops, well-conditioned random-weight models, the reference
environment (a separate venv with hsemotion, hsemotion-onnx and facenet-pytorch) and fair timing.

Fairness: both sides get the same inputs and are timed in alternation, trial by trial (the reference runs as a
server process that times one call on request), so CPU contention from other processes hits both alike. Rates
are reported as the best and the median trial.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
REFERENCE_DIR = ROOT / "bench" / "reference"
REFERENCE_ENV = Path(os.environ.get("FACEAFFECT_REFERENCE_ENV", "/work/bench-envs/reference"))
GROUP_PHOTOS = (
    "pyfeat_tests/multi_face.jpg",
    "face_recognition/two_people.jpg",
    "oarriaga_face_classification/12_angry_men.jpg",
    "facenet-pytorch/multiface.jpg",
    "oarriaga_face_classification/solvay_conference.jpg",
)


def face_crops(count: int) -> list[np.ndarray]:
    """``count`` real face crops (BlazeFace boxes on five group photos, 86-186 px, repeated as needed)."""
    from faceaffect.detect import create_detector
    from faceaffect.images import load_image
    from faceaffect.preprocess import crop_box

    detector = create_detector("blazeface")
    crops = []
    for name in GROUP_PHOTOS:
        image = load_image(SHARED / "faces" / name)
        crops += [crop_box(image, box) for box in detector.detect(image)]
    return [crops[i % len(crops)] for i in range(count)]


def save_crops(crops: list[np.ndarray], folder: Path) -> Path:
    """Write the crops as numbered PNG files (lossless, so both sides read the same pixels)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, crop in enumerate(crops):
        Image.fromarray(crop).save(folder / f"{i:04d}.png")
    return folder


def calibrated_model(name: str, crops: list[np.ndarray]) -> Any:
    """A random-weight model, BatchNorm statistics from real crops: realistic activations, no denormals."""
    import torch

    from faceaffect.models import create_model
    from faceaffect.models.calibrate import recalibrate_batchnorm
    from faceaffect.preprocess import preprocess

    torch.set_flush_denormal(True)
    torch.manual_seed(0)  # the same random weights in every run, so agreement lines compare across runs
    model = create_model(name)
    return recalibrate_batchnorm(model, preprocess(crops[:32], model.config))


def timm_weights(model: Any) -> dict[str, np.ndarray]:
    """A timm EfficientNet's state dict from our MultiTaskModel (backbone.* -> *, head -> classifier)."""
    renamed = {}
    for key, value in model.state_dict().items():
        name = key.removeprefix("backbone.") if key.startswith("backbone.") else "classifier." + key[5:]
        renamed[name] = value.detach().cpu().contiguous().numpy()
    return renamed


class Reference:
    """A reference runner (bench/reference/*.py) served by the reference environment's python."""

    def __init__(self, script: str, *args: str, env: dict[str, str] | None = None) -> None:
        python = REFERENCE_ENV / "bin" / "python"
        if not python.is_file():
            raise SystemExit(
                f"reference environment not found at {REFERENCE_ENV} (set FACEAFFECT_REFERENCE_ENV); "
                "see bench/reference/README.md to create it"
            )
        self.process = subprocess.Popen(
            [str(python), str(REFERENCE_DIR / script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.info = self._receive()

    def trial(self) -> float:
        """Seconds of one timed call on the reference side (what else it reported: ``last``)."""
        assert self.process.stdin is not None
        self.process.stdin.write("time\n")
        self.process.stdin.flush()
        self.last = self._receive()
        return float(self.last["seconds"])

    def _receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the reference runner stopped (exit code {self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait(timeout=60)

    def __enter__(self) -> Reference:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def alternate(ours: Callable[[], Any], reference: Reference, trials: int) -> tuple[list[float], list[float]]:
    """Seconds per trial for our call and the reference's, taken in turns (ours warmed up first)."""
    ours()
    our_times, reference_times = [], []
    for _ in range(trials):
        start = time.perf_counter()
        ours()
        our_times.append(time.perf_counter() - start)
        reference_times.append(reference.trial())
    return our_times, reference_times


def rates(items: int, seconds: list[float]) -> tuple[float, float]:
    """(best, median) items per second."""
    return items / min(seconds), items / statistics.median(seconds)


def comparison(label: str, unit: str, items: int, ours: list[float], theirs: list[float], name: str) -> str:
    """Two aligned lines and the speed-up, best and median."""
    (our_best, our_median), (ref_best, ref_median) = rates(items, ours), rates(items, theirs)
    width = max(len(label), len(name))
    rows = [(label, our_best, our_median, unit), (name, ref_best, ref_median, unit)]
    rows.append(("speed-up", our_best / ref_best, our_median / ref_median, "x"))
    return "\n".join(f"{a:<{width}}  best {b:8.2f} {u:<8}  median {c:8.2f} {u}" for a, b, c, u in rows)


LOAD_AT_START = os.getloadavg()  # before the bench's own work, which would count as load once it has run


def machine() -> str:
    """CPU model, cores and the load average when the bench started: figures taken under load are not
    comparable to quiet ones."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in LOAD_AT_START)
    line = f"{model}, {os.cpu_count()} logical CPUs, load average at start {load} (1, 5, 15 min)"
    if LOAD_AT_START[0] > (os.cpu_count() or 1):
        line += "; LOADED: not comparable with a quiet machine (multi-threaded torch suffers most)"
    return line
