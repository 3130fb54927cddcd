"""``faceaffect features``: run a frozen model over images, frame folders, videos or a whole dataset folder.

What counts as a video (its id is the file or folder name):

- a video file (``.mp4``, ``.avi``, ``.mov``, ...): streamed through :class:`faceaffect.analysis.Analyzer`
  (PyAV decoding, a face detector, BlazeFace by default, and tracking without gap filling), frames numbered
  from 1;
- a folder whose images are all named by frame number (``00001.jpg`` ...), as Aff-Wild2's ``cropped_aligned``
  folders: each image is an aligned face crop of that frame (no detection unless ``detect_images``);
- any other image: a one-frame video of its own (frame 1).

A folder given as input is searched recursively for all three. Videos already in the store are skipped, so
an interrupted run continues where it stopped.

>>> report = extract_features(["clips/"], "features/")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceaffect.core.errors import InputError
from faceaffect.core.progress import Progress
from faceaffect.core.types import FaceBox
from faceaffect.downstream.abaw import parse_frame_name
from faceaffect.downstream.features import FeatureStore, VideoEntry, VideoFeatures, model_info
from faceaffect.hub.registry import DEFAULT_MODEL
from faceaffect.images import IMAGE_SUFFIXES, load_image
from faceaffect.options import RuntimeOptions
from faceaffect.preprocess import crop_box
from faceaffect.recognizer import Recognizer
from faceaffect.video.sources import VIDEO_SUFFIXES

if TYPE_CHECKING:
    from faceaffect.analysis import Analyzer
    from faceaffect.detect import FaceDetector
    from faceaffect.downstream.audio import AudioEncoder


@dataclass(frozen=True)
class Source:
    """One video to extract: ``kind`` is ``video``, ``frames`` (a folder of frame images) or ``image``."""

    video: str
    kind: str
    path: Path
    files: tuple[Path, ...] = ()

    def frame_count(self, stride: int = 1) -> int:
        """Frames to analyse (for videos: every ``stride``-th; 0 when a container does not say)."""
        if self.kind != "video":
            return len(self.files)
        import av

        try:
            with av.open(str(self.path)) as container:
                return math.ceil(int(container.streams.video[0].frames or 0) / stride)
        except (av.FFmpegError, IndexError):
            return 0


def discover_sources(inputs: Sequence[str | Path]) -> list[Source]:
    """The videos in ``inputs`` (files or folders, searched recursively), sorted by id; ids must be unique."""
    sources: list[Source] = []
    for item in map(Path, inputs):
        if item.is_file():
            sources.extend(_file_sources(item.parent, [item]))
        elif item.is_dir():
            for folder, subfolders, names in os.walk(item):
                subfolders.sort()
                sources.extend(_file_sources(Path(folder), [Path(folder) / n for n in sorted(names)]))
        else:
            raise InputError(f"no such file or folder: {item}")
    seen: dict[str, Path] = {}
    for source in sources:
        if source.video in seen:
            raise InputError(
                f"two inputs would get the video id {source.video!r}: {seen[source.video]} and {source.path}"
            )
        seen[source.video] = source.path
    return sorted(sources, key=lambda s: s.video)


def _file_sources(folder: Path, files: list[Path]) -> list[Source]:
    videos = [Source(f.stem, "video", f) for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
    images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
    if len(images) > 1 and all(f.stem.isdigit() for f in images):
        return [*videos, Source(folder.resolve().name, "frames", folder, tuple(images))]
    return videos + [Source(f.stem, "image", f, (f,)) for f in images]


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
    """What a store records about how its videos were extracted (a store is resumed only with the same);
    ``has_videos``: whether any input is a video file (else the detector may go unused)."""
    return {
        "detector": detector if detect_images or has_videos else None,
        "detect_images": detect_images,
        "min_face_size": min_face_size,
        "stride": stride,
        "audio": audio,
    }


class FeatureExtractor:
    """The models of a feature extraction, loaded once (the detector when first needed), giving the features
    of one source at a time: :func:`extract_features` runs one over its inputs, a corpus run one per worker.

    ``model`` is a registered name, a saved folder or a ``MultiTaskModel`` (default: ``runtime.model``);
    ``runtime`` says how it runs; the other arguments are :func:`extract_features`'s.
    """

    def __init__(
        self,
        model: str | Path | Any = None,
        *,
        runtime: RuntimeOptions | None = None,
        detector: str = "blazeface",
        detect_images: bool = False,
        min_face_size: float = 32.0,
        stride: int = 1,
    ) -> None:
        if stride < 1:
            raise InputError(f"stride must be at least 1, got {stride}")
        self.recognizer = Recognizer(model, options=runtime or RuntimeOptions())
        self.detector_name = detector
        self.detect_images = detect_images
        self.min_face_size = min_face_size
        self.stride = stride
        self._analyzer: Analyzer | None = None

    @property
    def analyzer(self) -> Analyzer:
        """Detection, tracking and recognition of decoded videos (and images with ``detect_images``)."""
        if self._analyzer is None:
            from faceaffect.analysis import Analyzer
            from faceaffect.detect import create_detector

            detector = create_detector(self.detector_name, min_face_size=self.min_face_size)
            self._analyzer = Analyzer(
                self.recognizer, detector, stride=self.stride, embeddings=True, max_gap=0
            )
        return self._analyzer

    def create_store(
        self, out: str | Path, sources: Sequence[Source], storage: str = "parquet", audio: str | None = None
    ) -> FeatureStore:
        """The store at ``out`` for these sources, created or resumed (same model and settings only)."""
        has_videos = any(s.kind == "video" for s in sources)
        settings = store_settings(
            has_videos, self.detector_name, self.detect_images, self.min_face_size, self.stride, audio
        )
        return FeatureStore.create(out, model_info(self.recognizer.config), storage, settings)

    def extract(
        self, source: Source, failures: list[tuple[str, str]], progress: Progress | None = None
    ) -> tuple[VideoFeatures, VideoEntry]:
        """The features of one source; unreadable images are appended to ``failures`` and left out."""
        if source.kind == "video":
            return _video_features(source, self.analyzer, progress)
        detector = self.analyzer.detector if self.detect_images else None
        return _image_features(source, self.recognizer, detector, failures)


def extract_features(
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    model: str | Path | Any = DEFAULT_MODEL,
    detector: str = "blazeface",
    detect_images: bool = False,
    min_face_size: float = 32.0,
    stride: int = 1,
    storage: str = "parquet",
    batch_size: int = 32,
    device: str = "cpu",
    engine: str = "auto",
    threads: int | None = None,
    offline: bool | None = None,
    audio: AudioEncoder | None = None,
    progress: Progress | None = None,
) -> ExtractionReport:
    """Embeddings and logits of every face of every video in ``inputs``, written to the store ``out``.

    ``stride`` keeps every stride-th frame of decoded videos (frames 1, 1 + stride, ...). ``audio``, when
    given, also stores the encoder's states of each video file's sound track. ``engine`` and ``threads`` are
    the :class:`~faceaffect.recognizer.Recognizer`'s.
    """
    sources = discover_sources(inputs)
    if not sources:
        raise InputError("no videos, frame folders or images found in " + ", ".join(map(str, inputs)))
    runtime = RuntimeOptions(
        device=device, engine=engine, threads=threads, batch_size=batch_size, offline=offline
    )
    extractor = FeatureExtractor(
        model,
        runtime=runtime,
        detector=detector,
        detect_images=detect_images,
        min_face_size=min_face_size,
        stride=stride,
    )
    store = extractor.create_store(out, sources, storage, None if audio is None else audio.name)
    report = ExtractionReport(store)
    counts = [s.frame_count(stride) for s in sources]
    total, done = sum(counts), 0
    for source, count in zip(sources, counts, strict=True):
        if source.video in store:
            report.skipped.append(source.video)
        else:
            step = None if progress is None or source.kind != "video" else _offset(progress, done, total)
            store.write(*extractor.extract(source, report.failures, step))
            report.written.append(source.video)
        if audio is not None and source.kind == "video" and store.videos[source.video].audio is None:
            _write_audio(store, source, audio)  # also completes a run interrupted between video and audio
        done += count
        if progress is not None:
            progress(done, total)
    return report


def _offset(progress: Progress, done: int, total: int) -> Progress:
    return lambda frames, _: progress(done + frames, total)


def _write_audio(store: FeatureStore, source: Source, audio: AudioEncoder) -> None:
    from faceaffect.downstream.audio import has_audio, read_audio

    if has_audio(source.path):
        store.write_audio(source.video, *audio.encode(read_audio(source.path, audio.sample_rate)))


def _images(source: Source, failures: list[tuple[str, str]]) -> Iterator[tuple[int, np.ndarray]]:
    for file in source.files:
        try:
            image = load_image(file)
        except InputError as error:
            failures.append((str(file), str(error)))
            continue
        yield (parse_frame_name(file) if source.kind == "frames" else 1), image


def _faces(image: np.ndarray, detector: FaceDetector | None) -> list[tuple[FaceBox | None, np.ndarray]]:
    if detector is None:
        return [(None, image)]
    return [(box, crop_box(image, box)) for box in detector.detect(image)]


def _image_features(
    source: Source, recognizer: Recognizer, detector: FaceDetector | None, failures: list[tuple[str, str]]
) -> tuple[VideoFeatures, VideoEntry]:
    """Images as frames: each image one face crop, or every face the detector finds in it."""
    rows: list[tuple[int, int, tuple[float, ...]]] = []
    crops: list[np.ndarray] = []
    outputs = []
    last_frame = 0
    for number, image in _images(source, failures):
        last_frame = max(last_frame, number)
        for rank, (box, crop) in enumerate(_faces(image, detector)):
            rows.append((number, rank, (np.nan,) * 5 if box is None else _corners(box)))
            crops.append(crop)
        if len(crops) >= recognizer.batch_size:
            outputs.append(recognizer.run(crops, embeddings=True))
            crops = []
    if crops or not outputs:
        outputs.append(recognizer.run(crops, embeddings=True))
    logits = np.concatenate([o.logits for o in outputs])
    va = None if outputs[0].valence_arousal is None else np.concatenate([o.valence_arousal for o in outputs])
    features = VideoFeatures(
        video=source.video,
        frames=np.array([r[0] for r in rows], dtype=np.int64),
        faces=np.array([r[1] for r in rows], dtype=np.int16),
        boxes=np.array([r[2] for r in rows], dtype=np.float32).reshape(-1, 5),
        embedding=np.concatenate([o.embedding for o in outputs]).reshape(len(logits), -1),
        logits=logits,
        valence_arousal=None if va is None else np.clip(va, -1.0, 1.0),
    )
    return features, _entry(source, last_frame, None)


def _corners(box: FaceBox) -> tuple[float, ...]:
    return (box.x1, box.y1, box.x2, box.y2, box.score)


def _video_features(
    source: Source, analyzer: Analyzer, progress: Progress | None
) -> tuple[VideoFeatures, VideoEntry]:
    """A video through the analysis stream; faces of a frame ranked by detector score, with track ids."""
    reader = analyzer.open(source.path)
    fps, declared = reader.source_fps, reader.declared_frames
    frames, faces, boxes, tracks, predictions = [], [], [], [], []
    last_frame = 0
    for result in analyzer.stream(reader, progress):
        last_frame = result.index + 1
        ranked = sorted(result.faces, key=lambda face: -(face.box.score if face.box else 0.0))
        for rank, face in enumerate(ranked):
            frames.append(last_frame)
            faces.append(rank)
            boxes.append(_corners(face.box) if face.box else (np.nan,) * 5)
            tracks.append(-1 if face.track_id is None else face.track_id)
            predictions.append(face)
    config = analyzer.recognizer.config
    va = [(p.valence, p.arousal) for p in predictions]
    features = VideoFeatures(
        video=source.video,
        frames=np.array(frames, dtype=np.int64),
        faces=np.array(faces, dtype=np.int16),
        boxes=np.array(boxes, dtype=np.float32).reshape(-1, 5),
        embedding=np.array([p.embedding for p in predictions], dtype=np.float32).reshape(
            -1, config.embedding_dim
        ),
        logits=np.array([p.logits for p in predictions], dtype=np.float32).reshape(-1, config.num_classes),
        valence_arousal=np.array(va, dtype=np.float32).reshape(-1, 2) if config.has_va else None,
        tracks=np.array(tracks, dtype=np.int32),
    )
    return features, _entry(source, max(last_frame, declared), fps)


def _entry(source: Source, n_frames: int, fps: float | None) -> VideoEntry:
    return VideoEntry(
        file="",
        source=str(source.path),
        kind=source.kind,
        n_frames=n_frames,
        rows=0,
        frames_with_face=0,
        fps=fps,
    )
