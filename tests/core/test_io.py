"""Atomic writing and early checks of output paths."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.io import check_writable, write_table


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    path = write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # no temporary file left


def test_empty_json_lines_is_an_empty_file(tmp_path: Path) -> None:
    assert write_table(pd.DataFrame({"a": []}), tmp_path / "t.jsonl").read_bytes() == b""


def test_check_writable(tmp_path: Path) -> None:
    assert (
        check_writable(tmp_path / "new" / "deeper" / "t.parquet") == tmp_path / "new" / "deeper" / "t.parquet"
    )
    assert not (tmp_path / "new").exists()  # checking creates nothing
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder.csv").mkdir()
    cases = [(tmp_path / "t.xlsx", "unknown format"), (tmp_path / "file" / "t.csv", "not a writable"),
             (tmp_path / "folder.csv", "it is a folder")]  # fmt: skip
    for path, message in cases:
        with pytest.raises(FaceaffectError, match=message):
            check_writable(path)
    with pytest.raises(FaceaffectError, match="it is not a folder"):
        check_writable(tmp_path / "file", folder=True)
    assert check_writable(tmp_path / "plots", folder=True) == tmp_path / "plots"
