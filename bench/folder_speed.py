"""Images/s of ``faceaffect analyze`` and ``faceaffect batch`` on a folder of small portrait photos (180x192
pixels, one face each), and where the time of one image goes.

The folder is built here, in a temporary folder (never committed), from the shared data: every face that
BlazeFace finds in the photos of ../shared/data/faces, cropped with some background and resized to 180x192,
and FER+ faces (48x48 greys of ../shared/data/ferplus) enlarged to 120-176 pixels on a 180x192 canvas of
their own mean grey, all as JPEG (quality 90), until ``--images`` photos.

Printed: the stages of one image timed one after another on one thread (decode; detection and its network
passes: BlazeFace full range on the whole image, short range on the whole image, tiles for small faces;
crop; recognition), which bound the rate on this machine's cores; then images/s, CPU time per image and
faces found of ``analyze`` (one process: decode and detection on a thread ahead of recognition) and of
``batch`` (the local engine, the folder one input), in alternating trials.

    python bench/folder_speed.py                        # 4000 photos, 2 trials
    python bench/folder_speed.py --images 1000 --trials 3 --keep /tmp/portraits
    PYTHONPATH=../main/src python bench/folder_speed.py     # another version of faceaffect (before/after)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, machine

SIZE = (180, 192)  # width, height
FER_FOLDERS = ("ferplus/FER2013Test", "ferplus/FER2013Valid")


def photo_faces() -> list[Image.Image]:
    """Every face BlazeFace finds in the shared photos, with background around it, as 180x192 portraits."""
    from faceaffect.detect import create_detector
    from faceaffect.images import IMAGE_SUFFIXES, load_image

    detector = create_detector("blazeface")
    portraits = []
    for path in sorted((SHARED / "faces").rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES or "aligned" in path.parts:
            continue
        image = load_image(path)
        for box in detector.detect(image):
            width = 1.6 * max(box.width, box.height)  # the face fills about 60 % of the portrait's width
            height = width * SIZE[1] / SIZE[0]
            cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
            area = tuple(round(v) for v in (cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2))
            portraits.append(Image.fromarray(image).crop(area).resize(SIZE, Image.Resampling.BILINEAR))
    return portraits


def fer_faces(count: int) -> list[Image.Image]:
    """FER+ faces enlarged to 120-176 pixels, each on a 180x192 canvas of its mean grey."""
    paths = [path for folder in FER_FOLDERS for path in sorted((SHARED / folder).glob("*.png"))][:count]
    portraits = []
    for index, path in enumerate(paths):
        face = Image.open(path).convert("RGB")
        side = 120 + (index * 7) % 57
        canvas = Image.new("RGB", SIZE, tuple(int(v) for v in np.asarray(face).mean(axis=(0, 1))))
        left, top = (index * 5) % (SIZE[0] - side + 1), (index * 3) % (SIZE[1] - side + 1)
        canvas.paste(face.resize((side, side), Image.Resampling.BICUBIC), (left, top))
        portraits.append(canvas)
    return portraits


def build_folder(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    photos = photo_faces()[:count]
    for index, portrait in enumerate(photos + fer_faces(count - len(photos))):
        portrait.save(folder / f"{index:05d}.jpg", quality=90)
    return folder


def timed(step: Callable[[], Any]) -> tuple[Any, float, float]:
    """(what ``step()`` returns, wall seconds, process CPU seconds over all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = step()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def stage_profile(folder: Path) -> str:
    """CPU milliseconds per image of each stage, timed one after another, and the BlazeFace passes run."""
    from faceaffect.analysis import Analyzer
    from faceaffect.images import load_image
    from faceaffect.preprocess import crop_box

    analyzer = Analyzer()
    detector, recognizer = analyzer.detector, analyzer.recognizer
    passes: Counter[str] = Counter()
    networks = {"full range, whole image": detector.full, "short range, whole image": detector.short}
    for name, network in networks.items():
        network.run = _counting(network.run, passes, name)
    detector._run_tiles = _counting(detector._run_tiles, passes, "tiles (small faces)")
    files = sorted(folder.glob("*.jpg"))
    images, _, decode = timed(lambda: [load_image(path) for path in files])
    detector.detect(images[0])
    passes.clear()
    boxes, _, detect = timed(lambda: [detector.detect(image) for image in images])
    pairs = [(image, box) for image, found in zip(images, boxes, strict=True) for box in found]
    crops, _, crop = timed(lambda: [crop_box(image, box) for image, box in pairs])
    recognizer.predict(crops[:32])
    _, _, recognise = timed(lambda: [recognizer.predict(crops[i : i + 32]) for i in range(0, len(crops), 32)])
    n, cores = len(images), len(os.sched_getaffinity(0))
    stages = {"decode": decode, "detect": detect, "crop": crop, "recognise": recognise}
    total = sum(stages.values())
    parts = ", ".join(f"{name} {1000 * seconds / n:.2f}" for name, seconds in stages.items())
    runs = ", ".join(f"{name} {count / n:.2f}" for name, count in passes.items())
    return (
        f"stages, CPU ms per image (one after another, {n} images, {len(crops)} faces): {parts}; sum "
        f"{1000 * total / n:.2f} ms: at most {n * cores / total:.0f} images/s on {cores} fully used cores\n"
        f"BlazeFace network runs per image: {runs or 'none'}"
    )


def _counting(function: Callable[..., Any], counts: Counter[str], name: str) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[name] += 1
        return function(*args, **kwargs)

    return counted


def run_analyze(folder: Path) -> tuple[int, int, float, float]:
    """(images, faces, wall seconds, CPU seconds) of one ``Analyzer.analyze`` of the folder, model loaded."""
    from faceaffect.analysis import Analyzer

    analyzer = Analyzer()
    result, wall, cpu = timed(lambda: analyzer.analyze(folder))
    return len(result.frames), sum(len(frame.faces) for frame in result.frames), wall, cpu


def run_batch_local(folder: Path, out: Path) -> tuple[int, int, float, float]:
    """(images, faces, wall seconds after the worker loaded the model, CPU seconds of the worker process
    with its start) of one ``batch`` run (local engine; the folder is one input) on the folder."""
    from faceaffect.batch import Job, PoolOptions, run_batch

    shutil.rmtree(out, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = run_batch([folder], out, Job(str(out)), PoolOptions(engine="local"))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    (record,) = report.records
    return record.frames, record.faces, report.seconds - report.start_seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="build the folder here and keep it (default: a temporary)")
    args = parser.parse_args()
    if not (SHARED / FER_FOLDERS[0]).is_dir():
        raise SystemExit(f"shared data not found at {SHARED}")
    root = Path(tempfile.mkdtemp(prefix="faceaffect-folder-"))
    try:
        folder = build_folder(args.keep or root / "portraits", args.images)
        print(f"folder: {args.images} portraits {SIZE[0]}x{SIZE[1]} (JPEG) in {folder}\nmachine: {machine()}")
        print(stage_profile(folder))
        runs: dict[str, list[tuple[int, int, float, float]]] = {"analyze": []}
        if importlib.util.find_spec("faceaffect.batch") is not None:  # absent from versions before it
            runs["batch (local)"] = []
        run_analyze(folder)  # warm: files in the page cache, models compiled
        for _ in range(args.trials):
            runs["analyze"].append(run_analyze(folder))
            if "batch (local)" in runs:
                runs["batch (local)"].append(run_batch_local(folder, root / "out"))
        for name, trials in runs.items():
            images, faces = trials[-1][:2]
            rates = [t[0] / t[2] for t in trials]
            cpu = statistics.median(1000 * t[3] / t[0] for t in trials)
            print(f"{name:14s} median {statistics.median(rates):6.1f} images/s (best {max(rates):6.1f}), "
                  f"{cpu:.2f} ms CPU per image, {faces} faces in {images} images")  # fmt: skip
        print(
            "batch: images/s once its worker has loaded the model; CPU per image with that start (the "
            "folder is one input: one worker, with every core)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
