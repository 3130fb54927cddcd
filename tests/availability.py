"""What a test does when a real component it needs (sample data, a browser, a cluster, a tmpfs) is missing;
a module of its own so that helpers in any test folder can import it (``conftest`` names several modules)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

STRICT = os.environ.get("FACEAFFECT_TEST_STRICT") == "1"


def unavailable(reason: str) -> NoReturn:
    """A test's real component (sample data, a browser, a cluster) is missing: skip with the reason, or,
    where everything must run (``FACEAFFECT_TEST_STRICT=1``, as CI sets it), fail."""
    if STRICT:
        pytest.fail(f"{reason} (FACEAFFECT_TEST_STRICT=1: nothing may be skipped)", pytrace=False)
    pytest.skip(reason)
