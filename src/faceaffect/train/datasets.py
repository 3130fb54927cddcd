"""Training data: readers for AffectNet, FER+, plain CSV and image folders, one sample record, one Dataset.

Every reader returns a list of :class:`Sample` with the expression as an index in ``AFFECTNET_8`` order;
:class:`FaceDataset` turns them into ``(image tensor, targets)`` pairs for a model's label set.

>>> from faceaffect.core.labels import AFFECTNET_8
>>> AFFECTNET_8[parse_label("happy")]
'Happiness'
"""

from __future__ import annotations

import csv
import io
import math
import re
import tarfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from faceaffect.core.errors import FaceaffectError, InputError
from faceaffect.core.labels import AFFECTNET_8
from faceaffect.core.limits import current_limits, env_name
from faceaffect.core.types import FaceBox
from faceaffect.images import IMAGE_SUFFIXES, decode_image, load_image, to_rgb_array
from faceaffect.preprocess import crop_box

# AffectNet's own expression codes 0-7 (8-10: none, uncertain, no face -> dropped).
AFFECTNET_CODES = ("Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger", "Contempt")
# FER+ label.csv vote columns after the image name and the face box.
FERPLUS_VOTES = ("Neutral", "Happiness", "Surprise", "Sadness", "Anger", "Disgust", "Fear", "Contempt")
FERPLUS_SPLITS = {
    "train": "FER2013Train",
    "valid": "FER2013Valid",
    "val": "FER2013Valid",
    "test": "FER2013Test",
}
_ALIASES = {
    "angry": "Anger",
    "disgusted": "Disgust",
    "fearful": "Fear",
    "happy": "Happiness",
    "sad": "Sadness",
    "surprised": "Surprise",
}
_BOX = re.compile(r"^\(\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)$")


class DatasetError(FaceaffectError):
    """A data file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class Sample:
    """One labelled face.

    ``image`` is a file path, encoded image bytes (e.g. read from an archive) or a decoded uint8 array;
    ``expression`` indexes ``AFFECTNET_8``; ``votes`` is a distribution over ``AFFECTNET_8`` (sums to 1);
    ``source`` says where the record came from, for error messages.
    """

    image: Path | bytes | np.ndarray
    expression: int
    box: FaceBox | None = None
    valence: float | None = None
    arousal: float | None = None
    votes: tuple[float, ...] | None = None
    source: str = ""


def parse_label(text: str) -> int:
    """Index in ``AFFECTNET_8`` of a label name (any case, common aliases such as ``happy``) or an index."""
    name = text.strip()
    if name.isdigit():
        index = int(name)
        if index < len(AFFECTNET_8):
            return index
        raise ValueError(f"expression index {index} out of range 0-{len(AFFECTNET_8) - 1}")
    lowered = {label.lower(): i for i, label in enumerate(AFFECTNET_8)}
    key = _ALIASES.get(name.lower(), name).lower()
    if key not in lowered:
        raise ValueError(f"unknown expression {text!r}; use one of {', '.join(AFFECTNET_8)}")
    return lowered[key]


def _rows(
    path: Path, *, header: bool, text: str | None = None
) -> Iterator[tuple[int, dict[str, str] | list[str]]]:
    """(line number, row) of a CSV file (or of ``text`` read from ``path``), skipping blank lines."""
    if text is None:
        if not path.is_file():
            raise DatasetError(f"{path}: no such file")
        text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    columns: list[str] | None = None
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if header and columns is None:
            columns = [cell.strip() for cell in row]
            continue
        if columns is not None:
            if len(row) != len(columns):
                raise DatasetError(
                    f"{path}:{reader.line_num}: expected {len(columns)} columns, got {len(row)}"
                )
            yield reader.line_num, dict(zip(columns, row, strict=True))
        else:
            yield reader.line_num, row


def _require(path: Path, columns: Sequence[str], row: dict[str, str]) -> None:
    missing = [c for c in columns if c not in row]
    if missing:
        raise DatasetError(f"{path}:1: missing column(s) {', '.join(missing)}")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def read_affectnet(csv_path: str | Path, image_root: str | Path | None = None) -> list[Sample]:
    """Read an AffectNet ``training.csv``/``validation.csv``; images live under ``image_root`` (default:
    the CSV's folder). Expression codes 8-10 are dropped; valence/arousal outside [-1, 1] (AffectNet's -2)
    become None.
    """
    path = Path(csv_path)
    root = Path(image_root) if image_root is not None else path.parent
    needed = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "expression")
    samples = []
    for line, row in _rows(path, header=True):
        assert isinstance(row, dict)
        _require(path, needed, row)
        try:
            code = int(row["expression"])
            if not 0 <= code <= 10:
                raise ValueError(f"expression code {code} outside 0-10")
            x, y, w, h = (int(float(row[k])) for k in ("face_x", "face_y", "face_width", "face_height"))
            va = [_float(row[k]) if row.get(k, "").strip() else None for k in ("valence", "arousal")]
        except ValueError as error:
            raise DatasetError(f"{path}:{line}: {error}") from None
        if code >= len(AFFECTNET_CODES):
            continue
        valence, arousal = (v if v is not None and -1.0 <= v <= 1.0 else None for v in va)
        samples.append(
            Sample(
                image=root / row["subDirectory_filePath"].strip(),
                expression=AFFECTNET_8.index(AFFECTNET_CODES[code]),
                box=FaceBox(x, y, x + w, y + h) if w > 0 and h > 0 else None,
                valence=valence,
                arousal=arousal,
                source=f"{path}:{line}",
            )
        )
    return samples


def _ferplus_sample(
    path: str, line: int, row: list[str]
) -> tuple[str, FaceBox, int, tuple[float, ...]] | None:
    """Parse one label.csv row; None for images the majority protocol drops (tied, or unknown/NF dominant)."""
    if len(row) != 12:
        raise DatasetError(f"{path}:{line}: expected 12 columns (image, box, 10 votes), got {len(row)}")
    match = _BOX.match(row[1].strip())
    if match is None:
        raise DatasetError(f"{path}:{line}: face box {row[1]!r} is not '(x, y, w, h)'")
    x, y, w, h = (int(v) for v in match.groups())
    try:
        votes = [int(v) for v in row[2:]]
    except ValueError:
        raise DatasetError(f"{path}:{line}: vote counts must be integers, got {row[2:]}") from None
    if min(votes) < 0:
        raise DatasetError(f"{path}:{line}: negative vote count")
    emotions, other = votes[:8], max(votes[8:])
    top = max(emotions)
    if other > top or emotions.count(top) > 1:
        return None
    total = float(sum(emotions))
    by_label = dict(zip(FERPLUS_VOTES, emotions, strict=True))
    distribution = tuple(by_label[label] / total for label in AFFECTNET_8)
    expression = AFFECTNET_8.index(FERPLUS_VOTES[emotions.index(top)])
    return row[0].strip(), FaceBox(x, y, x + w, y + h), expression, distribution


def _ferplus_rows(label_path: str, text: str) -> Iterator[tuple[str, FaceBox, int, tuple[float, ...], str]]:
    for line, row in _rows(Path(label_path), header=False, text=text):
        assert isinstance(row, list)
        parsed = _ferplus_sample(label_path, line, row)
        if parsed is not None:
            yield (*parsed, f"{label_path}:{line}")


def read_ferplus(path: str | Path, split: str | None = None) -> list[Sample]:
    """Read a FER+ split: a folder with ``label.csv`` and PNGs, or an archive holding one such folder
    (``FER2013Train.tar.gz``).

    With ``split`` (train, valid or test), ``path`` is the base folder holding ``FER2013<Split>/`` or
    ``FER2013<Split>.tar.gz``. Images whose top emotion vote is tied, or whose unknown or not-a-face votes
    beat every emotion, are dropped (the FER+ majority protocol); ``votes`` is the distribution over the 8
    emotions. Archives are read once into memory (about 50 MB for the train split), never extracted.
    """
    path = Path(path)
    if split is not None:
        if split not in FERPLUS_SPLITS:
            raise DatasetError(f"unknown FER+ split {split!r}; use train, valid or test")
        folder = path / FERPLUS_SPLITS[split]
        path = folder if folder.is_dir() else path / f"{FERPLUS_SPLITS[split]}.tar.gz"
    if path.is_dir():
        label_path = path / "label.csv"
        if not label_path.is_file():
            raise DatasetError(f"{label_path}: no such file (not a FER+ split folder)")
        text = label_path.read_text(encoding="utf-8-sig")
        return [
            Sample(image=path / name, expression=e, box=box, votes=votes, source=source)
            for name, box, e, votes, source in _ferplus_rows(str(label_path), text)
        ]
    if not path.is_file():
        raise DatasetError(f"{path}: no such FER+ split folder or archive")
    label_member, images = _read_archive(path)
    prefix = label_member.rsplit("/", 1)[0] + "/" if "/" in label_member else ""
    label_text = images.pop(label_member).decode("utf-8-sig")
    samples = []
    for name, box, e, votes, source in _ferplus_rows(f"{path}:{label_member}", label_text):
        data = images.get(prefix + name)
        if data is None:
            raise DatasetError(f"{source}: image {prefix + name} not in {path}")
        samples.append(Sample(image=data, expression=e, box=box, votes=votes, source=source))
    return samples


def _read_archive(path: Path) -> tuple[str, dict[str, bytes]]:
    """The ``label.csv`` member name and the bytes of every PNG/CSV member of a tar archive; the members
    read into memory may hold ``max_archive_bytes`` together (see :mod:`faceaffect.core.limits`)."""
    members: dict[str, bytes] = {}
    limit, total = current_limits().max_archive_bytes, 0
    try:
        with tarfile.open(path) as archive:
            for member in archive:
                if member.isfile() and member.name.lower().endswith((*IMAGE_SUFFIXES, ".csv")):
                    total += member.size
                    if total > limit:
                        raise DatasetError(
                            f"{path}: member {member.name} ({member.size} bytes) takes the data read into "
                            f"memory beyond the limit of {limit} bytes; raise it with "
                            f"{env_name('max_archive_bytes')}"
                        )
                    handle = archive.extractfile(member)
                    if handle is not None:
                        members[member.name] = handle.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: cannot read archive: {error}") from None
    labels = sorted(name for name in members if name.rsplit("/", 1)[-1] == "label.csv")
    if len(labels) != 1:
        raise DatasetError(f"{path}: expected one label.csv in the archive, found {len(labels)}")
    return labels[0], members


def read_csv(csv_path: str | Path, image_root: str | Path | None = None) -> list[Sample]:
    """Read a plain CSV with a header: ``path``, ``expression`` (label name or AffectNet-8 index), optional
    ``valence`` and ``arousal``. Relative paths are resolved against ``image_root`` (default: the CSV's
    folder).
    """
    path = Path(csv_path)
    root = Path(image_root) if image_root is not None else path.parent
    samples = []
    for line, row in _rows(path, header=True):
        assert isinstance(row, dict)
        _require(path, ("path", "expression"), row)
        try:
            expression = parse_label(row["expression"])
            valence, arousal = (
                _float(row[k]) if row.get(k, "").strip() else None for k in ("valence", "arousal")
            )
        except ValueError as error:
            raise DatasetError(f"{path}:{line}: {error}") from None
        samples.append(
            Sample(root / row["path"].strip(), expression, None, valence, arousal, source=f"{path}:{line}")
        )
    return samples


def read_image_folder(root: str | Path) -> list[Sample]:
    """Read ``root/<label>/<image>`` (one subfolder per label name, e.g. ``happy`` or ``Happiness``)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    samples = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            expression = parse_label(folder.name)
        except ValueError as error:
            raise DatasetError(f"{folder}: {error}") from None
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        samples.extend(Sample(image=p, expression=expression, source=str(p)) for p in files)
    if not samples:
        raise DatasetError(f"{root}: no images found in label subfolders")
    return samples


READERS: dict[str, Callable[..., list[Sample]]] = {
    "affectnet": read_affectnet,
    "ferplus": read_ferplus,
    "csv": read_csv,
    "folder": read_image_folder,
}


def read_samples(kind: str, path: str | Path, image_root: str | Path | None = None) -> list[Sample]:
    """Dispatch to the reader of ``kind`` (affectnet, ferplus, csv or folder)."""
    if kind not in READERS:
        raise DatasetError(f"unknown dataset kind {kind!r}; use one of {', '.join(READERS)}")
    if kind in ("affectnet", "csv"):
        return READERS[kind](path, image_root)
    return READERS[kind](path)


def decode(sample: Sample) -> np.ndarray:
    """The sample's face as RGB uint8 (H, W, 3): image loaded (grey replicated to 3 channels), box cropped."""
    try:
        if isinstance(sample.image, np.ndarray):
            image = to_rgb_array(sample.image)
        elif isinstance(sample.image, bytes):
            image = decode_image(sample.image, sample.source or "archive member")
        else:
            image = load_image(sample.image)
        return crop_box(image, sample.box) if sample.box is not None else image
    except InputError as error:
        raise DatasetError(f"{sample.source or 'sample'}: {error}") from None


class FaceDataset(torch.utils.data.Dataset):
    """Samples for a model's label set -> ``(image (3, S, S) float32, targets)``.

    ``targets`` holds ``expression`` (int64 index into ``labels``), ``valence_arousal`` (2 floats, NaN when
    unlabelled) and ``votes`` (distribution over ``labels``, NaN when absent). Samples whose expression is not
    in ``labels`` (Contempt for 7-class models) are left out.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: Callable[[np.ndarray], torch.Tensor],
        labels: Sequence[str] = AFFECTNET_8,
    ) -> None:
        self.labels = tuple(labels)
        unknown = set(self.labels) - set(AFFECTNET_8)
        if unknown:
            raise DatasetError(f"labels {sorted(unknown)} are not AffectNet expressions")
        self._columns = [AFFECTNET_8.index(label) for label in self.labels]
        self.samples = [s for s in samples if AFFECTNET_8[s.expression] in self.labels]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def targets(self) -> np.ndarray:
        """Expression indices (into ``labels``) of every sample."""
        return np.array([self.labels.index(AFFECTNET_8[s.expression]) for s in self.samples], dtype=np.int64)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        sample = self.samples[index]
        nan = float("nan")
        va = [nan if v is None else v for v in (sample.valence, sample.arousal)]
        votes = torch.full((len(self.labels),), nan)
        if sample.votes is not None:
            kept = torch.tensor([sample.votes[c] for c in self._columns], dtype=torch.float32)
            if kept.sum() > 0:
                votes = kept / kept.sum()
        targets = {
            "expression": torch.tensor(self.labels.index(AFFECTNET_8[sample.expression])),
            "valence_arousal": torch.tensor(va, dtype=torch.float32),
            "votes": votes,
        }
        return self.transform(decode(sample)), targets
