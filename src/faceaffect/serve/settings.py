"""The service's own settings and their defaults (those of the analysis stay in faceaffect.options)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from faceaffect.core.errors import FaceaffectError
from faceaffect.hub.cache import default_cache_dir
from faceaffect.options import AnalyzerOptions, RuntimeOptions

TOKEN_VARIABLE = "FACEAFFECT_SERVE_TOKEN"
SERVER_OPTIONS = ("detector", "min_score", "min_face_size")  # one detector per process: not set per job


def default_state_dir() -> Path:
    """``$FACEAFFECT_HOME/serve`` (default ``~/.cache/faceaffect/serve``)."""
    return default_cache_dir() / "serve"


@dataclass(frozen=True)
class ServeSettings:
    """How the service runs.

    ``runtime``: the model and how it runs; ``analysis``: the detector and the defaults of every job (a job
    changes any option but those of :data:`SERVER_OPTIONS`). ``state_dir``: jobs and uploads.
    ``max_upload_mb``: the largest upload. ``max_queue``: image requests and jobs admitted at once (waiting or
    running; the next gets 503). ``token``: required on every request when set (default:
    ``$FACEAFFECT_SERVE_TOKEN``). ``cors_origins``: origins allowed to call from other pages (none: CORS off).
    ``upload_idle_seconds``: an upload that sends nothing for this long is dropped (408).
    """

    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    analysis: AnalyzerOptions = field(default_factory=AnalyzerOptions)
    state_dir: Path = field(default_factory=default_state_dir)
    max_upload_mb: float = 1024.0
    max_queue: int = 16
    token: str | None = field(default_factory=lambda: os.environ.get(TOKEN_VARIABLE) or None)
    cors_origins: tuple[str, ...] = ()
    upload_idle_seconds: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_dir", Path(self.state_dir).expanduser())
        if self.max_upload_mb <= 0:
            raise FaceaffectError(f"max upload must be positive, got {self.max_upload_mb} MB")
        if self.max_queue < 1:
            raise FaceaffectError(f"max queue must be at least 1, got {self.max_queue}")
        if self.token is not None and not self.token.strip():
            raise FaceaffectError("the token is empty")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
