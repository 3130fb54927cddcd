"""What a corpus run sends its workers: a Job as JSON, and the settings its outputs depend on."""

from __future__ import annotations

import json

from faceaffect.batch import Job, Outputs
from faceaffect.batch.inputs import Task
from faceaffect.options import AnalyzerOptions, RuntimeOptions


def test_a_job_travels_as_json_and_comes_back_equal() -> None:
    job = Job("/out", RuntimeOptions(batch_size=8, cores=1), AnalyzerOptions(target_fps=5.0),
              Outputs(".csv", summary=True, video=True))  # fmt: skip
    assert Job.from_dict(json.loads(json.dumps(job.to_dict()))) == job


def test_writing_embeddings_computes_them() -> None:
    assert Job("/out", outputs=Outputs(embeddings=True)).analysis.embeddings


def test_settings_are_what_the_outputs_depend_on() -> None:
    fast, slow = Job("/a", RuntimeOptions(threads=2, cores=4)), Job("/b", RuntimeOptions(device="auto"))
    assert fast.settings() == slow.settings()  # where and how fast: not part of them
    assert Job("/a", analysis=AnalyzerOptions(stride=2)).settings() != fast.settings()
    assert Job("/a", features=True).settings()["stride"] == 1
    assert Job("/a").output(Task("/v/clips/a.mp4", "clips/a", "video")) == "clips/a.parquet"
    assert Job("/a", features=True).output(Task("/v/clips/a.mp4", "a", "video")) == "features/a.parquet"
