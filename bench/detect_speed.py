"""Face-detection speed: median milliseconds per image for each installed detector, on real photos.

Images (from ../shared/data/faces, resized here): a 640x480 frame (pyfeat_tests/multi_face.jpg centre-cropped
to 4:3, 5 faces), a 1280x886 group photo (oarriaga_face_classification/test_image.jpg with the top of the sky
cropped, 6 faces) and solvay_conference.jpg as it is. Threads are capped (default 2) for every library.

    python bench/detect_speed.py --repeats 30 --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"


def crop_to_aspect(image: Image.Image, width: int, height: int, anchor: str) -> Image.Image:
    """Crop ``image`` to the aspect ratio width:height (centred, or keeping the bottom), then resize."""
    target = width / height
    w, h = image.size
    if w / h > target:
        new_w = round(h * target)
        box = ((w - new_w) // 2, 0, (w - new_w) // 2 + new_w, h)
    else:
        new_h = round(w / target)
        top = h - new_h if anchor == "bottom" else (h - new_h) // 2
        box = (0, top, w, top + new_h)
    return image.crop(box).resize((width, height), Image.Resampling.BILINEAR)


def test_images() -> dict[str, np.ndarray]:
    """The benchmark images by name, RGB uint8."""
    multi = Image.open(DATA / "pyfeat_tests" / "multi_face.jpg").convert("RGB")
    group = Image.open(DATA / "oarriaga_face_classification" / "test_image.jpg").convert("RGB")
    solvay = Image.open(DATA / "oarriaga_face_classification" / "solvay_conference.jpg").convert("RGB")
    return {
        "640x480 frame (5 faces)": np.asarray(crop_to_aspect(multi, 640, 480, "centre")),
        "1280x886 group (6 faces)": np.asarray(crop_to_aspect(group, 1280, 886, "bottom")),
        f"solvay {solvay.width}x{solvay.height}": np.asarray(solvay),
    }


def median_ms(detect, image: np.ndarray, repeats: int) -> tuple[float, int]:
    """Median wall time in ms over ``repeats`` calls (after one warm-up) and the number of faces found."""
    faces = detect(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        detect(image)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), len(faces)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    from faceaffect.detect import available_detectors, create_detector

    configs: dict[str, dict[str, object]] = {
        "blazeface": {"num_threads": args.threads},
        "blazeface (tiling off)": {"num_threads": args.threads, "tiling": False},
        "dlib": {},
        "dlib (min_face_size=40)": {"min_face_size": 40},
        "dlib (min_face_size=80)": {"min_face_size": 80},
    }
    images = test_images()
    print(f"{'detector':28s} " + " ".join(f"{name:>28s}" for name in images))
    for label, options in configs.items():
        name = label.split(" ")[0]
        if name not in available_detectors():
            print(f"{label:28s} not installed")
            continue
        detector = create_detector(name, **options)
        cells = []
        for image in images.values():
            ms, count = median_ms(detector.detect, image, args.repeats)
            cells.append(f"{ms:8.1f} ms, {count:2d} faces")
        print(f"{label:28s} " + " ".join(f"{cell:>28s}" for cell in cells))


if __name__ == "__main__":
    main()
