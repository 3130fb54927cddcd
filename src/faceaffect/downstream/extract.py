"""``faceaffect features``: run a frozen model over images, frame folders, videos or a whole dataset folder.

What counts as a video (its id is the file or folder name):

- a video file (``.mp4``, ``.avi``, ``.mov``, ...): streamed through :class:`faceaffect.analysis.Analyzer`
  (PyAV decoding, a face detector, BlazeFace by default, and tracking without gap filling), frames numbered
  from 1;
- a folder whose images are all named by frame number (``00001.jpg`` ...), as Aff-Wild2's ``cropped_aligned``
  folders: each image is an aligned face crop of that frame (no detection unless ``detect_images``);
- any other image: a one-frame video of its own (frame 1).

A folder given as input is searched recursively for all three. Videos already in the store are skipped, so
an interrupted run continues where it stopped (finished videos enter the saved manifest every few seconds,
not one by one: an interruption costs at most those seconds of work). Frames are read by the front end
(``faceaffect.video``, ``faceaffect.images``), faces found and followed by the analysis stream.

>>> report = extract_features(["clips/"], "features/", batch_size=64)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from faceaffect.core.errors import InputError
from faceaffect.core.progress import Progress
from faceaffect.core.types import FacePrediction
from faceaffect.downstream.abaw import parse_frame_name
from faceaffect.downstream.features import FeatureStore, VideoEntry, VideoFeatures, model_info
from faceaffect.hub.registry import ModelConfig
from faceaffect.images import IMAGE_SUFFIXES
from faceaffect.options import AnalyzerOptions, RuntimeOptions
from faceaffect.recognizer import Recognizer
from faceaffect.video.decode import Sampling, SourceKind, VideoReader
from faceaffect.video.sources import VIDEO_SUFFIXES, ImageFiles, Source

if TYPE_CHECKING:
    from faceaffect.analysis import Analyzer
    from faceaffect.downstream.audio import AudioEncoder
    from faceaffect.models.multitask import MultiTaskModel

FramesFaces = list[tuple[int, Sequence[FacePrediction]]]  # (frame number, faces of that frame)
MANIFEST_SECONDS = 5.0  # finished videos enter the saved manifest at least this often (and at the end)


@dataclass(frozen=True)
class VideoInput:
    """One video of the store: its id, how the store records it (a ``video`` file, a folder of ``frames``
    named by number, or one ``image``), its path, and its image files."""

    video: str
    kind: Literal["video", "frames", "image"]
    path: Path
    files: tuple[Path, ...] = ()

    def open(self, sampling: Sampling) -> Source:
        """Its frames, read by the front end (``sampling`` applies to video files)."""
        if self.kind == "video":
            return VideoReader.open(self.path, sampling)
        kind = SourceKind.IMAGES if self.kind == "frames" else SourceKind.IMAGE
        return ImageFiles(list(self.files), str(self.path), kind)

    def frame_count(self, sampling: Sampling) -> int:
        """Frames to analyse (0 when a video does not say)."""
        if self.kind != "video":
            return len(self.files)
        reader = VideoReader.open(self.path, sampling)  # checks the file before any work is spent
        reader.close()
        return reader.expected_frames() or 0

    def frame_number(self, index: int, file: str | None) -> int:
        """The store's frame number of the ``index``-th frame read (from 1), or the number its file is
        named by (frame folders)."""
        return parse_frame_name(str(file)) if self.kind == "frames" else index + 1


def discover_sources(inputs: Sequence[str | Path]) -> list[VideoInput]:
    """The videos in ``inputs`` (files or folders, searched recursively), sorted by id; ids must be unique."""
    found: list[VideoInput] = []
    for item in map(Path, inputs):
        if item.is_file():
            found.extend(_folder_inputs(item.parent, [item]))
        elif item.is_dir():
            for folder, subfolders, names in os.walk(item):
                subfolders.sort()
                found.extend(_folder_inputs(Path(folder), [Path(folder) / n for n in sorted(names)]))
        else:
            raise InputError(f"no such file or folder: {item}")
    seen: dict[str, Path] = {}
    for video in found:
        if video.video in seen:
            raise InputError(
                f"two inputs would get the video id {video.video!r}: {seen[video.video]} and {video.path}"
            )
        seen[video.video] = video.path
    return sorted(found, key=lambda video: video.video)


def _folder_inputs(folder: Path, files: list[Path]) -> list[VideoInput]:
    videos = [VideoInput(f.stem, "video", f) for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
    images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
    if len(images) > 1 and all(f.stem.isdigit() for f in images):
        return [*videos, VideoInput(folder.resolve().name, "frames", folder, tuple(images))]
    return videos + [VideoInput(f.stem, "image", f, (f,)) for f in images]


@dataclass
class ExtractionReport:
    """What a run did: videos written, videos skipped as already done, images that could not be read."""

    store: FeatureStore
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


def store_settings(
    has_videos: bool,
    detector: str,
    detect_images: bool,
    min_face_size: float,
    stride: int,
    audio: str | None = None,
) -> dict[str, Any]:
    """What a store records of how its videos were extracted (a store is continued only with the same);
    ``has_videos``: whether any input is a video file (else no detector may be used)."""
    return {
        "detector": detector if detect_images or has_videos else None,
        "detect_images": detect_images,
        "min_face_size": min_face_size,
        "stride": stride,
        "audio": audio,
    }


class FeatureExtractor:
    """The models of a feature extraction, loaded once (the detector when first needed), giving the features
    of one video at a time: :func:`extract_features` runs one over its inputs, a corpus run one per worker.

    ``model``, ``runtime`` and ``settings`` are the :class:`~faceaffect.recognizer.Recognizer`'s; the other
    arguments are :func:`extract_features`'s.
    """

    def __init__(
        self,
        model: str | Path | MultiTaskModel | None = None,
        *,
        runtime: RuntimeOptions | None = None,
        detector: str = AnalyzerOptions.detector,
        detect_images: bool = False,
        min_face_size: float = 32.0,
        stride: int = 1,
        **settings: Any,
    ) -> None:
        self.sampling = Sampling(stride)  # checks it
        self.recognizer = Recognizer(model, options=runtime, **settings)
        self.detector, self.detect_images, self.min_face_size = detector, detect_images, min_face_size
        self._analyzer: Analyzer | None = None

    def create_store(
        self,
        out: str | Path,
        videos: Sequence[VideoInput],
        storage: str = "parquet",
        audio: str | None = None,
    ) -> FeatureStore:
        """The store at ``out`` for these videos, created or resumed (same model and settings only)."""
        has_videos = any(video.kind == "video" for video in videos)
        settings = store_settings(
            has_videos, self.detector, self.detect_images, self.min_face_size, self.sampling.stride, audio
        )
        return FeatureStore.create(out, model_info(self.recognizer.config), storage, settings)

    def extract(
        self, video: VideoInput, failures: list[tuple[str, str]], progress: Progress | None = None
    ) -> tuple[VideoFeatures, VideoEntry]:
        """One video's rows and manifest entry; images that cannot be read are added to ``failures``."""
        detect = self._detection() if video.kind == "video" or self.detect_images else None
        return _extract(video, self.recognizer, detect, failures, progress)

    def _detection(self) -> Analyzer:
        if self._analyzer is None:
            stride = self.sampling.stride
            self._analyzer = _analyzer(self.recognizer, self.detector, self.min_face_size, stride)
        return self._analyzer


def extract_features(
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    model: str | Path | MultiTaskModel | None = None,
    runtime: RuntimeOptions | None = None,
    detector: str = AnalyzerOptions.detector,
    detect_images: bool = False,
    min_face_size: float = 32.0,
    stride: int = 1,
    storage: str = "parquet",
    audio: AudioEncoder | None = None,
    progress: Progress | None = None,
    **settings: Any,
) -> ExtractionReport:
    """Embeddings and logits of every face of every video in ``inputs``, written to the store ``out``.

    ``model`` (default: ``runtime.model``), ``runtime`` and ``settings`` (its fields by name: device,
    engine, threads, batch_size, offline) are the :class:`~faceaffect.recognizer.Recognizer`'s. ``stride``
    keeps every stride-th frame of decoded videos (frames 1, 1 + stride, ...). ``audio``, when given, also
    stores the encoder's states of each video file's sound track.
    """
    Sampling(stride)  # checked before the inputs are searched
    videos = discover_sources(inputs)
    if not videos:
        raise InputError("no videos, frame folders or images found in " + ", ".join(map(str, inputs)))
    extractor = FeatureExtractor(
        model, runtime=runtime, detector=detector, detect_images=detect_images, min_face_size=min_face_size,
        stride=stride, **settings,
    )  # fmt: skip
    store = extractor.create_store(out, videos, storage, None if audio is None else audio.name)
    report = ExtractionReport(store)
    todo = [video for video in videos if video.video not in store]
    counts = {video.video: video.frame_count(extractor.sampling) for video in todo}
    total, done = sum(counts.values()), 0
    saved = time.monotonic()
    try:
        for video in videos:
            if video.video in store:
                report.skipped.append(video.video)
            else:
                step = None if progress is None else _offset(progress, done, total)
                features, entry = extractor.extract(video, report.failures, step)
                if entry.n_frames or video.kind == "video":  # nothing readable: left out, tried again later
                    store.write(features, entry, manifest=False)
                    report.written.append(video.video)
                done += counts[video.video]
                if progress is not None:
                    progress(done, total)
            if audio is not None and video.kind == "video" and store.videos[video.video].audio is None:
                _write_audio(store, video, audio)  # also completes a run interrupted between video and audio
            if time.monotonic() - saved >= MANIFEST_SECONDS:
                store.flush()
                saved = time.monotonic()
    finally:
        store.flush()  # entering each video at once cost O(videos^2): minutes for 5,000 images
    return report


def _analyzer(recognizer: Recognizer, detector: str, min_face_size: float, stride: int) -> Analyzer:
    """The analysis stream of extraction: every face with its embedding, tracked without gap filling."""
    from faceaffect.analysis import Analyzer

    options = AnalyzerOptions(
        detector=detector, min_face_size=min_face_size, stride=stride, max_gap=0, embeddings=True
    )
    return Analyzer(recognizer, options=options)


def _offset(progress: Progress, done: int, total: int) -> Progress:
    return lambda frames, _: progress(done + frames, total)


def _write_audio(store: FeatureStore, video: VideoInput, audio: AudioEncoder) -> None:
    from faceaffect.downstream.audio import has_audio, read_audio

    if has_audio(video.path):
        store.write_audio(video.video, *audio.encode(read_audio(video.path, audio.sample_rate)))


def _extract(
    video: VideoInput,
    recognizer: Recognizer,
    analyzer: Analyzer | None,
    failures: list[tuple[str, str]],
    progress: Progress | None,
) -> tuple[VideoFeatures, VideoEntry]:
    """One video's rows and manifest entry: faces found by ``analyzer``, or each image one face crop."""
    fps, declared = None, 0
    if analyzer is None:
        crops, unreadable = recognizer.predict_files(video.files, embeddings=True, progress=progress)
        found: FramesFaces = [
            (video.frame_number(index, path), [face]) for index, (path, face) in enumerate(crops)
        ]
    else:
        frames = video.open(analyzer.sampling)
        if isinstance(frames, VideoReader):
            fps, declared = frames.source_fps, frames.declared_frames
        found = [(video.frame_number(r.index, r.source), r.faces) for r in analyzer.stream(frames, progress)]
        unreadable = frames.failures
    failures.extend((failure.path, failure.reason) for failure in unreadable)
    n_frames = max([declared, *(number for number, _ in found)])
    features = _features(video.video, found, recognizer.config, tracks=video.kind == "video")
    entry = VideoEntry("", str(video.path), video.kind, n_frames, rows=0, frames_with_face=0, fps=fps)
    return features, entry


def _features(video: str, found: FramesFaces, config: ModelConfig, tracks: bool) -> VideoFeatures:
    """The store's columns; the faces of a frame ranked by detector score (rank 0: the main face)."""
    rows = [
        (number, rank, face)
        for number, faces in found
        for rank, face in enumerate(sorted(faces, key=_score, reverse=True))
    ]
    faces = [face for _, _, face in rows]
    return VideoFeatures(
        video=video,
        frames=np.array([number for number, _, _ in rows], dtype=np.int64),
        faces=np.array([rank for _, rank, _ in rows], dtype=np.int16),
        boxes=np.array([_corners(face) for face in faces], dtype=np.float32).reshape(-1, 5),
        embedding=np.array([f.embedding for f in faces], dtype=np.float32).reshape(-1, config.embedding_dim),
        logits=np.array([f.logits for f in faces], dtype=np.float32).reshape(-1, config.num_classes),
        valence_arousal=(
            np.array([(f.valence, f.arousal) for f in faces], dtype=np.float32).reshape(-1, 2)
            if config.has_va
            else None
        ),
        tracks=(
            np.array([-1 if f.track_id is None else f.track_id for f in faces], dtype=np.int32)
            if tracks
            else None
        ),
    )


def _score(face: FacePrediction) -> float:
    return face.box.score if face.box else 0.0


def _corners(face: FacePrediction) -> tuple[float, ...]:
    box = face.box
    return (np.nan,) * 5 if box is None else (box.x1, box.y1, box.x2, box.y2, box.score)
