"""Image files and arrays as RGB uint8 arrays: the one place that knows image suffixes and decodes images.

Files are shown as a viewer shows them: EXIF orientation is applied (phones store photos sideways and say
so), 16-bit and float images are scaled to 8 bits (not clipped), palette, CMYK, 1-bit and grey images become
RGB, and transparent pixels are laid on a white background. An image with more pixels than
``max_image_pixels`` (see :mod:`faceaffect.core.limits`) is refused before it is decoded.

>>> to_rgb_array(np.zeros((4, 5), np.uint8)).shape
(4, 5, 3)
>>> to_rgb_array(Image.new("I;16", (2, 1), 65535))[0, 0].tolist()
[255, 255, 255]
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Union

import numpy as np
from PIL import Image

from faceaffect.core.errors import InputError, LimitError
from faceaffect.core.limits import current_limits, env_name

ImageLike = Union[np.ndarray, Image.Image]  # noqa: UP007 (a runtime alias)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
BACKGROUND = (255, 255, 255)  # under transparent pixels
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_ORIENTATION = 0x0112  # the EXIF tag
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Pillow has its own decompression-bomb checks (a warning above 89 megapixels, an error above 179, in open
# and in some formats' load); they give way to ours while we decode, and this lock keeps threads that decode
# at the same time from restoring each other's value (and the warning filters).
_PIL_LIMIT = threading.Lock()


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as an RGB uint8 array (H, W, 3), upright; a one-line InputError when it cannot
    be read or is larger than the pixel limit."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{'not a file' if path.exists() else 'no such image file'}: {path}")
    return _decode(path, str(path))


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Encoded image bytes (e.g. an archive member) as :func:`load_image` reads a file; ``name`` is for
    messages."""
    return _decode(io.BytesIO(data), name)


def image_header(path: str | Path) -> tuple[str, int, int]:
    """(Pillow's format name, width, height) of an image file, from its header (nothing is decoded): an
    InputError when it is not an image Pillow reads, a LimitError when it has more pixels than the limit."""
    with _opened(Path(path), str(path)) as image:
        return image.format or "", image.width, image.height


def _decode(file: Path | IO[bytes], name: str) -> np.ndarray:
    with _opened(file, name) as image:
        image.load()
        return to_rgb_array(_upright(image))


@contextmanager
def _opened(file: Path | IO[bytes], name: str) -> Iterator[Image.Image]:
    """``file`` opened by Pillow (header read) within the pixel limit; any failure a one-line InputError."""
    limit = current_limits().max_image_pixels
    with _PIL_LIMIT, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's notes on damaged metadata (EXIF, MPO): noise to a user
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(file) as image:
                if image.width * image.height > limit:
                    raise LimitError(
                        f"image {name} has {image.width}x{image.height} pixels, more than the limit of "
                        f"{limit} (a decompression bomb?); raise it with --max-image-pixels or "
                        f"{env_name('max_image_pixels')}"
                    )
                yield image
        except InputError:
            raise
        except Exception as error:  # Pillow's decoders raise many types for damaged or hostile files
            reason = " ".join(str(error).split()) or type(error).__name__
            raise InputError(f"cannot read image {name}: {reason}") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _upright(image: Image.Image) -> Image.Image:
    """The image as displayed: its EXIF orientation applied (an unreadable EXIF block: as stored)."""
    try:
        orientation = image.getexif().get(_ORIENTATION)
    except Exception:  # a damaged EXIF block does not make the pixels unreadable
        orientation = None
    method = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return image if method is None else image.transpose(method)


def expand_images(paths: list[Path]) -> list[Path]:
    """Files as given; folders expanded to their image files (sorted, recursive); InputError if missing."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            )
        elif path.exists():
            files.append(path)
        else:
            raise InputError(f"no such file or folder: {path}")
    return files


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """An RGB uint8 (H, W, 3) array from a PIL image (any mode, see the module docstring) or a uint8 array
    (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) (alpha dropped)."""
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise InputError(
            f"expected a uint8 RGB image, got dtype {array.dtype} (scale it to 0-255, then .astype(np.uint8))"
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.size == 0:
        raise InputError(f"the image is empty (shape {array.shape})")
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return array[:, :, :3]
    raise InputError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    if image.width * image.height == 0:
        raise InputError(f"the image is empty ({image.width}x{image.height})")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in _ALPHA_MODES:
        background = Image.new("RGBA", image.size, BACKGROUND)
        return np.asarray(Image.alpha_composite(background, image.convert("RGBA")).convert("RGB"))
    if image.mode.startswith(("I", "F")):  # 16- and 32-bit integers, 32-bit floats: one grey channel
        return to_rgb_array(_eight_bit(np.asarray(image)))
    try:
        return np.asarray(image.convert("RGB"))
    except ValueError as error:
        raise InputError(f"cannot convert an image of mode {image.mode} to RGB: {error}") from None


def _eight_bit(values: np.ndarray) -> np.ndarray:
    """Grey levels of any depth as 0-255. Full scale: 65535 for 16-bit images; for 32-bit ones the first of
    1 (floats only), 255 and 65535 that holds the brightest pixel, else the brightest pixel. Negative and
    NaN levels become 0."""
    levels = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0).clip(min=0)
    if values.dtype.kind == "u" and values.dtype.itemsize == 2:
        full = 65535.0
    else:
        brightest = float(levels.max(initial=0.0))
        scales = ((1.0,) if values.dtype.kind == "f" else ()) + (255.0, 65535.0)
        full = next((scale for scale in scales if brightest <= scale), brightest)
    return (levels * (255.0 / full) + 0.5).clip(max=255).astype(np.uint8)
