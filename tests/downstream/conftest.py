"""Fixtures of the downstream tests: one synthetic Aff-Wild2-style dataset shared by the package."""

from __future__ import annotations

import pytest
from synthetic_abaw import Synthetic, make_dataset


@pytest.fixture(scope="package")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    return make_dataset(tmp_path_factory.mktemp("abaw"))
