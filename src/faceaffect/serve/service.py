"""The service behind the HTTP API: models loaded once, the inference lane, the jobs and their outputs.

>>> service = Service(ServeSettings(state_dir="state"))  # doctest: +SKIP
>>> with service.lane.reserve() as slot:  # doctest: +SKIP
...     answer = slot.run(lambda: service.analyze_image(Path("face.jpg"), "face.jpg")).result()
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from faceaffect.analysis import Analyzer
from faceaffect.core.errors import FaceaffectError, InputError
from faceaffect.core.io import check_writable
from faceaffect.core.types import FacePrediction
from faceaffect.detect import create_detector
from faceaffect.detect.base import FaceDetector
from faceaffect.options import AnalyzerOptions
from faceaffect.recognizer import Recognizer
from faceaffect.serve.errors import Unprocessable
from faceaffect.serve.jobs import Job, JobStore, Status
from faceaffect.serve.lane import InferenceLane, Slot
from faceaffect.serve.settings import SERVER_OPTIONS, ServeSettings
from faceaffect.serve.uploads import Upload
from faceaffect.sink import FileSink, RunEnd
from faceaffect.video.decode import SourceKind

log = logging.getLogger("faceaffect.serve")
TABLE, SUMMARY, EMBEDDINGS = "table.parquet", "summary.parquet", "embeddings.npy"


class SharedDetector:
    """A detector used from several threads (the lane's and each stream's decoding thread), one call at a
    time: the detectors are not thread-safe."""

    def __init__(self, detector: FaceDetector) -> None:
        self._detector = detector
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray, **options: Any) -> Any:
        with self._lock:
            return self._detector.detect(image, **options)

    def __getattr__(self, name: str) -> Any:  # min_score, min_face_size, coarse_min_face, ...
        return getattr(self._detector, name)


class Service:
    """Loads the model and the detector (errors here stop the server before it listens), starts the lane,
    and takes up the jobs of the state folder again."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        check_writable(settings.state_dir, folder=True)
        self.recognizer = Recognizer(options=settings.runtime)
        options = settings.analysis
        self.detector = SharedDetector(create_detector(options.detector, **options.detector_thresholds))
        self.uploads = settings.state_dir / "uploads"
        shutil.rmtree(self.uploads, ignore_errors=True)  # uploads cut short by a stop
        self.uploads.mkdir(parents=True)
        self.store = JobStore(settings.state_dir)
        self.lane = InferenceLane(settings.max_queue)
        self.closing = False
        self.runs: dict[str, JobRun] = {}
        for job in self.store.load():
            with self.lane.reserve(force=True) as slot:
                self._queue(job, slot)

    @property
    def model(self) -> str:
        return self.recognizer.config.name

    def analyzer(self, options: AnalyzerOptions) -> Analyzer:
        """An analyzer with the shared model and detector (cheap: nothing is loaded)."""
        return Analyzer(self.recognizer, self.detector, options=options)

    def job_options(self, data: dict[str, Any]) -> AnalyzerOptions:
        """The server's analysis options changed by a job's (JSON); the detector's are the server's."""
        fixed = sorted(set(data) & set(SERVER_OPTIONS))
        if fixed:
            raise Unprocessable(f"option {fixed[0]!r} is the server's (faceaffect serve --detector ...)")
        return AnalyzerOptions.from_dict({**self.settings.analysis.to_dict(), **data})

    def analyze_image(self, path: Path, name: str, embeddings: bool = False) -> dict[str, Any]:
        """The faces of one image file as JSON (runs on the lane)."""
        result = self.analyzer(self.settings.analysis.replace(embeddings=embeddings)).analyze(path)
        if result.failures:
            raise InputError(result.failures[0].reason.replace(str(path), name))
        faces = result.frames[0].faces if result.frames else ()
        return {"model": self.model, "labels": list(self.recognizer.labels),
                "faces": [face_json(face, embeddings) for face in faces]}  # fmt: skip

    def submit(self, slot: Slot, upload: Upload, kind: SourceKind, suffix: str, options: AnalyzerOptions,
               outputs: list[str]) -> Job:  # fmt: skip
        """A new job for an upload (moved into the job's folder), queued on ``slot``."""
        job_id, folder = self.store.new_folder()
        target = folder / f"input{suffix}"
        upload.path.replace(target)
        job = Job(job_id, upload.name, kind.value, str(target), options.to_dict(), outputs)
        self._queue(self.store.add(job), slot)
        return job

    def delete(self, job: Job) -> None:
        """Forget a job: taken off the queue, or stopped at its next frame when running; files removed."""
        run = self.runs.get(job.id)
        if run is not None:
            run.cancelled = True
            if self.lane.discard(run):
                self.runs.pop(job.id, None)
        self.store.remove(job)

    def close(self) -> None:
        """Stop at the next frame; the running job (with its finished frames) and the waiting ones stay
        queued for a restart."""
        self.closing = True
        self.lane.close()

    def _queue(self, job: Job, slot: Slot) -> None:
        run = JobRun(self, job)
        self.runs[job.id] = run
        slot.add(run)


class LaneClosed(Exception):
    """Raised between two frames of a job when the server closes: the job's files keep its finished frames
    and a resume state, and the restarted server continues it from there."""


class JobRun:
    """One job on the lane: its input analysed frame by frame, the results streamed into the job's folder
    as ``faceaffect analyze`` writes them (image requests run between its frames; memory stays flat however
    long the video). A job stopped by the server's closing continues after the restart where it stopped; one
    running when the server died starts again."""

    def __init__(self, service: Service, job: Job) -> None:
        self.service = service
        self.job = job
        self.store = service.store
        self.cancelled = False
        self.stopped = False  # the lane is closing

    def run(self, between: Callable[[], bool]) -> None:
        job = self.job
        if self.cancelled:
            self._finish()
            return
        self.store.save(job, status=Status.RUNNING, done=0, error=None)

        def on_frame(image: object, frame: object) -> bool:
            if not between():
                raise LaneClosed
            return not self.cancelled

        options = AnalyzerOptions.from_dict(job.options)
        try:
            sink = job_sink(job, options)
            end = self.service.analyzer(options).run(job.input, sink, self._progress, on_frame)
        except LaneClosed:
            self.stopped = True
            self._finish()
            return
        except Exception as error:  # the job fails with the reason; the server goes on
            self._finish(error)
            return
        if not self.cancelled:
            job.result = job_result(sink, end, self.service.recognizer.config.has_va)
        self._finish()

    def _progress(self, done: int, total: int | None) -> None:
        self.job.done, self.job.total = done, total

    def _finish(self, error: Exception | None = None) -> None:
        """Record how the job ended: done, failed with the reason, queued again (the lane closed), or gone."""
        job = self.job
        self.service.runs.pop(job.id, None)
        if self.cancelled:
            self.store.remove(job)
        elif error is not None:
            self.store.save(job, status=Status.FAILED, error=_reason(error, job))
        elif self.stopped:
            self.store.save(job, status=Status.QUEUED)  # the restart continues it
        else:
            self.store.save(job, status=Status.DONE, done=job.result["frames"], total=job.result["frames"])


def _reason(error: Exception, job: Job) -> str:
    """One line, with the upload's name where the library named the server's file."""
    if not isinstance(error, FaceaffectError):
        log.error("job %s failed", job.id, exc_info=error)
        return f"internal error: {type(error).__name__}: {error}".splitlines()[0]
    return (str(error).replace(job.input, job.name).splitlines() or ["failed"])[0]


def job_sink(job: Job, options: AnalyzerOptions) -> FileSink:
    """The files of a job in its folder: table and summary (Parquet), embeddings when computed, plots and the
    annotated input when asked for; rows name the input as its upload did. A job stopped part-way goes on."""
    folder, annotated = job.folder, ".mp4" if job.kind == SourceKind.VIDEO.value else ".png"
    return FileSink(
        folder / TABLE,
        summary=folder / SUMMARY,
        embeddings=folder / EMBEDDINGS if options.embeddings else None,
        plots=folder / "plots" if "plots" in job.outputs else None,
        video=folder / f"annotated{annotated}" if "annotated" in job.outputs else None,
        resume=True,
        name=job.name,
    )


def job_result(sink: FileSink, end: RunEnd, has_va: bool) -> dict[str, Any]:
    """What a finished job reports: frames, faces, tracks, frame rate, model, whether it has valence and
    arousal, and its files by what they are (``table``, ``summary``, ``embeddings``, ``plots/NAME``,
    ``annotated``), relative to its folder."""
    assert sink.table_path is not None
    folder = sink.table_path.parent
    written = [path.relative_to(folder) for path in sink.written]
    files = {_file_key(path): path.as_posix() for path in written}
    return {"frames": sink.frames, "faces": sink.rows, "tracks": len(sink.summary.table(end.report)),
            "fps": sink.info.fps, "model": sink.info.model, "has_va": has_va, "files": files}  # fmt: skip


def _file_key(path: Path) -> str:
    if path.parent.name == "plots":
        return f"plots/{path.stem}"
    return {TABLE: "table", SUMMARY: "summary", EMBEDDINGS: "embeddings"}.get(path.name, "annotated")


def face_json(face: FacePrediction, embeddings: bool) -> dict[str, Any]:
    """One face of the image endpoint: rank, box, detector score, probabilities, top label, VA, embedding."""
    box = face.box
    answer: dict[str, Any] = {
        "rank": face.track_id,
        "box": None if box is None else {"x1": box.x1, "y1": box.y1, "x2": box.x2, "y2": box.y2},
        "score": None if box is None else box.score,
        "probabilities": {label: float(p) for label, p in zip(face.labels, face.probabilities, strict=True)},
        "top_label": face.top_label,
        "valence": face.valence,
        "arousal": face.arousal,
    }
    if embeddings and face.embedding is not None:
        answer["embedding"] = [float(value) for value in face.embedding]
    return answer
