"""The HTTP API (versioned under ``/v1``, OpenAPI at ``/openapi.json``, docs at ``/docs``, served offline) and
the web page at ``/``. Every error is one line of JSON, ``{"error": "..."}``, with its status code.

>>> app = create_app(ServeSettings(state_dir="state"))  # loads the model; run with uvicorn  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.extras import optional_import
from faceaffect.hub.registry import REGISTRY
from faceaffect.serve.errors import (
    Busy,
    NotFound,
    NotReady,
    RequestError,
    Unauthorized,
    Unprocessable,
    UnsupportedMedia,
    status_of,
)
from faceaffect.serve.jobs import Job, Status, parse_outputs
from faceaffect.serve.service import Service
from faceaffect.serve.settings import ServeSettings
from faceaffect.serve.uploads import FILE_FIELD, Upload, identify, receive
from faceaffect.video.decode import SourceKind

STATIC = Path(__file__).parent / "static"
TableFormat = Annotated[
    str, Query(pattern="^(csv|parquet|jsonl|json)$", description="csv, parquet, jsonl, json")
]
TABLE_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet", "jsonl": "application/jsonl",
               "json": "application/json"}  # fmt: skip
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; media-src 'self' blob:"}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": [FILE_FIELD],
            "properties": {
                FILE_FIELD: {"type": "string", "format": "binary", "description": "an image or a video"},
                "options": {"type": "string", "description": "analysis options, a JSON object: "
                            '{"target_fps": 5, "detect_every": 2, "smooth_seconds": 0.5}'},
                "outputs": {"type": "string", "description": "comma-separated: annotated, plots"},
            },
        }}},
    }
}  # fmt: skip


def create_app(settings: ServeSettings) -> FastAPI:
    """The app, with the model loaded (a FaceaffectError here is a mistake in the settings)."""
    for module in ("python_multipart", "fastapi_offline"):  # imported late; missing: one line, now
        optional_import(module, "faceaffect serve", "serve")
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        yield
        await run_in_threadpool(service.close)

    about = "Facial affect analysis: expressions, valence and arousal per face."
    app = FastAPI(title="faceaffect", version="1", description=about, docs_url=None, redoc_url=None,
                  lifespan=lifespan)  # fmt: skip
    app.state.service = service
    _errors(app)
    _pages(app)
    _api(app, service)
    app.add_middleware(TokenGate, token=settings.token)
    if settings.cors_origins:  # outside the token gate: preflight requests carry no token
        origins, methods = list(settings.cors_origins), ["GET", "POST", "DELETE"]
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=methods,
                           allow_headers=["Authorization"])  # fmt: skip
    return app


def _api(app: FastAPI, service: Service) -> None:
    settings = service.settings

    async def upload(request: Request) -> Upload:
        headers = request.headers
        try:
            return await receive(headers.get("content-type", ""), headers.get("content-length"),
                                 request.stream(), service.uploads, settings.max_upload_bytes,
                                 settings.upload_idle_seconds)  # fmt: skip
        except ClientDisconnect:
            raise RequestError("the client went away during the upload") from None

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["service"])
    async def readyz() -> JSONResponse:
        """Ready to take work: model loaded, lane running, room in the queue (else 503)."""
        lane = service.lane
        ready = lane.alive and lane.admitted < lane.capacity
        body = {"status": "ready" if ready else "busy", "model": service.model,
                "queue": {"admitted": lane.admitted, "capacity": lane.capacity}}  # fmt: skip
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/v1/models", tags=["models"])
    async def models() -> dict[str, Any]:
        """The model this server runs, and every registered model (another needs a restart with --model)."""
        config = service.recognizer.config
        return {"loaded": _model_json(config), "registered": [_model_json(c) for c in REGISTRY.values()]}

    @app.post("/v1/images", tags=["images"], openapi_extra=UPLOAD_BODY)
    async def analyze_image(request: Request, embeddings: bool = False) -> JSONResponse:
        """One image in; per face: rank, box, detector score, probabilities, top label, valence and arousal
        (null for models without them), and the embedding with ``?embeddings=true``."""
        with service.lane.reserve() as slot:
            received = await upload(request)
            path = received.path
            try:
                kind, suffix = await run_in_threadpool(identify, received)
                if kind != SourceKind.IMAGE:
                    raise UnsupportedMedia(f"{received.name} is a video: send it to /v1/jobs")
                path = path.replace(path.with_suffix(suffix))
                work = slot.run(lambda: service.analyze_image(path, received.name, embeddings))
                answer = await asyncio.wrap_future(work)
            finally:
                path.unlink(missing_ok=True)
        return JSONResponse(answer)

    @app.post("/v1/jobs", tags=["jobs"], status_code=202, openapi_extra=UPLOAD_BODY)
    async def create_job(request: Request) -> JSONResponse:
        """A video (or an image) to analyse in the background: 202 with the job; poll ``/v1/jobs/{id}``."""
        with service.lane.reserve() as slot:
            received = await upload(request)
            try:
                options = service.job_options(_json_object(received.fields.get("options"), "options"))
                outputs = parse_outputs(received.fields.get("outputs"))
                kind, suffix = await run_in_threadpool(lambda: identify(received, decode=True))
                job = service.submit(slot, received, kind, suffix, options, outputs)
            finally:
                received.path.unlink(missing_ok=True)
        return JSONResponse(_job_json(job), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    @app.get("/v1/jobs", tags=["jobs"])
    async def list_jobs() -> dict[str, Any]:
        """Every job, newest first."""
        return {"jobs": [_job_json(job) for job in service.store.all()]}

    @app.get("/v1/jobs/{job_id}", tags=["jobs"])
    async def job_status(job_id: str) -> dict[str, Any]:
        """Status (queued, running, done, failed), progress (frames done / total), error, result, links."""
        return _job_json(service.store.get(job_id))

    @app.delete("/v1/jobs/{job_id}", tags=["jobs"], status_code=204)
    async def delete_job(job_id: str) -> Response:
        """Stop the job if it runs, and delete it with its files."""
        await run_in_threadpool(service.delete, service.store.get(job_id))
        return Response(status_code=204)

    @app.get("/v1/jobs/{job_id}/table", tags=["jobs"])
    async def job_table(job_id: str, format: TableFormat = "csv") -> Response:
        """One row per (frame, face): the table of ``faceaffect analyze``."""
        return await _table(_output(service, job_id, "table"), format)

    @app.get("/v1/jobs/{job_id}/summary", tags=["jobs"])
    async def job_summary(job_id: str, format: TableFormat = "csv") -> Response:
        """One row per track: frames, time span, dominant expression, mean valence and arousal."""
        return await _table(_output(service, job_id, "summary"), format)

    @app.get("/v1/jobs/{job_id}/embeddings", tags=["jobs"])
    async def job_embeddings(job_id: str) -> FileResponse:
        """One embedding per table row (.npy), for jobs run with the option ``embeddings``."""
        path = _output(service, job_id, "embeddings")
        return FileResponse(path, media_type="application/octet-stream", filename=_download_name(path))

    @app.get("/v1/jobs/{job_id}/annotated", tags=["jobs"])
    async def job_annotated(job_id: str) -> FileResponse:
        """The input with boxes, labels and valence-arousal markers: H.264 mp4 for videos, PNG for images."""
        path = _output(service, job_id, "annotated")
        return FileResponse(path, filename=_download_name(path))

    @app.get("/v1/jobs/{job_id}/plots/{name}", tags=["jobs"])
    async def job_plot(job_id: str, name: str) -> FileResponse:
        """``expressions`` (probabilities over time), ``valence_arousal`` (circumplex; models with VA)."""
        return FileResponse(_output(service, job_id, f"plots/{name}"), media_type="image/png")


def _output(service: Service, job_id: str, name: str) -> Path:
    """The file of output ``name`` of a finished job; 409 while it runs, 404 when it was not made."""
    job = service.store.get(job_id)
    if job.status != Status.DONE:
        raise NotReady(f"job {job_id} is {job.status.value}" + (f": {job.error}" if job.error else ""))
    files = (job.result or {}).get("files", {})
    if name not in files or not (job.folder / files[name]).is_file():
        raise NotFound(f"job {job_id} has no {name} (not asked for, or not made for this model or input)")
    return job.folder / files[name]


async def _table(stored: Path, format: str) -> Response:
    """A stored Parquet table in the format asked for (converted once, atomically, then served as a file)."""
    if format == "parquet":
        return FileResponse(stored, media_type=TABLE_TYPES[format], filename=_download_name(stored))

    def convert() -> Path | bytes:
        import pandas as pd

        from faceaffect.core.io import write_table

        table = pd.read_parquet(stored)
        if format == "json":
            return table.to_json(orient="records").encode()
        target = stored.with_suffix(f".{format}")
        return target if target.exists() else write_table(table, target)

    converted = await run_in_threadpool(convert)
    if isinstance(converted, bytes):
        return Response(converted, media_type=TABLE_TYPES[format])
    return FileResponse(converted, media_type=TABLE_TYPES[format], filename=_download_name(converted))


def _download_name(path: Path) -> str:
    """``table-JOBID.csv``: our own names, never the client's, in response headers."""
    return f"{path.stem}-{path.parent.name}{path.suffix}"


def _job_json(job: Job) -> dict[str, Any]:
    links = {"self": f"/v1/jobs/{job.id}"}
    for name in (job.result or {}).get("files", []):
        links[name] = f"/v1/jobs/{job.id}/{name}"
    return {**job.public(), "links": links}


def _model_json(config: Any) -> dict[str, Any]:
    return {"name": config.name, "labels": list(config.labels), "has_va": config.has_va,
            "input_size": config.input_size, "embedding_dim": config.embedding_dim}  # fmt: skip


def _json_object(text: str | None, what: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as error:
        raise Unprocessable(f"{what} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise Unprocessable(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _pages(app: FastAPI) -> None:
    docs_assets = Path(optional_import("fastapi_offline", "the API docs", "serve").__file__).parent / "static"
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=docs_assets), name="docs-assets")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="faceaffect API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon.png")  # fmt: skip


def _errors(app: FastAPI) -> None:
    def answer(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        line = " ".join(message.split()) or "error"
        return JSONResponse({"error": line}, status_code=status, headers=headers)

    @app.exception_handler(FaceaffectError)
    async def library_error(request: Request, error: FaceaffectError) -> JSONResponse:
        headers = {"Retry-After": str(Busy.retry_after)} if isinstance(error, Busy) else None
        return answer(status_of(error), str(error), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "path"))
        return answer(422, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return answer(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> JSONResponse:
        return answer(500, f"internal error: {type(error).__name__}")


class TokenGate:
    """Every request needs the token when one is set: ``Authorization: Bearer TOKEN``, or HTTP Basic with the
    token as password (what a browser sends after its login prompt, for the page, its images and videos)."""

    def __init__(self, app: Callable[..., Awaitable[None]], token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.token is not None and scope["type"] == "http" and not self._allowed(scope):
            error = Unauthorized("a token is needed: Authorization: Bearer TOKEN (or as Basic password)")
            response = JSONResponse({"error": str(error)}, status_code=error.status,
                                    headers={"WWW-Authenticate": 'Basic realm="faceaffect"'})  # fmt: skip
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: dict[str, Any]) -> bool:
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, value = header.partition(b" ")
        if scheme.lower() == b"basic":
            try:
                value = base64.b64decode(value.strip(), validate=True).partition(b":")[2]
            except (binascii.Error, ValueError):
                return False
        elif scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(value.strip(), self.token or b"")
