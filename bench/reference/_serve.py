"""The side of a benchmark that runs in the reference environment (no faceaffect there): time one call on
request, so the caller can alternate our trials with the reference's under the same CPU load.

Protocol on stdin/stdout, one JSON document per line: the runner prints {"ready": ..., **info} once set up,
then answers each line "time" with {"seconds": s, **extra} for one call (``extra``: what the call returned,
when it returned a dict), and stops at "quit" or end of input.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any


def serve(call: Callable[[], Any], warmup: Callable[[], Any] | None = None, **info: Any) -> None:
    """Warm up (``warmup``, else ``call`` once), announce readiness with ``info``, then time ``call`` once
    per request."""
    (warmup or call)()
    _send({"ready": True, **info})
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command != "time":
            _send({"error": f"unknown command {command!r}"})
            continue
        start = time.perf_counter()
        extra = call()
        seconds = time.perf_counter() - start
        _send({"seconds": seconds, **(extra if isinstance(extra, dict) else {})})


def _send(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()
