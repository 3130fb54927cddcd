"""The main job: find the faces in an image, a folder, a video or a live stream, follow them across frames,
and give each one expression probabilities, valence and arousal.

>>> import faceaffect
>>> result = faceaffect.analyze("clip.mp4", target_fps=10, smooth_seconds=0.5)  # doctest: +SKIP
>>> result.save("clip.csv"); result.plot("plots/"); result.annotate("annotated.mp4")  # doctest: +SKIP
>>> for frame in faceaffect.stream(0, max_frames=100):  # webcam 0, results as they come  # doctest: +SKIP
...     print(frame.index, [face.top_label for face in frame.faces])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceaffect.core.progress import Progress
from faceaffect.core.types import FrameResult
from faceaffect.detect import create_detector
from faceaffect.detect.base import FaceDetector
from faceaffect.images import ImageLike
from faceaffect.options import AnalyzerOptions, RuntimeOptions, split_settings
from faceaffect.preprocess import crop_box
from faceaffect.recognizer import Recognizer
from faceaffect.results import AnalysisResult
from faceaffect.video.decode import DecodedFrame, SourceKind
from faceaffect.video.prefetch import prefetched
from faceaffect.video.sources import Source, open_source
from faceaffect.video.tracking import FrameTracker, TrackedFrame

if TYPE_CHECKING:
    from faceaffect.models.multitask import MultiTaskModel

OnFrame = Callable[[np.ndarray, FrameResult], bool | None]
SourceLike = str | Path | int | ImageLike | Source


class Analyzer:
    """A configured pipeline: detector, tracker and recognizer, applied to any input.

    Args:
        model: registered name, saved model folder, ``MultiTaskModel`` or a ready ``Recognizer`` (default:
            ``runtime.model``).
        detector: detector name (see ``faceaffect.detect.list_detectors``) or a detector object (default:
            ``options.detector``).
        runtime: how the model runs (:class:`~faceaffect.options.RuntimeOptions`).
        options: how inputs are analysed (:class:`~faceaffect.options.AnalyzerOptions`).
        settings: fields of either, by name, changing them (``target_fps=10, device="cuda"``).
    """

    def __init__(
        self,
        model: str | Path | MultiTaskModel | Recognizer | None = None,
        detector: str | FaceDetector | None = None,
        *,
        runtime: RuntimeOptions | None = None,
        options: AnalyzerOptions | None = None,
        **settings: Any,
    ) -> None:
        changes = split_settings(settings, runtime or RuntimeOptions(), options or AnalyzerOptions())
        self.runtime, self.options = changes
        if isinstance(detector, str):
            self.options = self.options.replace(detector=detector)
        self.recognizer = model if isinstance(model, Recognizer) else Recognizer(model, options=self.runtime)
        self.detector = (
            create_detector(self.options.detector, **self.options.detector_thresholds)
            if detector is None or isinstance(detector, str)
            else detector
        )
        self.sampling = self.options.sampling
        self.tracking = self.options.tracking
        self.smoothing = self.options.smoothing

    def open(self, source: SourceLike) -> Source:
        """The frames of an input, with this analyzer's sampling (stride, target fps, frame limit)."""
        if hasattr(source, "expected_frames"):  # already a Source
            return source
        return open_source(source, self.sampling)

    def stream(self, source: SourceLike, progress: Progress | None = None) -> Iterator[FrameResult]:
        """Frame results as they are ready (a few frames behind the decoder; memory stays flat)."""
        for _, result in self.stream_images(source, progress):
            yield result

    def stream_images(
        self, source: SourceLike, progress: Progress | None = None
    ) -> Iterator[tuple[np.ndarray, FrameResult]]:
        """(RGB frame, result) pairs as they are ready, for live display or drawing."""
        frames = self.open(source)
        live = frames.kind == SourceKind.CAMERA  # live: each frame as soon as tracked, not in batches
        max_frames = 1 if live else self.recognizer.batch_size
        tracked = _tracked(_counted(frames, progress), self._frame_tracker(frames.kind))
        # decoding, detection and tracking run ahead on a thread while the recognizer works
        for item, result in self._recognize(prefetched(tracked, depth=max_frames + 1), max_frames):
            yield item.frame.image, result

    def analyze(
        self, source: SourceLike, progress: Progress | None = None, on_frame: OnFrame | None = None
    ) -> AnalysisResult:
        """Every frame result of an input, collected (and smoothed, when asked).

        ``on_frame(image, result)`` sees each frame as it is ready (to draw or print it live); returning
        False stops the analysis there. Ctrl-C stops a live stream the same way; the result keeps what came.
        """
        frames = self.open(source)
        config = self.recognizer.config
        result = AnalysisResult(
            frames.name, frames.kind, config.labels, config.name, frames.fps, self.sampling
        )
        try:
            for image, frame in self.stream_images(frames, progress):
                result.frames.append(frame)
                if on_frame is not None and on_frame(image, frame) is False:
                    break
        except KeyboardInterrupt:
            if frames.kind != SourceKind.CAMERA:
                raise
        result.failures.extend(frames.failures)
        return result.smoothed(**asdict(self.smoothing)) if self.smoothing.active else result

    def _frame_tracker(self, kind: SourceKind) -> FrameTracker:
        return FrameTracker(self.detector, self.tracking, track=kind in (SourceKind.VIDEO, SourceKind.CAMERA))

    def _recognize(
        self, tracked: Iterable[TrackedFrame], max_frames: int
    ) -> Iterator[tuple[TrackedFrame, FrameResult]]:
        """Faces of up to ``max_frames`` frames recognised in shared batches; frames come out in order."""
        batch: list[TrackedFrame] = []
        faces = 0
        for item in tracked:
            batch.append(item)
            faces += len(item.boxes)
            if faces >= self.recognizer.batch_size or len(batch) >= max_frames:
                yield from self._recognize_batch(batch)
                batch, faces = [], 0
        yield from self._recognize_batch(batch)

    def _recognize_batch(self, batch: list[TrackedFrame]) -> Iterator[tuple[TrackedFrame, FrameResult]]:
        crops = [
            crop_box(item.frame.image, box, self.options.margin)
            for item in batch
            for box in item.boxes.values()
        ]
        predictions = iter(self.recognizer.predict(crops, embeddings=self.options.embeddings))
        for item in batch:
            faces = tuple(
                replace(next(predictions), box=box, track_id=track_id) for track_id, box in item.boxes.items()
            )
            frame = item.frame
            yield item, FrameResult(frame.index, frame.time, faces, source=frame.source)


def _counted(frames: Source, progress: Progress | None) -> Iterator[DecodedFrame]:
    if progress is None:
        yield from frames
        return
    total = frames.expected_frames()
    progress(0, total)
    for done, frame in enumerate(frames, start=1):
        yield frame
        progress(done, total)


def _tracked(frames: Iterable[DecodedFrame], tracker: FrameTracker) -> Iterator[TrackedFrame]:
    for frame in frames:
        yield from tracker.push(frame)
    yield from tracker.flush()


def analyze(source: SourceLike, *, progress: Progress | None = None, **options: Any) -> AnalysisResult:
    """Analyse an image, a folder of images, a video file, a webcam (index), a stream (URL), or an image in
    memory (an RGB uint8 array (H, W, 3) or a PIL image).

    ``options`` are those of :class:`Analyzer`: model, detector, runtime, options, and any field of
    :class:`~faceaffect.options.RuntimeOptions` or :class:`~faceaffect.options.AnalyzerOptions` by name
    (device, stride, target_fps, detect_every, max_gap, smooth_seconds, embeddings, ...). Returns an
    :class:`AnalysisResult` with ``to_table()``, ``summary()``, ``save()``, ``plot()`` and ``annotate()``.
    """
    return Analyzer(**options).analyze(source, progress)


def stream(source: SourceLike, *, progress: Progress | None = None, **options: Any) -> Iterator[FrameResult]:
    """Like :func:`analyze`, but yields each frame's result as soon as it is ready (no smoothing)."""
    return Analyzer(**options).stream(source, progress)
