"""The manifest of a corpus run and the settings it resumes with."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from faceaffect.batch.manifest import MANIFEST, Manifest, Record, check_settings
from faceaffect.core.errors import FaceaffectError, InputError


def test_records_are_saved_whole_and_read_back(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path)
    done = Record("/v/a.mp4", "a", "video", "done", "a.parquet", 120, 118, 0, 3.5, 1, "host:1")
    failed = Record("/v/b, odd.mp4", "b, odd", "video", "failed", "b.parquet", error='cannot "open", at all')
    manifest.update(done)
    manifest.update(failed)
    manifest.update(Record("/v/a.mp4", "a", "video", "done", "a.parquet", 120, 118, 0, 2.0, 2, "host:2"))
    manifest.save()
    again = Manifest(tmp_path).records
    assert list(again) == ["/v/a.mp4", "/v/b, odd.mp4"]
    assert again["/v/a.mp4"].attempts == 2 and again["/v/a.mp4"].worker == "host:2"
    assert again["/v/b, odd.mp4"] == failed
    assert not list(tmp_path.glob(".*part"))


def test_a_file_that_is_not_a_manifest_is_a_clear_error(tmp_path: Path) -> None:
    pd.DataFrame({"input": ["x"]}).to_csv(tmp_path / MANIFEST, index=False)
    with pytest.raises(InputError, match="not a batch manifest"):
        Manifest(tmp_path)


def test_outputs_resume_only_with_the_settings_they_were_made_with(tmp_path: Path) -> None:
    check_settings(tmp_path, {"model": "m", "target_fps": 5})
    check_settings(tmp_path, {"model": "m", "target_fps": 5})  # the same: resumes
    with pytest.raises(FaceaffectError, match=r"other settings \(target_fps differ\)"):
        check_settings(tmp_path, {"model": "m", "target_fps": 10})
