"""The ABAW data formats: Aff-Wild2 annotation files, frame names, Hume-Vidmimic2 CSVs, prediction files.

Aff-Wild2 keeps one text file per video and task. Line 1 is a header; line ``k + 1`` belongs to frame ``k``
(``00001.jpg`` is the first frame of ``cropped_aligned/<video>/``). Unannotated frames are ``-5,-5`` (VA),
``-1`` (EXPR, CE) or ``-1`` per AU. Readers return numpy arrays and raise :class:`AnnotationError` naming the
file and the line of the first problem.

>>> AFFECTNET_TO_ABAW
(5, 0, 2, 3, 4, 6, 7, 1)
>>> frame_name(7), parse_frame_name("00007.jpg")
('00007.jpg', 7)
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceaffect.core.errors import InputError
from faceaffect.core.io import atomic_path
from faceaffect.core.labels import AFFECTNET_8

ABAW_EXPR: tuple[str, ...] = (
    "Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other",
)  # fmt: skip
ABAW_AU: tuple[str, ...] = (
    "AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU15", "AU23", "AU24", "AU25", "AU26",
)  # fmt: skip
ABAW_VA: tuple[str, ...] = ("valence", "arousal")
COMPOUND: tuple[str, ...] = (
    "Fearfully Surprised", "Happily Surprised", "Sadly Surprised", "Disgustedly Surprised",
    "Angrily Surprised", "Sadly Fearful", "Sadly Angry",
)  # fmt: skip
EMI: tuple[str, ...] = ("Admiration", "Amusement", "Determination", "Empathic Pain", "Excitement", "Joy")
EMI_ID_COLUMN = "Filename"

# ABAW EXPR class j is AffectNet-8 class AFFECTNET_TO_ABAW[j] ("Other" <- Contempt), METHOD.md.
ABAW_SOURCE_NAMES: tuple[str, ...] = (
    "Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Contempt",
)  # fmt: skip
AFFECTNET_TO_ABAW: tuple[int, ...] = tuple(AFFECTNET_8.index(name) for name in ABAW_SOURCE_NAMES)

VA_UNANNOTATED = -5.0
CHALLENGE_FOLDERS = {
    "va": "VA_Estimation_Challenge",
    "expr": "EXPR_Recognition_Challenge",
    "au": "AU_Detection_Challenge",
    "ce": "CE_Recognition_Challenge",
}
SPLIT_FOLDERS = {"train": "Train_Set", "validation": "Validation_Set"}
FRAME_TASKS = ("va", "expr", "au", "ce")


class AnnotationError(InputError):
    """An annotation or label file that does not follow its format (the message names file and line)."""


@dataclass(frozen=True)
class FrameFormat:
    """How one per-video annotation file of a frame task looks."""

    task: str
    header: tuple[str, ...]

    @property
    def dtype(self) -> type:
        return np.float32 if self.task == "va" else np.int8 if self.task == "au" else np.int16


FORMATS: dict[str, FrameFormat] = {
    "va": FrameFormat("va", ABAW_VA),
    "expr": FrameFormat("expr", ABAW_EXPR),
    "au": FrameFormat("au", ABAW_AU),
    "ce": FrameFormat("ce", COMPOUND),
}


def frame_name(frame: int, suffix: str = ".jpg") -> str:
    """Aff-Wild2's file name of a (1-based) frame number: ``00001.jpg``."""
    return f"{frame:05d}{suffix}"


def parse_frame_name(name: str | Path) -> int:
    """The frame number of an image named after it (``00042.jpg`` -> 42); InputError otherwise."""
    stem = Path(name).stem
    if not stem.isdigit():
        raise InputError(f"{name}: not a frame image name (expected digits such as 00001.jpg)")
    return int(stem)


def affectnet_to_abaw(values: np.ndarray, labels: tuple[str, ...] = AFFECTNET_8) -> np.ndarray:
    """Reorder per-class columns (logits or probabilities) from a model's label order to ABAW EXPR order.

    A 7-class model has no Contempt: its "Other" column is filled with the row minimum minus 1e4, so it never
    wins an argmax and gets ~0 probability after a softmax.

    >>> affectnet_to_abaw(np.arange(8.0)).tolist()
    [5.0, 0.0, 2.0, 3.0, 4.0, 6.0, 7.0, 1.0]
    """
    values = np.asarray(values)
    if values.shape[-1] != len(labels):
        raise InputError(
            f"expected {len(labels)} class columns ({', '.join(labels)}), got {values.shape[-1]}"
        )
    columns = []
    for name in ABAW_SOURCE_NAMES:
        if name in labels:
            columns.append(values[..., labels.index(name)])
        else:
            columns.append(values.min(axis=-1) - 1e4)
    return np.stack(columns, axis=-1)


def _split_row(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().split(",")]


def read_frame_annotation(path: str | Path, task: str) -> np.ndarray:
    """Read one Aff-Wild2 annotation file: row ``k - 1`` of the result is frame ``k``.

    va: float32 (N, 2), NaN rows for unannotated frames (-5); expr/ce: int16 (N,), -1 unannotated;
    au: int8 (N, 12) of 0/1, -1 unannotated.
    """
    fmt = _format(task)
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise AnnotationError(f"cannot read annotation file {path}: {error}") from None
    if not lines or [c.lower() for c in _split_row(lines[0])] != [h.lower() for h in fmt.header]:
        found = lines[0].strip() if lines else "an empty file"
        raise AnnotationError(f"{path}:1: expected the header {','.join(fmt.header)!r}, found {found!r}")
    width = len(fmt.header) if task in ("va", "au") else 1
    rows = list(lines[1:])
    while rows and not rows[-1].strip():
        rows.pop()
    values = np.zeros((len(rows), width), dtype=np.float64)
    for index, line in enumerate(rows):
        cells = _split_row(line)
        if len(cells) != width:
            raise AnnotationError(
                f"{path}:{index + 2}: expected {width} comma-separated value(s), found {len(cells)}: {line!r}"
            )
        try:
            values[index] = [float(cell) for cell in cells]
        except ValueError:
            raise AnnotationError(f"{path}:{index + 2}: not a number in {line!r}") from None
        if not np.isfinite(values[index]).all():
            raise AnnotationError(f"{path}:{index + 2}: not a finite number in {line!r}")
        problem = _check_row(task, values[index])
        if problem:
            raise AnnotationError(f"{path}:{index + 2}: {problem}: {line!r}")
    if task == "va":
        values[(values == VA_UNANNOTATED).any(axis=1)] = np.nan
        return values.astype(np.float32)
    out = values.astype(fmt.dtype)
    return out if task == "au" else out[:, 0]


def _check_row(task: str, row: np.ndarray) -> str:
    if task == "va":
        bad = [v for v in row if not (-1.0 <= v <= 1.0 or v == VA_UNANNOTATED)]
        return f"value {bad[0]:g} outside [-1, 1] (and not -5 for unannotated)" if bad else ""
    if task == "au":
        bad = [v for v in row if v not in (0.0, 1.0, -1.0)]
        return f"AU value {bad[0]:g} is not 0, 1 or -1" if bad else ""
    count = len(FORMATS[task].header)
    value = row[0]
    if value != int(value) or not (value == -1 or 0 <= value < count):
        return f"class {value:g} is not an integer in 0..{count - 1} or -1"
    return ""


def labelled(task: str, labels: np.ndarray) -> np.ndarray:
    """Boolean mask of annotated frames (VA: no NaN; EXPR/CE: >= 0; AU: no -1 in the row)."""
    if task == "va":
        return ~np.isnan(labels).any(axis=1)
    if task == "au":
        return (labels >= 0).all(axis=1)
    return labels >= 0


def annotation_folder(path: str | Path, task: str, split: str) -> Path:
    """The folder of per-video files: ``path`` itself, or ``path/<Challenge>/<Split>``, ``path/<Split>``."""
    path = Path(path)
    split_name = SPLIT_FOLDERS.get(split, split)
    for candidate in (path / CHALLENGE_FOLDERS[task] / split_name, path / split_name, path):
        if candidate.is_dir() and any(candidate.glob("*.txt")):
            return candidate
    raise InputError(
        f"no annotation files for {task} ({split}) in {path}: expected *.txt there or in "
        f"{CHALLENGE_FOLDERS[task]}/{split_name}/"
    )


def read_annotations(path: str | Path, task: str, split: str = "train") -> dict[str, np.ndarray]:
    """Every ``<video>.txt`` of a split: video id -> labels (see :func:`read_frame_annotation`)."""
    folder = annotation_folder(path, _format(task).task, split)
    return {file.stem: read_frame_annotation(file, task) for file in sorted(folder.glob("*.txt"))}


def read_emi_csv(path: str | Path) -> dict[str, np.ndarray]:
    """A Hume-Vidmimic2 label CSV (``Filename`` + the 6 intensities in [0, 1]): file id -> float32 (6,)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise AnnotationError(f"cannot read label file {path}: {error}") from None
    header = [cell.strip() for cell in rows[0]] if rows else []
    missing = [name for name in (EMI_ID_COLUMN, *EMI) if name not in header]
    if missing:
        raise AnnotationError(f"{path}:1: header lacks column(s) {', '.join(missing)}; found {header}")
    columns = [header.index(name) for name in EMI]
    key_column = header.index(EMI_ID_COLUMN)
    labels: dict[str, np.ndarray] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise AnnotationError(f"{path}:{number}: expected {len(header)} columns, found {len(row)}")
        key = Path(row[key_column].strip()).stem
        try:
            values = np.array([float(row[c]) for c in columns], dtype=np.float32)
        except ValueError:
            raise AnnotationError(f"{path}:{number}: not a number in {','.join(row)!r}") from None
        if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
            raise AnnotationError(f"{path}:{number}: intensities must lie in [0, 1], got {','.join(row)!r}")
        if key in labels:
            raise AnnotationError(f"{path}:{number}: file id {key!r} appears twice")
        labels[key] = values
    return labels


def _format(task: str) -> FrameFormat:
    if task not in FORMATS:
        raise InputError(f"unknown frame task {task!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[task]


def _cells(task: str, row: np.ndarray) -> list[str]:
    if task == "va":
        return [f"{float(v):.6f}" for v in row]
    return [str(int(v)) for v in np.atleast_1d(row)]


def write_frame_predictions(folder: str | Path, task: str, predictions: Mapping[str, np.ndarray]) -> Path:
    """One ``<video>.txt`` per video in the annotation format (header, one line per frame), atomically.

    va: (N, 2) floats; expr/ce: (N,) class indices; au: (N, 12) of 0/1.
    """
    fmt = _format(task)
    folder = Path(folder)
    for video, rows in predictions.items():
        lines = [",".join(fmt.header), *(",".join(_cells(task, row)) for row in rows)]
        with atomic_path(folder / f"{video}.txt") as tmp:
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def write_submission(path: str | Path, task: str, predictions: Mapping[str, np.ndarray]) -> Path:
    """The single-file challenge submission: ``image_location,<header>``, rows ``<video>/00001.jpg,...``."""
    fmt = _format(task)
    lines = ["image_location," + ",".join(fmt.header)]
    for video, rows in predictions.items():
        lines.extend(
            f"{video}/{frame_name(k)}," + ",".join(_cells(task, row)) for k, row in enumerate(rows, start=1)
        )
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


def write_emi_csv(path: str | Path, predictions: Mapping[str, np.ndarray]) -> Path:
    """Predicted intensities in the Hume-Vidmimic2 layout: ``Filename`` + 6 columns, atomically."""
    lines = [",".join((EMI_ID_COLUMN, *EMI))]
    lines.extend(
        ",".join([video, *(f"{float(v):.6f}" for v in values)]) for video, values in predictions.items()
    )
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)
