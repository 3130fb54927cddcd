"""The local engine on real clips: the tables of single-process analyze, every input once, a worker killed in
the middle of an input, a failed input run again, and a killed driver resumed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import FRAMES, OPTIONS, assert_tables_match

from faceaffect.batch import Job, PoolOptions, Record, run_batch

pytestmark = pytest.mark.slow


def kill_first_worker(killed: list[int]) -> object:
    """An ``on_record`` that kills the worker of the first record: the driver has just handed it the next
    input, so it dies in the middle of that one."""

    def on_record(record: Record) -> None:
        if not killed:
            killed.append(int(record.worker.rsplit(":", 1)[1]))
            os.kill(killed[0], signal.SIGKILL)

    return on_record


def test_tables_are_analyze_tables_and_a_killed_worker_loses_nothing(
    clips: list[Path], reference_tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    killed: list[int] = []
    report = run_batch(clips, tmp_path / "out", Job("out", analysis=OPTIONS), PoolOptions(workers=2),
                       on_record=kill_first_worker(killed))  # fmt: skip
    assert report.workers == 2 and killed
    assert sorted(record.input for record in report.records) == sorted(reference_tables)  # each input once
    assert sorted(record.attempts for record in report.records) == [1] * (len(clips) - 1) + [2]
    assert str(killed[0]) not in {record.worker.rsplit(":", 1)[1] for record in report.records[1:]}
    assert_tables_match(tmp_path / "out", reference_tables)


def test_failed_inputs_run_again_and_finished_ones_are_skipped(clips: list[Path], tmp_path: Path) -> None:
    broken = tmp_path / "in" / "broken.mp4"
    broken.parent.mkdir()
    broken.write_bytes(clips[0].read_bytes()[:20000])  # a truncated download
    inputs, out, job = [clips[0], broken], tmp_path / "out", Job("out", analysis=OPTIONS)
    first = run_batch(inputs, out, job, PoolOptions(workers=1))
    assert {record.input: record.status for record in first.records} == {str(clips[0]): "done",
                                                                         str(broken): "failed"}  # fmt: skip
    assert "broken.mp4" in first.failed[0].error and not (out / "broken.parquet").exists()
    shutil.copyfile(clips[1], broken)  # the download repaired
    second = run_batch(inputs, out, job, PoolOptions(workers=1))
    assert second.already_done == [str(clips[0])] and [r.input for r in second.done] == [str(broken)]
    manifest = pd.read_csv(out / "manifest.csv")
    assert (
        list(manifest.status) == ["done", "done"] and len(pd.read_parquet(out / "broken.parquet")) == FRAMES
    )


def run_driver(*arguments: object) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "faceaffect", "batch", *map(str, arguments), "--max-frames", str(FRAMES)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_after_first_record(
    driver: subprocess.Popen[bytes], manifest: Path, timeout: float = 300
) -> set[str]:
    """SIGKILL the driver as soon as its manifest records an input done; the inputs done by then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and driver.poll() is None:
        if manifest.is_file():
            recorded = pd.read_csv(manifest, keep_default_na=False)
            if (recorded.status == "done").any():
                driver.kill()
                driver.wait()
                return set(recorded.input[recorded.status == "done"])
        time.sleep(0.05)
    driver.kill()
    pytest.fail(f"the driver recorded no input before it ended (exit code {driver.wait()})", pytrace=False)


def assert_resumes(clips: list[Path], reference: dict[str, pd.DataFrame], out: Path, *engine: str) -> None:
    """Kill a driver after its first input, run the same command again: it skips what was recorded and
    finishes the rest, each input once."""
    recorded = kill_after_first_record(run_driver(*clips, "-o", out, *engine), out / "manifest.csv")
    assert len(recorded) < len(clips)
    before = pd.read_csv(out / "manifest.csv", keep_default_na=False).set_index("input")
    assert sorted(before.index) == sorted(reference)  # every input listed from the start, pending or done
    again = run_driver(*clips, "-o", out, *engine, "-q")
    _, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr.decode()
    assert f"{len(clips) - len(recorded)} done, 0 failed, {len(recorded)} done before" in stderr.decode()
    after = pd.read_csv(out / "manifest.csv", keep_default_na=False).set_index("input")
    assert (after.loc[sorted(recorded)] == before.loc[sorted(recorded)]).all().all()  # not run again
    assert_tables_match(out, reference)


def test_a_killed_driver_resumes(
    clips: list[Path], reference_tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    assert_resumes(clips, reference_tables, tmp_path / "out", "--workers", "2")
