"""The Ray engine on a real two-node cluster (``ray start`` head and worker on 127.0.0.1): the tables of
single-process analyze, every input once, an actor's process killed in the middle of an input, and a
killed driver resumed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import OPTIONS, assert_tables_match
from test_local import assert_resumes, kill_first_worker

from faceaffect.batch import Job, PoolOptions, run_batch

pytestmark = pytest.mark.slow


def test_tables_are_analyze_tables_and_a_killed_actor_loses_nothing(
    ray_cluster: str, clips: list[Path], reference_tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    killed: list[int] = []
    pool = PoolOptions(engine="ray", address=ray_cluster)
    report = run_batch(clips, tmp_path / "out", Job("out", analysis=OPTIONS), pool,
                       on_record=kill_first_worker(killed))  # fmt: skip
    assert report.workers == 2 and killed  # one actor per node: each has one CPU
    assert sorted(record.input for record in report.records) == sorted(reference_tables)  # each input once
    assert sorted(record.attempts for record in report.records) == [1] * (len(clips) - 1) + [2]
    assert len({record.worker for record in report.records}) == 3  # the killed actor was replaced
    assert_tables_match(tmp_path / "out", reference_tables)


def test_a_killed_driver_resumes_on_the_cluster(
    ray_cluster: str, clips: list[Path], reference_tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    assert_resumes(clips, reference_tables, tmp_path / "out", "--engine", "ray", "--address", ray_cluster)
