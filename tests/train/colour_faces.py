"""A tiny colour-coded face set whose colour carries the label (shared by the training tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

MODEL = {"name": "mbf_va_mtl", "input_size": 32}
# class -> (mean colour, valence, arousal): the colour carries the label
CLASSES = {
    "Anger": ((200, 40, 40), -0.6, 0.7),
    "Happiness": ((40, 200, 40), 0.8, 0.4),
    "Neutral": ((128, 128, 128), 0.0, -0.2),
    "Surprise": ((40, 40, 200), 0.2, 0.9),
}


def write_colour_set(folder: Path, n: int, seed: int) -> Path:
    """``n`` noisy 32x32 images of the CLASSES colours and their ``faces.csv`` (path, label, VA)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    lines = ["path,expression,valence,arousal"]
    for i in range(n):
        label = list(CLASSES)[i % len(CLASSES)]
        colour, valence, arousal = CLASSES[label]
        pixels = np.clip(rng.normal(colour, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
        lines.append(f"{i}.png,{label},{valence + rng.normal(0, 0.1):.3f},{arousal + rng.normal(0, 0.1):.3f}")
    (folder / "faces.csv").write_text("\n".join(lines) + "\n")
    return folder / "faces.csv"
