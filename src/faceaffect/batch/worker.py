"""What runs on a worker (a local process or a Ray actor): the models, loaded once, and one input at a time,
its outputs written atomically (a retried input replaces them whole, never twice or half).

A :class:`Job` says what every input gets; it and the tasks travel as JSON-like dicts, so the same worker
runs anywhere the package is installed.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceaffect.batch.inputs import Task
from faceaffect.batch.manifest import DONE, FAILED, Record
from faceaffect.core.errors import FaceaffectError, InputError
from faceaffect.options import AnalyzerOptions, RuntimeOptions
from faceaffect.video.decode import SourceKind

if TYPE_CHECKING:
    from faceaffect.analysis import Analyzer
    from faceaffect.downstream.extract import FeatureExtractor
    from faceaffect.downstream.features import FeatureStore
    from faceaffect.sink import FileSink


@dataclass(frozen=True)
class Outputs:
    """What is written per input besides the table (``table``: its suffix, .parquet, .csv or .jsonl):
    a summary table, the embeddings (.npy), the plots (a folder) and the annotated video (or images)."""

    table: str = ".parquet"
    summary: bool = False
    embeddings: bool = False
    plots: bool = False
    video: bool = False

    def table_path(self, base: Path) -> Path:
        return _suffixed(base, self.table)

    def sink(self, base: Path, kind: str) -> FileSink:
        """The files of one input (``kind``: its task's), streamed as it is analysed; an input stopped
        part-way is continued by the next try (see :class:`~faceaffect.sink.FileSink`)."""
        from faceaffect.sink import FileSink

        def asked(wanted: bool, suffix: str) -> Path | None:
            return _suffixed(base, suffix) if wanted else None

        return FileSink(
            self.table_path(base),
            summary=asked(self.summary, ".summary" + self.table),
            embeddings=asked(self.embeddings, ".embeddings.npy"),
            plots=asked(self.plots, ".plots"),
            video=asked(self.video, ".annotated" + _annotated_suffix(base, kind)),
            resume=True,
        )


def _suffixed(base: Path, suffix: str) -> Path:
    return base.with_name(base.name + suffix)


def _annotated_suffix(base: Path, kind: str) -> str:
    """An annotated video is an .mp4, an image keeps its format, a folder of images stays a folder."""
    return {"video": ".mp4", "images": ""}.get(kind, base.suffix)


EXTRACTION = {
    "detector": AnalyzerOptions.detector,
    "detect_images": False,
    "min_face_size": 32.0,
    "stride": 1,
}
"""The settings of a feature extraction, as ``faceaffect features`` has them by default."""


@dataclass(frozen=True)
class Job:
    """What every input of a run gets: ``out`` (the output folder), the model's ``runtime`` options, and
    either ``analysis`` options and ``outputs``, or, when ``features`` is set, the ``extraction`` settings
    of :class:`~faceaffect.downstream.extract.FeatureExtractor` and the store's ``storage``."""

    out: str
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    analysis: AnalyzerOptions = field(default_factory=AnalyzerOptions)
    outputs: Outputs = field(default_factory=Outputs)
    features: bool = False
    extraction: dict[str, Any] = field(default_factory=lambda: dict(EXTRACTION))
    storage: str = "parquet"

    def __post_init__(self) -> None:
        if self.outputs.embeddings and not self.analysis.embeddings:  # writing them needs them computed
            object.__setattr__(self, "analysis", self.analysis.replace(embeddings=True))

    to_dict = asdict

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return cls(
            **{
                **data,
                "runtime": RuntimeOptions.from_dict(data["runtime"]),
                "analysis": AnalyzerOptions.from_dict(data["analysis"]),
                "outputs": Outputs(**data["outputs"]),
            }
        )

    def settings(self) -> dict[str, Any]:
        """What the outputs depend on (not how fast or where they are made): kept in ``batch.json``."""
        common = {"mode": "features" if self.features else "analysis", "model": self.runtime.model}
        if self.features:
            return {**common, "storage": self.storage, **self.extraction}
        return {**common, **self.analysis.to_dict(), **asdict(self.outputs)}

    def output(self, task: Task) -> str:
        """Where the input's table (features: its feature file) lands, relative to ``out``."""
        if self.features:
            return f"features/{task.name}.{self.storage}"
        return self.outputs.table_path(Path(task.name)).as_posix()


class Worker:
    """The models of one worker, loaded once (``ready`` says whether that failed, and why), running one
    input at a time: every failure of an input becomes its record's error, never the worker's end."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.job = Job.from_dict(job)
        self.problem = ""
        try:
            self._analyzer, self._extractor, self._store = self._load()
        except FaceaffectError as error:
            self.problem = str(error)

    def _load(self) -> tuple[Analyzer | None, FeatureExtractor | None, FeatureStore | None]:
        job = self.job
        if job.features:
            from faceaffect.downstream.extract import FeatureExtractor
            from faceaffect.downstream.features import FeatureStore

            return None, FeatureExtractor(runtime=job.runtime, **job.extraction), FeatureStore.open(job.out)
        from faceaffect.analysis import Analyzer

        return Analyzer(runtime=job.runtime, options=job.analysis), None, None

    def ready(self) -> tuple[str, str]:
        """(this worker's host:pid, why its models could not be loaded or "")."""
        return self.name, self.problem

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        """Run one input (a :class:`Task` as a dict); its :class:`Record` as a dict."""
        item = Task.from_dict(task)
        record = Record(item.path, item.name, item.kind, output=self.job.output(item), worker=self.name)
        start = time.perf_counter()
        try:
            if self.problem:
                raise FaceaffectError(self.problem)
            if self._extractor is not None:
                self._extract(item, record)
            else:
                self._analyse(item, record)
            record.status = DONE
        except Exception as error:  # one bad input never stops the worker: its record says why
            record.status = FAILED
            record.error = _one_line(error)
        record.seconds = round(time.perf_counter() - start, 3)
        return record.to_dict()

    def _analyse(self, task: Task, record: Record) -> None:
        assert self._analyzer is not None
        sink = self.job.outputs.sink(Path(self.job.out) / task.name, task.kind)
        end = self._analyzer.run(_open(self._analyzer, task), sink)
        record.frames, record.faces, record.skipped = sink.frames, sink.rows, len(end.failures)

    def _extract(self, task: Task, record: Record) -> None:
        from faceaffect.downstream.extract import VideoInput

        assert self._extractor is not None and self._store is not None
        source = VideoInput(task.name, task.kind, Path(task.path), tuple(map(Path, task.files)))
        failures: list[tuple[str, str]] = []
        features, entry = self._extractor.extract(source, failures)
        if failures and len(failures) == len(source.files):
            raise InputError(f"none of the {len(failures)} images could be read")
        entry = self._store.write_file(features, entry)
        record.frames, record.faces, record.skipped = entry.n_frames, entry.rows, len(failures)
        record.entry = asdict(entry)


def _open(analyzer: Analyzer, task: Task) -> Any:
    """The frames of a task: a folder's own images (not those of its sub-folders, which are inputs of
    their own), else the file as ``faceaffect analyze`` opens it."""
    if task.kind != "images":
        return analyzer.open(task.path)
    from faceaffect.video.sources import ImageFiles

    return ImageFiles([Path(f) for f in task.files], task.path, SourceKind.IMAGES)


def _one_line(error: Exception) -> str:
    message = " ".join(str(error).split())
    return message if isinstance(error, FaceaffectError) else f"{type(error).__name__}: {message}"
