"""A local HTTP server for download tests, and an environment without proxies or faceaffect settings."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class LocalServer:
    """Serves ``files[path]`` at ``url(path)``; ``requests`` lists every requested path. Paths in
    ``endless`` stream zeros until the client hangs up, with no Content-Length; ``announced`` overrides
    the Content-Length of a path."""

    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    endless: set[str] = field(default_factory=set)
    announced: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "FACEAFFECT_HOME",
        "FACEAFFECT_OFFLINE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    state = LocalServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0].lstrip("/")
            state.requests.append(path)
            if path in state.endless:
                self.stream_forever()
                return
            body = state.files.get(path)
            if body is None:
                self.send_error(404, "not found")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(state.announced.get(path, len(body))))
            self.end_headers()
            self.wfile.write(body)

        def stream_forever(self) -> None:
            self.send_response(200)
            self.end_headers()
            try:
                while True:
                    self.wfile.write(bytes(1 << 16))
            except OSError:  # the client hung up
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
