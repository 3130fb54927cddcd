"""Synthetic videos with real faces: two aligned face crops from ../shared/data pasted on a plain background,
moving along known paths, optionally hidden on some frames; written with PyAV in any container and codec."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image
from sample_data import sample_file

ALIGNED = "faces/facenet-pytorch/test_images_aligned"
FACE_SIZE = 96
WIDTH, HEIGHT = 320, 240
TOP, BOTTOM = 12, 132  # y of face A (moves right) and face B (moves left)


def two_faces() -> tuple[np.ndarray, np.ndarray]:
    """Two real aligned face crops (paul_rudd, kate_siegel) resized to FACE_SIZE (or :func:`unavailable`)."""
    paths = [sample_file(f"{ALIGNED}/{name}/1.png") for name in ("paul_rudd", "kate_siegel")]
    return tuple(np.asarray(Image.open(p).convert("RGB").resize((FACE_SIZE, FACE_SIZE))) for p in paths)


def face_x(face: int, index: int, count: int) -> int:
    """Left edge of face 0 (moving right) or face 1 (moving left) in frame ``index`` of ``count``."""
    travel = round((WIDTH - FACE_SIZE - 40) * index / max(count - 1, 1))
    return 20 + travel if face == 0 else WIDTH - FACE_SIZE - 20 - travel


def moving_frames(count: int, hide: dict[int, Sequence[int]] | None = None) -> list[np.ndarray]:
    """``count`` RGB frames with face 0 moving right along the top and face 1 moving left along the bottom;
    ``hide`` maps a face to the frames it is left out of."""
    faces = two_faces()
    hide = hide or {}
    frames = []
    for index in range(count):
        frame = np.full((HEIGHT, WIDTH, 3), 128, dtype=np.uint8)
        for face, (image, top) in enumerate(zip(faces, (TOP, BOTTOM), strict=True)):
            if index not in hide.get(face, ()):
                x = face_x(face, index, count)
                frame[top : top + FACE_SIZE, x : x + FACE_SIZE] = image
        frames.append(frame)
    return frames


def write_video(
    path: Path,
    frames: Sequence[np.ndarray],
    fps: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    *,
    movflags: str = "faststart",
    gop: int | None = None,
    rotation: tuple[int, bool] | None = None,
) -> Path:
    """Encode RGB frames with PyAV (container from the suffix; MP4/MOV with the index first, "faststart",
    unless ``movflags`` say otherwise). ``gop``: frames between key frames; ``rotation``: (degrees
    anticlockwise, mirrored) as a display matrix, the way phones store sideways recordings."""
    options = {"x265-params": "log-level=error"} if codec == "libx265" else {}
    if gop is not None:
        options["g"] = str(gop)
    flags = {"movflags": movflags} if path.suffix in (".mp4", ".mov") else {}
    with av.open(str(path), mode="w", options=flags) as container:
        stream = container.add_stream(codec, rate=Fraction(fps), options=options)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        if rotation is not None:
            stream.set_display_rotation(rotation[0], hflip=rotation[1])
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def damage_packets(path: Path, packets: range) -> None:
    """Scramble the payload of some packets (their place in the file from the index), keeping their size."""
    with av.open(str(path)) as container:
        places = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    for pos, size in (places[i] for i in packets):
        for at in range(pos + 8, pos + size, 3):
            data[at] ^= 0xA5
    path.write_bytes(bytes(data))
