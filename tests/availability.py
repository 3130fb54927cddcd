"""What a test does when a real component it needs (sample data, a browser, a cluster) is missing: skip,
or fail where everything must run. A module of its own so that tests in sub-folders, whose own conftest.py
shadows the top one's name, can import it: ``from availability import unavailable``."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

STRICT = os.environ.get("FACEAFFECT_TEST_STRICT") == "1"


def unavailable(reason: str) -> NoReturn:
    """A test's real component is missing: skip with the reason, or, where everything must run
    (``FACEAFFECT_TEST_STRICT=1``, as CI sets it), fail."""
    if STRICT:
        pytest.fail(f"{reason} (FACEAFFECT_TEST_STRICT=1: nothing may be skipped)", pytrace=False)
    pytest.skip(reason)
