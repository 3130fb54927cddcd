"""`faceaffect serve` as a real process: jobs live in the state folder, so a restart keeps finished jobs,
takes up a running one again after a crash (or marks it failed, with the reason, after a second), and a
clean stop (SIGTERM) leaves the running job queued with its finished frames, and the restart continues it from
there to the rows of an uninterrupted run."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pandas as pd
import pytest
from conftest import Samples, ServerProcess, finished, upload, wait_for

pytestmark = pytest.mark.slow


def submit_running(url: str, samples: Samples) -> str:
    """A video job, once it has analysed some frames."""
    with httpx.Client(base_url=url, timeout=60) as client:
        job = client.post(
            "/v1/jobs", files=upload(samples.long_video), data={"options": '{"target_fps": 10}'}
        )
        wait_for(client, job.json()["id"], lambda status: status["progress"]["done"] > 0)
    return job.json()["id"]


def on_disk(state: Path, job_id: str) -> dict:
    return json.loads((state / "jobs" / job_id / "job.json").read_text())


def test_jobs_survive_crashes_and_stops(
    tmp_path: Path, samples: Samples, server_processes: Callable[..., ServerProcess]
) -> None:
    state = tmp_path / "state"
    first = server_processes(state)
    with httpx.Client(base_url=first.url, timeout=60) as client:
        photo = wait_for(
            client, client.post("/v1/jobs", files=upload(samples.two_faces)).json()["id"], finished
        )
    crashed = submit_running(first.url, samples)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    assert on_disk(state, crashed)["status"] == "running"

    second = server_processes(state)  # the crashed job is taken up again, from its first frame
    with httpx.Client(base_url=second.url, timeout=60) as client:
        resumed = wait_for(client, crashed, finished)
        assert (
            resumed["status"] == "done" and resumed["progress"]["done"] == resumed["result"]["frames"] == 155
        )
        table = client.get(f"/v1/jobs/{crashed}/table?format=jsonl").text.splitlines()
        assert len(table) == resumed["result"]["faces"] >= 150
        assert client.get(f"/v1/jobs/{photo['id']}").json() == photo  # finished jobs stay as they were
    twice = submit_running(second.url, samples)
    second.stop(signal.SIGKILL)

    third = server_processes(state)
    with httpx.Client(base_url=third.url, timeout=60) as client:
        wait_for(client, twice, lambda status: status["progress"]["done"] > 0)
    third.stop(signal.SIGKILL)

    fourth = server_processes(state)  # a job that was running at two crashes is not tried a third time
    with httpx.Client(base_url=fourth.url, timeout=60) as client:
        failed = client.get(f"/v1/jobs/{twice}").json()
        assert failed["status"] == "failed"
        assert failed["error"] == "the server stopped 2 times while this job ran; not retried"
        assert [job["status"] for job in client.get("/v1/jobs").json()["jobs"]] == ["failed", "done", "done"]
    stopped = submit_running(fourth.url, samples)
    assert fourth.stop(signal.SIGTERM) == -signal.SIGTERM  # uvicorn stops cleanly, then ends by the signal
    assert "Traceback" not in fourth.log.read_text()  # the job goes back to the queue, not counted:
    assert on_disk(state, stopped)["status"] == "queued" and on_disk(state, stopped)["interruptions"] == 0
    assert not any((state / "uploads").iterdir())
    folder = state / "jobs" / stopped  # the frames done, and how to go on
    kept = pd.read_parquet(folder / "table.parquet")
    assert 0 < kept.frame.nunique() < 155 and (folder / "table.parquet.resume.json").is_file()

    fifth = server_processes(state)
    with httpx.Client(base_url=fifth.url, timeout=60) as client:
        continued = wait_for(client, stopped, finished)
        assert continued["status"] == "done" and continued["result"]["frames"] == 155
        tables = [pd.read_parquet(state / "jobs" / job / "table.parquet") for job in (stopped, crashed)]
        pd.testing.assert_frame_equal(*tables, check_exact=False, atol=1e-5, rtol=0)
