"""``faceaffect serve``: the HTTP API and the web page (extra ``faceaffect[serve]``)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Annotated

import typer

from faceaffect.cli.analyze import DetectorOption
from faceaffect.cli.common import (
    ANALYSIS,
    RUNTIME,
    BatchSizeOption,
    DeviceOption,
    EngineOption,
    ModelOption,
    OfflineOption,
    ThreadsOption,
    app,
    runtime_options,
    say,
    user_errors,
)
from faceaffect.core.errors import FaceaffectError
from faceaffect.core.extras import optional_import
from faceaffect.options import AnalyzerOptions

HostOption = Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")]
PortOption = Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free port).")]
StateOption = Annotated[
    Path | None,
    typer.Option(help="Folder of jobs and uploads, kept across restarts [default: $FACEAFFECT_HOME/serve]."),
]
UploadOption = Annotated[float, typer.Option(min=0.001, help="Largest upload, in MB.")]
QueueOption = Annotated[int, typer.Option(min=1, help="Image requests and jobs admitted at once (then 503).")]
TokenOption = Annotated[
    str | None,
    typer.Option(envvar="FACEAFFECT_SERVE_TOKEN", show_default=False,
                 help="Require this token on every request (Bearer, or Basic password)."),
]  # fmt: skip
CorsOption = Annotated[
    list[str] | None, typer.Option("--cors-origin", help="Allow calls from pages of this origin.")
]


@app.command("serve")
@user_errors
def serve_command(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    model: ModelOption = RUNTIME.model,
    detector: DetectorOption = ANALYSIS.detector,
    engine: EngineOption = RUNTIME.engine,
    device: DeviceOption = RUNTIME.device,
    threads: ThreadsOption = RUNTIME.threads,
    batch_size: BatchSizeOption = RUNTIME.batch_size,
    offline: OfflineOption = False,
    max_upload_mb: UploadOption = 1024.0,
    max_queue: QueueOption = 16,
    state_dir: StateOption = None,
    token: TokenOption = None,
    cors_origin: CorsOption = None,
) -> None:
    """Serve the API (/v1, docs at /docs) and the web page (/) until Ctrl-C."""
    optional_import("fastapi", "faceaffect serve", "serve")
    uvicorn = optional_import("uvicorn", "faceaffect serve", "serve")
    from faceaffect.serve import ServeSettings, create_app

    settings = ServeSettings(
        runtime=runtime_options(model, device, engine, threads, batch_size, offline),
        analysis=AnalyzerOptions(detector=detector),
        max_upload_mb=max_upload_mb,
        max_queue=max_queue,
        token=token,
        cors_origins=tuple(cors_origin or ()),
        **({"state_dir": state_dir} if state_dir is not None else {}),
    )
    listener = _listen(host, port)
    try:
        application = create_app(settings)
    except BaseException:
        listener.close()
        raise
    address = listener.getsockname()
    say(f"serving {application.state.service.model} on http://{_url_host(address[0])}:{address[1]}/ "
        f"(state {settings.state_dir}); Ctrl-C stops")  # fmt: skip
    if settings.token is None and not _is_loopback(host):
        say("[yellow]warning:[/yellow] listening beyond this machine without a token (--token)")
    config = uvicorn.Config(application, log_level="warning", access_log=False, timeout_graceful_shutdown=30)
    uvicorn.Server(config).run(sockets=[listener])


def _listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket (a port in use is one line, before the model is loaded). Its connections
    send without delay (TCP_NODELAY, inherited by accepted sockets): uvicorn writes an answer's headers and
    body apart, and Nagle's algorithm held the body until the client's delayed ACK, 40 ms per request."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.bind((host, port))
        listener.listen(128)
    except OSError as error:
        raise FaceaffectError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return listener


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
