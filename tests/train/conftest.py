"""Shared training fixtures."""

from __future__ import annotations

import pytest
from colour_faces import write_colour_set


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("faces")
    return {
        "kind": "csv",
        "train": str(write_colour_set(root / "train", 64, 0)),
        "val": str(write_colour_set(root / "val", 32, 1)),
    }
