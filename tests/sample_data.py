"""Where the tests find the real sample data, and what they do when a real component is missing.

``FACEAFFECT_TEST_DATA`` names the data folder (default: ../shared/data beside the checkout);
``FACEAFFECT_TEST_STRICT=1`` (CI) turns every would-be skip into a failure. Test modules and helpers import
these from here; tests take the folder through the ``shared_data`` fixture of conftest.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

SHARED_DATA = Path(
    os.environ.get("FACEAFFECT_TEST_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
).resolve()
STRICT = os.environ.get("FACEAFFECT_TEST_STRICT") == "1"


def unavailable(reason: str) -> NoReturn:
    """A test's real component (sample data, a detector, a program) is missing: skip with the reason, or,
    where everything must run (``FACEAFFECT_TEST_STRICT=1``, as CI sets it), fail."""
    if STRICT:
        pytest.fail(f"{reason} (FACEAFFECT_TEST_STRICT=1: nothing may be skipped)", pytrace=False)
    pytest.skip(reason)


def sample_file(relative: str) -> Path:
    """``SHARED_DATA / relative``, which must exist (else :func:`unavailable`)."""
    path = SHARED_DATA / relative
    if not path.exists():
        unavailable(f"sample data not found: {path} (set FACEAFFECT_TEST_DATA)")
    return path
