"""Fixtures of the corpus-run tests: a few short sample clips (and a folder of frames) with their tables from
single-process ``analyze``, and a real two-node Ray cluster on 127.0.0.1, started with ``ray start`` and
stopped (every process it started) however the tests end."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sample_data import unavailable

from faceaffect.options import AnalyzerOptions

FRAMES = 6  # frames analysed per clip: the runs test the plumbing, not the analysis
CLIPS = (
    "videos/pyfeat_tests/single_face.mp4",
    "videos/fer_tests/test.mp4",
    "videos/pyfeat_tests/no_face.mp4",
    "videos/wtomin_mtl_api/utterance_1.mp4",
    "videos/afew_va_clip001/frames",  # a folder of images: one input too
)
OPTIONS = AnalyzerOptions(max_frames=FRAMES)
START_SECONDS = 90.0


@pytest.fixture(scope="session")
def clips(shared_data: Path) -> list[Path]:
    paths = [shared_data / clip for clip in CLIPS]
    missing = [path for path in paths if not path.exists()]
    if missing:
        unavailable(f"sample clip not found: {missing[0]}")
    return paths


@pytest.fixture(scope="session")
def reference_tables(clips: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """Each clip's table as ``faceaffect analyze`` writes it (same options), by absolute path."""
    from faceaffect.analysis import Analyzer
    from faceaffect.sink import FileSink

    analyzer, folder = Analyzer(options=OPTIONS), tmp_path_factory.mktemp("analyze")
    tables = {str(path): folder / f"{i}.parquet" for i, path in enumerate(clips)}
    for path, table in tables.items():
        analyzer.run(path, FileSink(table))
    return {path: pd.read_parquet(table) for path, table in tables.items()}


def assert_tables_match(out: Path, reference: dict[str, pd.DataFrame]) -> None:
    """The manifest lists each input once, done, and its table equals single-process analyze's (floats to
    1e-5: batches of other sizes); no partial file is left behind."""
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert sorted(manifest.input) == sorted(reference)
    assert list(manifest.status) == ["done"] * len(reference), manifest.error.tolist()
    for row in manifest.itertuples():
        table = pd.read_parquet(out / row.output)
        pd.testing.assert_frame_equal(table, reference[row.input], check_exact=False, atol=1e-5, rtol=0)
        assert row.frames == table.frame.nunique() or row.faces == 0
        assert row.faces == len(table)
    assert not [path for path in out.rglob("*") if path.name.endswith(".part")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ray_cli() -> str:
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.is_file() else shutil.which("ray")
    if found is None:
        unavailable("the ray command is not installed (pip install 'faceaffect[ray]')")
    return str(found)


def _start_node(arguments: list[str], log: Path) -> subprocess.Popen[bytes]:
    """One ``ray start --block`` process in a session of its own: ending it (SIGTERM) stops its node."""
    with open(log, "wb") as handle:
        return subprocess.Popen(
            [_ray_cli(), "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
             "--dashboard-agent-listen-port", str(free_port()), *arguments],
            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _stop(node: subprocess.Popen[bytes]) -> None:
    """End a node: its ``ray start`` process stops what it started; anything left in its session after
    that (started by us too) is killed."""
    if node.poll() is None:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(timeout=45)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(node.pid, signal.SIGKILL)


def _wait_for_nodes(address: str, count: int, nodes: list[subprocess.Popen[bytes]]) -> None:
    """Until ``count`` nodes are alive (the head's port answering first: Ray would wait long for it)."""
    import ray

    deadline = time.monotonic() + START_SECONDS

    def check() -> None:
        if time.monotonic() > deadline or any(node.poll() is not None for node in nodes):
            pytest.fail(f"the Ray cluster at {address} did not start {count} nodes", pytrace=False)
        time.sleep(0.5)

    host, port = address.split(":")
    while True:
        with socket.socket() as probe:
            if probe.connect_ex((host, int(port))) == 0:
                break
        check()
    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    try:
        while sum(node["Alive"] for node in ray.nodes()) < count:
            check()
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """The address of a head node and a worker node (one CPU each) on 127.0.0.1. Drivers (this process and
    those the tests start) reach it with the environment set here, before Ray is first imported: Ray reads
    its authentication mode once."""
    if importlib.util.find_spec("ray") is None:
        unavailable("ray is not installed (pip install 'faceaffect[ray]')")
    temp = Path(tempfile.mkdtemp(prefix="fa-ray-", dir="/tmp"))  # short: Ray's socket paths live here
    address = f"127.0.0.1:{free_port()}"
    nodes: list[subprocess.Popen[bytes]] = []
    environment = pytest.MonkeyPatch()  # no usage reports; Ray's token authentication with a token of its own
    for name, value in (("RAY_USAGE_STATS_ENABLED", "0"), ("RAY_AUTH_MODE", "token"),
                        ("RAY_AUTH_TOKEN", secrets.token_hex(32))):  # fmt: skip
        environment.setenv(name, value)
    try:
        nodes.append(_start_node(
            ["--head", "--port", address.split(":")[1], "--include-dashboard=false", "--disable-usage-stats",
             "--dashboard-port", str(free_port()), "--temp-dir", str(temp)],
            temp / "head.log",
        ))  # fmt: skip
        _wait_for_nodes(address, 1, nodes)
        nodes.append(_start_node(["--address", address], temp / "worker.log"))
        _wait_for_nodes(address, 2, nodes)
        yield address
    finally:
        for node in reversed(nodes):
            _stop(node)
        environment.undo()
        shutil.rmtree(temp, ignore_errors=True)
