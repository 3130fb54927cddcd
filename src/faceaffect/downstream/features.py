"""The feature store: per-frame embeddings and logits of a frozen model, one columnar file per video.

Layout of a store folder::

    manifest.json            model, settings, and one entry per finished video
    features/<video>.parquet columns video, frame, face, track, x1, y1, x2, y2, score, embedding[D],
                             logits[C], valence, arousal  (or features/<video>.npz with the same arrays)
    audio/<video>.npz        optional: times (T,) in seconds and hidden (T, H) of an audio encoder

Rows are faces: ``frame`` is the frame number (1-based for decoded videos, as Aff-Wild2 numbers its frames;
the number in the file name for image folders), ``face`` ranks the faces of a frame by detector score
(0 = best; always 0 for face crops), ``track`` follows a face across video frames (-1 without tracking).
Frames without a face have no row. Each video file is written
atomically and only then entered in the manifest (also written atomically), so an interrupted run resumes by
skipping the videos already listed. The manifest is read, changed and written under a lock
(``.manifest.lock``), so several runs into one store keep every run's videos.

>>> store = FeatureStore.create("features", model_info(get_config("mbf_va_mtl")))  # doctest: +SKIP
>>> store.read("video1").logits.shape  # doctest: +SKIP
(120, 8)
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from faceaffect.core.documents import read_document
from faceaffect.core.errors import FaceaffectError, InputError
from faceaffect.core.io import atomic_path, locked
from faceaffect.core.validate import check_fields
from faceaffect.hub.registry import ModelConfig

MANIFEST = "manifest.json"
LOCK = ".manifest.lock"
FORMAT_VERSION = 1
STORAGE_FORMATS = ("parquet", "npz")
_BOX_COLUMNS = ("x1", "y1", "x2", "y2", "score")


def model_info(config: ModelConfig) -> dict[str, Any]:
    """What the manifest records about the feature extractor."""
    return {
        "name": config.name,
        "arch": config.arch,
        "input_size": config.input_size,
        "embedding_dim": config.embedding_dim,
        "labels": list(config.labels),
        "has_va": config.has_va,
    }


@dataclass(frozen=True)
class VideoFeatures:
    """All face rows of one video (see the module docstring for the meaning of frame and face)."""

    video: str
    frames: np.ndarray
    faces: np.ndarray
    boxes: np.ndarray
    embedding: np.ndarray
    logits: np.ndarray
    valence_arousal: np.ndarray | None = None
    tracks: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def outputs(self) -> np.ndarray:
        """The model's outputs in its published layout: expression logits, then valence and arousal if any."""
        if self.valence_arousal is None:
            return self.logits
        return np.concatenate([self.logits, self.valence_arousal], axis=1)

    def select(self, rows: np.ndarray) -> VideoFeatures:
        """The rows picked by a boolean mask or index array."""
        va = None if self.valence_arousal is None else self.valence_arousal[rows]
        tracks = None if self.tracks is None else self.tracks[rows]
        return VideoFeatures(
            self.video,
            self.frames[rows],
            self.faces[rows],
            self.boxes[rows],
            self.embedding[rows],
            self.logits[rows],
            va,
            tracks,
        )

    def main_face(self) -> VideoFeatures:
        """One row per frame: the best-scoring face (``face == 0``), sorted by frame."""
        rows = np.flatnonzero(self.faces == 0)
        return self.select(rows[np.argsort(self.frames[rows], kind="stable")])


@dataclass
class VideoEntry:
    """The manifest's record of one finished video."""

    file: str
    source: str
    kind: str
    n_frames: int
    rows: int
    frames_with_face: int
    fps: float | None = None
    audio: str | None = None


@dataclass
class FeatureStore:
    """A folder of per-video feature files and its manifest; see the module docstring.

    :meth:`read` keeps the most recently read videos in memory, up to ``cache_bytes`` of arrays (default
    128 MiB; 0 turns it off), so the several passes of training and tuning read each file once when the
    store fits (a store of many short videos, such as images, costs a file open per video and pass).
    """

    root: Path
    model: dict[str, Any]
    storage: str = "parquet"
    settings: dict[str, Any] = field(default_factory=dict)
    videos: dict[str, VideoEntry] = field(default_factory=dict)
    cache_bytes: int = 128 * 2**20
    _cache: OrderedDict[str, VideoFeatures] = field(default_factory=OrderedDict, repr=False, compare=False)
    _cached_bytes: int = field(default=0, repr=False, compare=False)
    _pending: dict[str, VideoEntry] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def open(cls, root: str | Path) -> FeatureStore:
        """An existing store; InputError when ``root`` holds none."""
        root = Path(root)
        path = root / MANIFEST
        if not path.is_file():
            raise InputError(
                f"{root} is not a feature store (no {MANIFEST}); make one with `faceaffect features`"
            )
        data = read_document(path)
        try:
            videos = {name: VideoEntry(**entry) for name, entry in data["videos"].items()}
            store = cls(root, data["model"], data["storage"], data.get("settings", {}), videos)
            store._check()
        except (KeyError, TypeError, AttributeError, FaceaffectError) as error:
            raise InputError(f"{path}: not a valid feature manifest ({error})") from None
        return store

    def _check(self) -> None:
        """What a manifest says is usable: the model's record, each entry's types, and files inside the
        store (a manifest never makes faceaffect read a file elsewhere)."""
        model = self.model
        if not isinstance(model, dict) or self.storage not in STORAGE_FORMATS:
            raise InputError("bad model record or storage")
        if not (isinstance(model.get("labels"), list) and all(isinstance(x, str) for x in model["labels"])):
            raise InputError("the model's labels must be a list of names")
        if not isinstance(model.get("embedding_dim"), int) or not isinstance(model.get("has_va"), bool):
            raise InputError("the model's embedding_dim and has_va are missing")
        root = self.root.resolve()
        for entry in self.videos.values():
            check_fields(entry, "video entry")
            for file in (entry.file, entry.audio):
                if file is not None and not (root / file).resolve().is_relative_to(root):
                    raise InputError(f"{file!r} lies outside the store")

    @classmethod
    def create(
        cls,
        root: str | Path,
        model: dict[str, Any],
        storage: str = "parquet",
        settings: dict[str, Any] | None = None,
    ) -> FeatureStore:
        """Open the store at ``root`` for videos made with ``model`` and ``settings``, creating it if needed.

        An existing store is reused (resume) only when it was made by the same model with the same settings.
        """
        if storage not in STORAGE_FORMATS:
            raise InputError(
                f"unknown feature storage {storage!r}; choose one of {', '.join(STORAGE_FORMATS)}"
            )
        settings = dict(settings or {})
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"cannot make the feature store {root}: {error.strerror or error}") from None
        with locked(root / LOCK):
            if not (root / MANIFEST).is_file():
                store = cls(root, model, storage, settings)
                store.save_manifest()
                return store
            store = cls.open(root)
        if store.model != model or store.storage != storage or store.settings != settings:
            raise FaceaffectError(
                f"{root} holds features made by {store.model.get('name')} ({store.storage}, "
                f"{store.settings}); these would be made by {model.get('name')} ({storage}, {settings}): "
                "use another output folder"
            )
        return store

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.model["labels"])

    @property
    def output_names(self) -> tuple[str, ...]:
        """Names of the columns of :attr:`VideoFeatures.outputs`."""
        return self.labels + (("valence", "arousal") if self.model["has_va"] else ())

    def __contains__(self, video: str) -> bool:
        entry = self.videos.get(video)
        return entry is not None and (self.root / entry.file).is_file()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.videos))

    def save_manifest(self) -> None:
        document = {
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "storage": self.storage,
            "settings": self.settings,
            "videos": {name: asdict(entry) for name, entry in sorted(self.videos.items())},
        }
        with atomic_path(self.root / MANIFEST) as tmp:
            tmp.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")

    def write(self, features: VideoFeatures, entry: VideoEntry, *, manifest: bool = True) -> None:
        """Write one video's rows atomically, then record ``entry`` in the manifest.

        With ``manifest=False`` the entry waits in memory for the next :meth:`flush` (writers of many small
        videos flush now and then: entering each one costs a manifest read and write, O(videos^2) in all).
        """
        self.record(features.video, self.write_file(features, entry), flush=manifest)

    def write_file(self, features: VideoFeatures, entry: VideoEntry) -> VideoEntry:
        """Write one video's rows atomically and complete its ``entry``, without entering it in the manifest
        (the workers of a corpus run write files; its driver alone keeps the manifest, see :meth:`record`)."""
        _check_video_id(features.video)
        entry.file = f"features/{features.video}.{self.storage}"
        entry.rows = len(features)
        entry.frames_with_face = len(np.unique(features.frames))
        with atomic_path(self.root / entry.file) as tmp:
            (_write_parquet if self.storage == "parquet" else _write_npz)(features, tmp)
        self._forget(features.video)
        return entry

    def record(self, video: str, entry: VideoEntry, *, flush: bool = True) -> None:
        """Enter a written video in the manifest (``flush=False``: at the next :meth:`flush`)."""
        self.videos[video] = entry
        self._pending[video] = entry
        if flush:
            self.flush()

    def flush(self) -> None:
        """Enter the videos written since the last flush in the manifest, keeping the videos other runs
        entered meanwhile: the manifest is read again, changed and written while this process holds the
        store's lock."""
        if not self._pending:
            return
        with locked(self.root / LOCK):
            if (self.root / MANIFEST).is_file():
                self.videos = FeatureStore.open(self.root).videos
            self.videos.update(self._pending)
            self._pending.clear()
            self.save_manifest()

    def read(self, video: str) -> VideoFeatures:
        """All rows of one video (read-only arrays when they come from the cache)."""
        cached = self._cache.get(video)
        if cached is not None:
            self._cache.move_to_end(video)
            return cached
        if video not in self:
            raise InputError(f"video {video!r} is not in the feature store {self.root}")
        path = self.root / self.videos[video].file
        dims = (int(self.model["embedding_dim"]), len(self.labels), bool(self.model["has_va"]))
        try:
            features = (_read_parquet if path.suffix == ".parquet" else _read_npz)(video, path, *dims)
        except (OSError, KeyError, ValueError) as error:
            raise InputError(f"cannot read features of {video!r} from {path}: {error}") from None
        self._remember(features)
        return features

    def _remember(self, features: VideoFeatures) -> None:
        arrays = _arrays(features)
        size = sum(a.nbytes for a in arrays)
        if size > self.cache_bytes:
            return
        for array in arrays:
            array.flags.writeable = False  # shared by every later reader of this video
        self._cache[features.video] = features
        self._cached_bytes += size
        while self._cached_bytes > self.cache_bytes:
            self._forget(next(iter(self._cache)))

    def _forget(self, video: str) -> None:
        dropped = self._cache.pop(video, None)
        if dropped is not None:
            self._cached_bytes -= sum(a.nbytes for a in _arrays(dropped))

    def write_audio(self, video: str, times: np.ndarray, hidden: np.ndarray) -> None:
        """Store an audio encoder's states (T, H) at ``times`` (T,) seconds for a video already written."""
        relative = f"audio/{video}.npz"
        with atomic_path(self.root / relative) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, times=np.asarray(times, np.float32), hidden=np.asarray(hidden, np.float32))
        self.record(video, replace(self.videos[video], audio=relative))

    def read_audio(self, video: str) -> tuple[np.ndarray, np.ndarray]:
        """(times (T,), hidden (T, H)) of a video's audio; InputError when it has none."""
        entry = self.videos.get(video)
        if entry is None or entry.audio is None:
            raise InputError(f"no audio features for {video!r} in {self.root} (extract with --audio-model)")
        with np.load(self.root / entry.audio) as data:
            return data["times"], data["hidden"]


def _arrays(features: VideoFeatures) -> list[np.ndarray]:
    values = (getattr(features, f.name) for f in fields(features))
    return [value for value in values if isinstance(value, np.ndarray)]


def _check_video_id(video: str) -> None:
    if not video or "/" in video or "\\" in video or video.startswith("."):
        raise InputError(f"video id {video!r} cannot name a file (no slashes, no leading dot)")


def _columns(features: VideoFeatures) -> dict[str, np.ndarray]:
    n = len(features)
    va = features.valence_arousal if features.valence_arousal is not None else np.full((n, 2), np.nan)
    boxes = np.asarray(features.boxes, np.float32).reshape(n, 5)
    tracks = np.full(n, -1) if features.tracks is None else features.tracks
    return {
        "frame": np.asarray(features.frames, np.int64),
        "face": np.asarray(features.faces, np.int16),
        "track": np.asarray(tracks, np.int32),
        **{name: boxes[:, i] for i, name in enumerate(_BOX_COLUMNS)},
        "valence": va[:, 0].astype(np.float32),
        "arousal": va[:, 1].astype(np.float32),
    }


def _from_columns(
    video: str, column: Callable[[str], np.ndarray], dim: int, classes: int, has_va: bool
) -> VideoFeatures:
    va = np.stack([column("valence"), column("arousal")], axis=1).astype(np.float32) if has_va else None
    tracks = column("track").astype(np.int32)
    return VideoFeatures(
        video,
        column("frame").astype(np.int64),
        column("face").astype(np.int16),
        np.stack([column(name) for name in _BOX_COLUMNS], axis=1).astype(np.float32),
        np.asarray(column("embedding"), np.float32).reshape(-1, dim),
        np.asarray(column("logits"), np.float32).reshape(-1, classes),
        va,
        None if (tracks < 0).all() else tracks,
    )


def _write_parquet(features: VideoFeatures, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def fixed(values: np.ndarray) -> pa.Array:
        values = np.ascontiguousarray(values, dtype=np.float32)
        return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])

    columns = {"video": pa.array([features.video] * len(features), pa.string()).dictionary_encode()}
    columns.update({name: pa.array(values) for name, values in _columns(features).items()})
    columns["embedding"] = fixed(features.embedding)
    columns["logits"] = fixed(features.logits)
    pq.write_table(pa.table(columns), path)


def _read_parquet(video: str, path: Path, dim: int, classes: int, has_va: bool) -> VideoFeatures:
    import pyarrow.parquet as pq

    table = pq.read_table(path)

    def column(name: str) -> np.ndarray:
        values = table.column(name).combine_chunks()
        if name in ("embedding", "logits"):
            values = values.flatten()
        return values.to_numpy(zero_copy_only=False)

    return _from_columns(video, column, dim, classes, has_va)


def _write_npz(features: VideoFeatures, path: Path) -> None:
    with open(path, "wb") as handle:
        np.savez(
            handle,
            embedding=np.asarray(features.embedding, np.float32),
            logits=np.asarray(features.logits, np.float32),
            **_columns(features),
        )


def _read_npz(video: str, path: Path, dim: int, classes: int, has_va: bool) -> VideoFeatures:
    with np.load(path) as data:
        return _from_columns(video, data.__getitem__, dim, classes, has_va)
