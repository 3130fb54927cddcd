"""The state of an interrupted run, kept beside its table (``t.parquet`` -> ``t.parquet.resume.json``) so that
``--resume`` continues it: which input, model, options and outputs it had, how many rows it wrote, and where
it stood after its last finished frame (:class:`~faceaffect.sink.base.Mark`: the frame, the tracker's state,
the smoothing context, the decoding faults met so far). A run that completes removes it.

>>> state_path(Path("out/t.parquet"))
PosixPath('out/t.parquet.resume.json')
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.io import atomic_path
from faceaffect.sink.base import Mark, RunInfo
from faceaffect.video.decode import InputFailure, StartAfter
from faceaffect.video.faults import DecodeReport
from faceaffect.video.tracking import TrackerState

VERSION = 1


def state_path(table: Path) -> Path:
    """Where the resume state of a run writing ``table`` is kept."""
    return table.with_name(f"{table.name}.resume.json")


def input_size(source: str) -> int | None:
    """The size in bytes of an input file (None for folders, cameras and streams)."""
    path = Path(source)
    return path.stat().st_size if path.is_file() else None


@dataclass(frozen=True)
class ResumeState:
    """What a resumed run needs to go on exactly where an interrupted one stopped."""

    source: str
    size: int | None
    kind: str
    model: str
    options: dict[str, Any]
    outputs: dict[str, str | None]
    rows: int
    embedding_rows: int
    frames: int
    mark: Mark
    report: DecodeReport | None
    failures: list[InputFailure]

    def start_after(self) -> StartAfter | int:
        """Where the input is picked up again."""
        return self.mark.start_after(self.report)

    def check(self, info: RunInfo, outputs: dict[str, str | None]) -> None:
        """A one-line FaceaffectError when this run is not the interrupted one (other input, model, options
        or outputs): its rows would not continue the table."""
        now = {"input": _resolved(info.source), "input size": input_size(info.source),
               "kind": str(info.kind), "model": info.model, **outputs}  # fmt: skip
        then = {"input": _resolved(self.source), "input size": self.size, "kind": self.kind,
                "model": self.model, **self.outputs}  # fmt: skip
        changes = [f"{name} {then[name]} -> {now[name]}" for name in now if now[name] != then.get(name)]
        changes += [
            f"option {name} {self.options.get(name)!r} -> {value!r}"
            for name, value in info.options.items()
            if self.options.get(name) != value
        ]
        if changes:
            raise FaceaffectError(
                f"cannot resume: this run differs from the interrupted one ({'; '.join(changes[:3])}); run "
                "without --resume to start again"
            )

    def save(self, table: Path) -> Path:
        """Write the state beside ``table``, atomically."""
        data = asdict(self) | {
            "version": VERSION,
            "mark": _mark_data(self.mark),
            "report": None if self.report is None else self.report.to_dict(),
            "failures": [[f.path, f.reason, f.index] for f in self.failures],
        }
        path = state_path(table)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(data), encoding="utf-8")
        return path

    @classmethod
    def load(cls, table: Path) -> ResumeState | None:
        """The state kept beside ``table`` (None when there is none)."""
        path = state_path(table)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.pop("version") != VERSION:
                raise ValueError("another version")
            return cls(
                **data
                | {
                    "mark": _mark_from(data["mark"]),
                    "report": None if data["report"] is None else DecodeReport.from_dict(data["report"]),
                    "failures": [InputFailure(*failure) for failure in data["failures"]],
                }
            )
        except (ValueError, KeyError, TypeError) as error:
            raise FaceaffectError(f"cannot resume: {path} is not a resume state ({error})") from None


def _resolved(source: str) -> str:
    path = Path(source)
    return str(path.resolve()) if path.exists() else source


def _mark_data(mark: Mark) -> dict[str, Any]:
    return {
        "index": mark.index,
        "pts": mark.pts,
        "tracker": None if mark.tracker is None else mark.tracker.to_dict(),
        "context": [[key, [[t, v.tolist()] for t, v in values.items()]] for key, values in mark.context],
    }


def _mark_from(data: dict[str, Any]) -> Mark:
    tracker = None if data["tracker"] is None else TrackerState.from_dict(data["tracker"])
    context = [(key, {int(t): v for t, v in values}) for key, values in data["context"]]
    return Mark(data["index"], data["pts"], tracker, context)  # type: ignore[arg-type]
