"""What a corpus run works on: the inputs named on the command line (files, folders, globs, or manifest files
listing paths) as tasks, one per video, image or folder of images, each with a unique output name.

Analysis: a video file, or an image file, is one input; a folder is searched recursively, and each video in
it is one input, and each folder holding images is one input of its own images (as ``faceaffect analyze``
reads a folder of photos). Feature extraction takes its videos as ``faceaffect features`` finds them.

Outputs keep the layout of the inputs: ``clips/a/x.mp4`` given as ``clips/`` is written as ``clips/a/x``
(+ the table's suffix) in the output folder; a file given alone keeps its stem.

>>> [task.name for task in analysis_tasks(["clips/", "photo.jpg"])]  # doctest: +SKIP
['clips/a/x', 'clips/b/y', 'photo']
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from faceaffect.core.errors import InputError
from faceaffect.images import IMAGE_SUFFIXES
from faceaffect.video.sources import VIDEO_SUFFIXES

LIST_SUFFIXES = (".txt", ".csv")
GLOB_CHARACTERS = "*?["


@dataclass(frozen=True)
class Task:
    """One input: ``path`` (absolute), ``name`` (its outputs' path in the output folder, without suffix),
    ``kind`` (``video``, ``image`` or ``images``; features also ``frames``) and, for folders, its image
    ``files`` in order."""

    path: str
    name: str
    kind: str
    files: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        return cls(data["path"], data["name"], data["kind"], tuple(data.get("files", ())))


def named_paths(items: Sequence[str | Path]) -> list[tuple[Path, Path]]:
    """(absolute path, the folder its output names start from) of every path ``items`` name: paths as
    they are, glob patterns expanded, and lists of paths read: a ``.txt`` file (one per line) or a ``.csv``
    file (its ``path`` column); relative paths in a list start from the list's folder."""
    found: list[tuple[Path, Path]] = []
    for item in map(str, items):
        path = Path(item)
        if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            found.extend(_named(p) for p in _listed_paths(path))
        elif path.exists():
            found.append(_named(path))
        elif any(character in item for character in GLOB_CHARACTERS):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise InputError(f"no files match {item}")
            found.extend(_named(Path(match)) for match in matches)
        else:
            raise InputError(f"no such file or folder: {item}")
    return found


def _named(path: Path) -> tuple[Path, Path]:
    path = Path(os.path.abspath(path))
    return path, path.parent


def _listed_paths(listing: Path) -> list[Path]:
    """The paths a list file names (blank lines and ``#`` comments skipped); each must exist."""
    if listing.suffix.lower() == ".csv":
        import pandas as pd

        try:
            table = pd.read_csv(listing, dtype=str, keep_default_na=False)
        except (ValueError, OSError) as error:
            raise InputError(f"cannot read the list of inputs {listing}: {error}") from None
        if "path" not in table.columns:
            raise InputError(f"{listing} has no 'path' column (a list of inputs needs one)")
        lines = list(table["path"])
    else:
        lines = listing.read_text(encoding="utf-8").splitlines()
    paths = [listing.parent / line.strip() for line in lines if line.strip() and not line.startswith("#")]
    missing = [path for path in paths if not path.exists()]
    if missing:
        raise InputError(f"{listing} names {len(missing)} missing path(s), the first: {missing[0]}")
    return paths


def analysis_tasks(items: Sequence[str | Path]) -> list[Task]:
    """One task per video, image and folder of images that ``items`` name, in order, each path once."""
    tasks: dict[str, Task] = {}
    for path, root in named_paths(items):
        for task in _analysis_tasks(path, root):
            tasks.setdefault(task.path, task)
    return list(tasks.values())


def _analysis_tasks(path: Path, root: Path) -> Iterator[Task]:
    if path.is_file():
        kind = "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"
        yield Task(str(path), _output_name(path, root, kind), kind)
        return
    for folder, subfolders, names in os.walk(path):
        subfolders.sort()
        files = [Path(folder) / name for name in sorted(names)]
        for video in (f for f in files if f.suffix.lower() in VIDEO_SUFFIXES):
            yield Task(str(video), _output_name(video, root, "video"), "video")
        images = tuple(str(f) for f in files if f.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            yield Task(folder, _output_name(Path(folder), root, "images"), "images", images)


def _output_name(path: Path, root: Path, kind: str) -> str:
    relative = path.relative_to(root)
    return (relative if kind == "images" else relative.with_suffix("")).as_posix()


def feature_tasks(items: Sequence[str | Path]) -> list[Task]:
    """One task per video that ``faceaffect features`` finds in ``items``, named by its video id."""
    from faceaffect.downstream.extract import discover_sources

    sources = discover_sources([path for path, _ in named_paths(items)])
    return [Task(str(s.path), s.video, s.kind, tuple(map(str, s.files))) for s in sources]


def unique_names(tasks: Sequence[Task], taken: dict[str, str]) -> list[Task]:
    """``tasks`` with names made unique: an input keeps the name ``taken`` (name -> input) gave it before;
    a name another input holds gets ``-2``, ``-3``, ... ``taken`` is updated."""
    owner = {path: name for name, path in taken.items()}
    named = []
    for task in tasks:
        name = owner.get(task.path)
        if name is None:
            name, number = task.name, 1
            while name in taken:
                number += 1
                name = f"{task.name}-{number}"
            taken[name] = task.path
        named.append(Task(task.path, name, task.kind, task.files))
    return named
