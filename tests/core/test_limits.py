"""Resource limits: defaults, environment variables, raised for a block, and bad values in one line."""

from __future__ import annotations

import pytest

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.limits import Limits, current_limits, raised_limits


def test_defaults_environment_and_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("IMAGE_PIXELS", "DOWNLOAD_BYTES", "ARCHIVE_BYTES", "CONFIG_BYTES"):
        monkeypatch.delenv(f"FACEAFFECT_MAX_{name}", raising=False)
    assert current_limits() == Limits()
    monkeypatch.setenv("FACEAFFECT_MAX_DOWNLOAD_BYTES", "1_000")
    assert current_limits().max_download_bytes == 1000
    with raised_limits(max_download_bytes=5, max_image_pixels=None) as limits:
        assert limits.max_download_bytes == 5 and limits.max_image_pixels == Limits().max_image_pixels
        with raised_limits(max_download_bytes=7):
            assert current_limits().max_download_bytes == 7
        assert current_limits().max_download_bytes == 5
    assert current_limits().max_download_bytes == 1000  # the environment again, after the block


@pytest.mark.parametrize("value", ["0", "-3", "many", "1.5"])
def test_bad_values_are_one_line(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEAFFECT_MAX_CONFIG_BYTES", value)
    with pytest.raises(FaceaffectError, match="FACEAFFECT_MAX_CONFIG_BYTES must be a positive whole number"):
        current_limits()
    with pytest.raises(FaceaffectError, match="unknown limit 'max_pixels'"), raised_limits(max_pixels=10):
        pass
