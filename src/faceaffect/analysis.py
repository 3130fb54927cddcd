"""The main job: find the faces in an image, a folder, a video or a live stream, follow them across frames,
and give each one expression probabilities, valence and arousal.

>>> import faceaffect
>>> result = faceaffect.analyze("clip.mp4", target_fps=10, smooth_seconds=0.5)  # doctest: +SKIP
>>> result.save("clip.csv"); result.plot("plots/"); result.annotate("annotated.mp4")  # doctest: +SKIP
>>> for frame in faceaffect.stream(0, max_frames=100):  # webcam 0, results as they come  # doctest: +SKIP
...     print(frame.index, [face.top_label for face in frame.faces])

Long inputs go straight to files, in flat memory, resumable when interrupted (:meth:`Analyzer.run`):

>>> from faceaffect.sink import FileSink
>>> Analyzer().run("interview.mp4", FileSink("t.parquet", summary="s.csv", video="a.mp4"))  # doctest: +SKIP
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceaffect.core.progress import Progress
from faceaffect.core.signals import deferred_interrupts
from faceaffect.core.types import FrameResult
from faceaffect.detect import create_detector
from faceaffect.detect.base import FaceDetector
from faceaffect.images import ImageLike
from faceaffect.options import AnalyzerOptions, RuntimeOptions, split_settings
from faceaffect.preprocess import crop_box
from faceaffect.recognizer import Recognizer
from faceaffect.results import AnalysisResult
from faceaffect.sink.base import Mark, RunEnd, RunInfo
from faceaffect.sink.protocol import Sink
from faceaffect.video.decode import DecodedFrame, SourceKind
from faceaffect.video.memory import keep_large_blocks_mapped
from faceaffect.video.prefetch import prefetched
from faceaffect.video.smoothing import SmoothingWindow
from faceaffect.video.sources import Source, open_source
from faceaffect.video.tracking import FrameTracker, TrackedFrame

if TYPE_CHECKING:
    from faceaffect.sink.resume import ResumeState

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
        """The frames of an input, with this analyzer's sampling (stride, target fps, frame limit) and stream
        timeouts."""
        if hasattr(source, "expected_frames"):  # already a Source
            return source
        return open_source(source, self.sampling, self.options.timeouts)

    def stream(self, source: SourceLike, progress: Progress | None = None) -> Iterator[FrameResult]:
        """Frame results as they are ready (a few frames behind the decoder; memory stays flat)."""
        for _, result in self.stream_images(source, progress):
            yield result

    def stream_images(
        self, source: SourceLike, progress: Progress | None = None
    ) -> Iterator[tuple[np.ndarray, FrameResult]]:
        """(RGB frame, result) pairs as they are ready, for live display or drawing."""
        frames = self.open(source)
        for item, result in self._pipeline(frames, self._frame_tracker(frames.kind), progress, 0):
            yield item.frame.image, result

    def run(
        self,
        source: SourceLike,
        sink: Sink,
        progress: Progress | None = None,
        on_frame: OnFrame | None = None,
    ) -> RunEnd:
        """Analyse an input into ``sink`` (e.g. :class:`~faceaffect.sink.FileSink`), frame by frame and
        smoothed when asked: each frame goes to the sink as soon as its smoothing window is complete, and
        nothing else is kept, so memory stays flat however long the input.

        When the sink continues an interrupted run (``sink.start`` returns its state), the input is picked
        up right after the last frame written, with the tracker and smoothing exactly as they were there.
        Interrupted (KeyboardInterrupt, or :class:`~faceaffect.core.signals.Interrupted` under
        ``stop_on_signals``) or stopped by an error, the sink gets the frames finished so far and the
        exception is raised again (Ctrl-C just ends a live stream). ``on_frame(image, result)`` sees each
        frame as it is ready (before smoothing); returning False ends the run there. Returns how it ended
        (faults met decoding a video, files skipped).
        """
        frames = self.open(source)
        config = self.recognizer.config
        info = RunInfo(frames.name, frames.kind, config.labels, config.name, frames.fps, config.embedding_dim,
                       self.options.result_settings())  # fmt: skip
        state = sink.start(info)
        tracker, window = self._frame_tracker(frames.kind), SmoothingWindow[Any](self.smoothing)
        stopped: BaseException | None = None
        try:
            if state is not None:
                self._resume(frames, state, tracker, window)
            for item, result in self._pipeline(frames, tracker, progress, state.frames if state else 0):
                image = item.frame.image if sink.wants_images else None  # pixels held only to be drawn
                mark = Mark(item.frame.index, item.frame.pts, item.state)
                with deferred_interrupts():
                    _write(sink, window.push(result, (image, mark)))
                if on_frame is not None and on_frame(item.frame.image, result) is False:
                    break
        except KeyboardInterrupt as error:  # Ctrl-C ends a live stream as it would end by itself
            ctrl_c = getattr(error, "signum", signal.SIGINT) == signal.SIGINT
            stopped = None if frames.kind == SourceKind.CAMERA and ctrl_c else error
        except BaseException as error:
            stopped = error
        end = RunEnd(stopped, getattr(frames, "report", None), frames.failures)
        with deferred_interrupts():
            if stopped is None:
                _write(sink, window.flush())
            sink.finish(end)
        if stopped is not None:
            raise stopped
        return end

    def analyze(
        self, source: SourceLike, progress: Progress | None = None, on_frame: OnFrame | None = None
    ) -> AnalysisResult:
        """Every frame result of an input, collected in memory (and smoothed, when asked).

        ``on_frame(image, result)`` sees each frame as it is ready (to draw or print it live); returning
        False stops the analysis there. Ctrl-C stops a live stream the same way; the result keeps what came.
        """
        collector = _Collector(self.sampling)
        self.run(source, collector, progress, on_frame)
        return collector.result

    def _resume(
        self, frames: Source, state: ResumeState, tracker: FrameTracker, window: SmoothingWindow[Any]
    ) -> None:
        """Set the pipeline where the interrupted run stood after its last written frame."""
        frames.resume(state.start_after())
        if state.mark.tracker is not None:
            tracker.restore(state.mark.tracker)
        window.restore(state.mark.context)
        frames.failures.extend(state.failures)

    def _pipeline(
        self, frames: Source, tracker: FrameTracker, progress: Progress | None, done: int
    ) -> Iterator[tuple[TrackedFrame, FrameResult]]:
        keep_large_blocks_mapped()  # per-frame buffers must not fragment the heap around what is kept
        live = frames.kind == SourceKind.CAMERA  # live: each frame as soon as tracked, not in batches
        max_frames = 1 if live else self.recognizer.batch_size
        tracked = _tracked(_counted(frames, progress, done), tracker)
        # decoding, detection and tracking run ahead on a thread while the recognizer works
        yield from self._recognize(prefetched(tracked, depth=max_frames + 1), max_frames)

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


def _counted(frames: Source, progress: Progress | None, done: int) -> Iterator[DecodedFrame]:
    if progress is None:
        yield from frames
        return
    total = frames.expected_frames()
    progress(done, total)
    for count, frame in enumerate(frames, start=done + 1):
        yield frame
        progress(count, total)


def _write(sink: Sink, done: Iterable[tuple[FrameResult, tuple[np.ndarray | None, Mark], Any]]) -> None:
    for frame, (image, mark), context in done:
        sink.write(frame, image, replace(mark, context=context))


class _Collector:
    """The sink of :meth:`Analyzer.analyze`: every frame result, in memory."""

    wants_images = False

    def __init__(self, sampling: Any) -> None:
        self.sampling = sampling

    def start(self, info: RunInfo) -> None:
        self.result = AnalysisResult(info.source, info.kind, info.labels, info.model, info.fps, self.sampling)

    def write(self, frame: FrameResult, image: np.ndarray | None, mark: Mark | None) -> None:
        self.result.frames.append(frame)

    def finish(self, end: RunEnd) -> None:
        self.result.failures.extend(end.failures)
        self.result.decode = end.report


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
