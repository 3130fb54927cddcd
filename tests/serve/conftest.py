"""Fixtures of the service: the app on the embedded model (in-process, or behind a real uvicorn on 127.0.0.1),
`faceaffect serve` as a real process, and the sample files. Everything started here is stopped here, even
when a test fails."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sample_data import unavailable

from faceaffect.detect.base import missing_packages
from faceaffect.serve import ServeSettings, create_app


@pytest.fixture(scope="package", autouse=True)
def _needs_blazeface() -> None:
    if missing_packages("blazeface"):
        unavailable("the default detector (BlazeFace) is not installed")


@dataclass(frozen=True)
class Samples:
    two_faces: Path  # a photo of two people
    video: Path  # 72 frames, 640x360, one face
    long_video: Path  # 464 frames, 596x336, one face


@pytest.fixture(scope="session")
def samples(shared_data: Path) -> Samples:
    return Samples(
        shared_data / "faces" / "face_recognition" / "two_people.jpg",
        shared_data / "videos" / "pyfeat_tests" / "single_face.mp4",
        shared_data / "videos" / "fer_tests" / "woman2.mp4",
    )


@pytest.fixture(scope="session")
def va_model(calibrated_model: Callable[[str], Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mbf_va_mtl with random weights (BatchNorm statistics from real crops), saved as a model folder: a
    model with valence and arousal that needs no download."""
    from faceaffect.models import save_model

    return save_model(calibrated_model("mbf_va_mtl"), tmp_path_factory.mktemp("models") / "mbf_va")


@contextmanager
def app_client(tmp_path: Path, **settings: Any) -> Iterator[TestClient]:
    """A client of the app (lifespan run: the lane is stopped at the end)."""
    with TestClient(create_app(ServeSettings(state_dir=tmp_path / "state", **settings))) as client:
        yield client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with app_client(tmp_path) as client:
        yield client


def upload(path: Path, name: str | None = None, kind: str = "application/octet-stream") -> dict[str, Any]:
    return {"file": (name or path.name, path.read_bytes(), kind)}


def wait_for(client: Any, job_id: str, until: Callable[[dict[str, Any]], bool], seconds: float = 120) -> dict:
    """Poll a job until ``until(status)`` holds (TestClient or httpx client)."""
    deadline = time.monotonic() + seconds
    while True:
        status = client.get(f"/v1/jobs/{job_id}").json()
        if until(status):
            return status
        assert time.monotonic() < deadline, f"job {job_id} still {status}"
        time.sleep(0.05)


def finished(status: dict[str, Any]) -> bool:
    return status["status"] in ("done", "failed")


@contextmanager
def uvicorn_thread(tmp_path: Path, **settings: Any) -> Iterator[str]:
    """The app behind a real uvicorn on 127.0.0.1 (a free port), in a thread of this process; its URL."""
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    app = create_app(ServeSettings(state_dir=tmp_path / "state", **settings))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped while starting"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        listener.close()


class ServerProcess:
    """`faceaffect serve` in a process of its own, on a free port of 127.0.0.1."""

    def __init__(self, state: Path, *args: str, env: dict[str, str] | None = None) -> None:
        command = [
            sys.executable,
            "-m",
            "faceaffect",
            "serve",
            "--port",
            "0",
            "--state-dir",
            str(state),
            *args,
        ]
        self.log = state.parent / f"server-{time.monotonic_ns()}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ, "COLUMNS": "200", **(env or {})})  # fmt: skip
        self.url = self._wait_for_url()

    def _wait_for_url(self, seconds: float = 120) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = re.search(r"http://127\.0\.0\.1:\d+", self.log.read_text())
            if found:
                return found.group(0)
            if self.process.poll() is not None:
                raise AssertionError(f"faceaffect serve exited: {self.log.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"faceaffect serve did not start: {self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the exit (killed after 30 s); the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def server_processes() -> Iterator[Callable[..., ServerProcess]]:
    """Start `faceaffect serve` processes; every one is stopped at the end of the test."""
    started: list[ServerProcess] = []

    def start(state: Path, *args: str, **options: Any) -> ServerProcess:
        started.append(ServerProcess(state, *args, **options))
        return started[-1]

    yield start
    for server in started:
        server.stop(signal.SIGKILL)
