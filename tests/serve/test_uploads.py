"""Uploads over real sockets (uvicorn on 127.0.0.1): streamed with a limit, dropped when stalled, never stored
under the client's name; concurrent requests answered as if each were alone."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import Samples, finished, upload, uvicorn_thread, wait_for

from faceaffect.serve.uploads import display_name

BOUNDARY = b"xyz"
PART = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'


def test_a_stalled_upload_is_dropped_with_408(tmp_path: Path) -> None:
    with uvicorn_thread(tmp_path, upload_idle_seconds=0.5) as url:
        address = urlsplit(url)
        with socket.create_connection((address.hostname, address.port), timeout=10) as client:
            head = (b"POST /v1/jobs HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n"
                    b"Content-Type: multipart/form-data; boundary=xyz\r\n\r\n")  # fmt: skip
            client.sendall(head + PART + b"\0" * 1000)  # then nothing more
            answer = b""
            while not answer.endswith(b"}") and (chunk := client.recv(65536)):  # headers, then the body
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 ") and b"sent nothing for 0.5 s" in answer
        assert httpx.get(f"{url}/healthz").status_code == 200


def test_an_upload_cut_off_leaves_nothing_behind(tmp_path: Path) -> None:
    with uvicorn_thread(tmp_path) as url:
        address = urlsplit(url)
        uploads = tmp_path / "state" / "uploads"
        with socket.create_connection((address.hostname, address.port), timeout=10) as client:
            head = (b"POST /v1/jobs HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n"
                    b"Content-Type: multipart/form-data; boundary=xyz\r\n\r\n")  # fmt: skip
            client.sendall(head + PART + b"\0" * 5000)
            assert wait_until(lambda: any(uploads.iterdir()))  # cut off while the server writes it
        assert wait_until(lambda: not any(uploads.iterdir()))
        admitted = lambda: httpx.get(f"{url}/readyz").json()["queue"]["admitted"]  # noqa: E731
        assert wait_until(lambda: admitted() == 0)  # its place in the queue is back


def test_a_chunked_upload_is_cut_at_the_limit(tmp_path: Path) -> None:
    def body() -> Iterator[bytes]:  # 2 MB with no declared length: the limit applies as it streams in
        yield PART
        for _ in range(32):
            yield b"\0" * 65536

    with uvicorn_thread(tmp_path, max_upload_mb=0.25) as url:
        headers = {"content-type": "multipart/form-data; boundary=xyz"}
        answer = httpx.post(f"{url}/v1/jobs", content=body(), headers=headers, timeout=30)
        assert answer.status_code == 413 and "limit of 0.25 MB" in answer.json()["error"]
        assert httpx.get(f"{url}/healthz").status_code == 200
    assert not any((tmp_path / "state" / "uploads").iterdir())


@pytest.mark.parametrize(
    ("raw", "shown"),
    [("../../etc/passwd", "passwd"), ("C:\\Users\\me\\clip.mp4", "clip.mp4"), ("a\x00b\nc.jpg", "abc.jpg"),
     ("", "upload"), ("..", "upload"), ("x" * 300 + ".mp4", "x" * 200)],
)  # fmt: skip
def test_client_file_names_are_only_shown(raw: str, shown: str) -> None:
    assert display_name(raw) == shown


def test_upload_names_are_never_paths(tmp_path: Path, samples: Samples) -> None:
    with uvicorn_thread(tmp_path) as url, httpx.Client(base_url=url, timeout=60) as client:
        files = upload(samples.two_faces, name="../../../../escape.jpg")
        job = wait_for(client, client.post("/v1/jobs", files=files).json()["id"], finished)
    assert job["status"] == "done" and job["name"] == "escape.jpg"
    assert not list(tmp_path.rglob("escape*"))
    folder = tmp_path / "state" / "jobs" / job["id"]
    assert sorted(path.name for path in folder.iterdir()) == ["input.jpg", "job.json", "summary.parquet",
                                                               "table.parquet"]  # fmt: skip


@pytest.mark.slow
def test_concurrent_requests_get_their_own_answers(tmp_path: Path, shared_data: Path) -> None:
    photos = [shared_data / "faces" / "face_recognition" / name for name in ("two_people.jpg", "obama.jpg")]
    with uvicorn_thread(tmp_path) as url, httpx.Client(base_url=url, timeout=60) as client:
        alone = [client.post("/v1/images", files=upload(photo)).json() for photo in photos]
        with ThreadPoolExecutor(6) as pool:
            answers = list(
                pool.map(lambda i: client.post("/v1/images", files=upload(photos[i % 2])), range(12))
            )
    assert [answer.json() for answer in answers] == [alone[i % 2] for i in range(12)]
    assert len(alone[0]["faces"]) == 2 and len(alone[1]["faces"]) == 1


def wait_until(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()
