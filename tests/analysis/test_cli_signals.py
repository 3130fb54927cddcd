"""`faceaffect analyze` in real processes, stopped by real signals: a sample video interrupted halfway keeps a
valid partial table and resumes to the rows of an uninterrupted run; a stream server that never answers
ends in a clear error within the timeout, and Ctrl-C stops the wait at once."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pandas as pd
import pytest

SCRIPT = "from faceaffect.cli import main; main()"  # the entry point of the installed command


def command(*args: object) -> list[str]:
    return [sys.executable, "-c", SCRIPT, "analyze", *map(str, args)]


def outputs(folder: Path) -> list[object]:
    return ["-o", folder / "t.parquet", "--summary", folder / "s.csv", "--video", folder / "a.mp4",
            "--plots", folder / "plots"]  # fmt: skip


def frames_in(video: Path) -> int:
    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(video=0))


def stop_when_written(
    args: list[str], folder: Path, share: float, signum: int
) -> subprocess.CompletedProcess:
    """Run ``args``, and send ``signum`` once the annotated video being written (a hidden part file in
    ``folder``) has ``share`` of its finished size: the run is that far through the video."""
    whole = (folder.parent / "whole" / "a.mp4").stat().st_size
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        parts = list(folder.glob(".a.mp4.*.part"))
        if parts and parts[0].stat().st_size > share * whole:
            process.send_signal(signum)
            break
        time.sleep(0.02)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


@pytest.mark.slow
def test_signals_halfway_keep_a_valid_table_and_resume_gives_the_uninterrupted_rows(
    tiny_model: Path, shared_data: Path, tmp_path: Path
) -> None:
    video = shared_data / "videos" / "pyfeat_tests" / "WolfgangLanger_Pexels.mp4"
    settings = ["-m", tiny_model, "--target-fps", 10, "--smooth-seconds", 0.5, "-q"]
    whole = subprocess.run(command(video, *settings, *outputs(tmp_path / "whole")), capture_output=True,
                           text=True, timeout=600)  # fmt: skip
    assert whole.returncode == 0, whole.stderr
    reference = pd.read_parquet(tmp_path / "whole" / "t.parquet")
    folder = tmp_path / "stopped"
    folder.mkdir()
    args = command(video, *settings, *outputs(folder))

    stopped = stop_when_written(args, folder, 0.4, signal.SIGINT)
    assert stopped.returncode == 130, stopped.stderr
    lines = stopped.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("interrupted (SIGINT): ")
        and "--resume to continue" in lines[0]
    )
    assert not list(folder.glob(".*.part")) and (folder / "t.parquet.resume.json").is_file()
    partial = pd.read_parquet(folder / "t.parquet")
    assert 0 < len(partial) < len(reference)
    pd.testing.assert_frame_equal(partial, reference.iloc[: len(partial)])  # the finished frames, exactly
    assert pd.read_csv(folder / "s.csv").frames.sum() == len(partial)
    assert frames_in(folder / "a.mp4") == partial.frame.nunique()

    again = stop_when_written([*args, "--resume"], folder, 0.7, signal.SIGTERM)
    assert again.returncode == 143 and again.stderr.startswith("interrupted (SIGTERM): "), again.stderr
    assert len(pd.read_parquet(folder / "t.parquet")) > len(partial)

    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0 and resumed.stderr == "", resumed.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "t.parquet"), reference, atol=1e-6)
    pd.testing.assert_frame_equal(pd.read_csv(folder / "s.csv"), pd.read_csv(tmp_path / "whole" / "s.csv"))
    assert frames_in(folder / "a.mp4") == frames_in(tmp_path / "whole" / "a.mp4")
    assert sorted(p.name for p in folder.iterdir()) == ["a.mp4", "plots", "s.csv", "t.parquet"]


@pytest.fixture
def silent_server() -> Iterator[tuple[int, threading.Event]]:
    """A TCP server on 127.0.0.1 that accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    accepted, stop = threading.Event(), threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            accepted.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(5)
    server.close()
    for connection in held:
        connection.close()


@pytest.mark.parametrize("scheme", ["tcp", "http"])
def test_a_stream_that_never_answers_times_out(
    tiny_model: Path, silent_server: tuple[int, threading.Event], scheme: str
) -> None:
    port, accepted = silent_server
    url = f"{scheme}://127.0.0.1:{port}/live"
    done = subprocess.run(command(url, "-m", tiny_model, "--open-timeout", 1, "-q"), capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert accepted.is_set() and done.returncode == 1
    assert (
        done.stderr == f"error: cannot open camera {url}: no answer within 1 s (raise --open-timeout, option "
        "open_timeout)\n"
    )


def test_ctrl_c_stops_waiting_for_a_stream(
    tiny_model: Path, silent_server: tuple[int, threading.Event]
) -> None:
    port, accepted = silent_server
    args = command(f"tcp://127.0.0.1:{port}", "-m", tiny_model, "--open-timeout", 300, "-q")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert accepted.wait(120)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    start = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and time.monotonic() - start < 10, stderr
    assert stderr == "interrupted (SIGINT) before any frame was finished; nothing written\n"
