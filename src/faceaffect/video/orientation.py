"""Upright frames: the display matrix a video carries (phones record sideways and store how to turn the
picture, as side data or the old ``rotate`` tag, which FFmpeg reads into the same matrix) applied to the
decoded pixels, so faces are found upright and boxes are in displayed coordinates.

>>> image = np.arange(6).reshape(2, 3, 1)
>>> orient(image, (0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30))[..., 0].tolist()  # 90 degrees anticlockwise
[[2, 5], [1, 4], [0, 3]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Matrix = Sequence[int]


def display_matrix(frame: Any) -> Matrix | None:
    """The 3x3 display matrix of a PyAV frame (FFmpeg's nine 16.16 fixed-point integers, row by row), or
    None when the frame has none."""
    for data in frame.side_data:
        if data.type.name == "DISPLAYMATRIX":
            return tuple(np.frombuffer(bytes(data), dtype="<i4")[:9].tolist())
    return None


def orient(image: np.ndarray, matrix: Matrix | None) -> np.ndarray:
    """``image`` (H, W, C) as it is meant to be displayed. FFmpeg maps a source pixel (x, y) to
    (a x + c y, b x + d y) plus a shift, with a, b, c, d the matrix's entries 0, 1, 3, 4: a quarter turn when
    a and d are 0, flips where the signs are negative; other angles (rare) are left alone."""
    if matrix is None:
        return image
    a, b, c, d = (int(np.sign(matrix[i])) for i in (0, 1, 3, 4))
    if a == d == 0 and b and c:  # quarter turn: displayed row from source column, column from row
        turned = image.transpose(1, 0, *range(2, image.ndim))
        rows, columns = b, c
    elif b == c == 0 and a and d:
        turned, rows, columns = image, d, a
    else:
        return image
    if rows < 0:
        turned = turned[::-1]
    if columns < 0:
        turned = turned[:, ::-1]
    return turned if turned is image else np.ascontiguousarray(turned)
