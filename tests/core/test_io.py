"""Atomic writing (permissions kept, a full disk in one line), early checks of output paths, file locks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from small_disk import on_small_disk

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


def test_an_overwritten_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("old")
    path.chmod(0o640)
    write_table(pd.DataFrame({"a": [1]}), path)
    assert path.stat().st_mode & 0o777 == 0o640 and path.read_text().startswith("a")


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path: Path) -> None:
    """Written for real onto a 64 KB tmpfs."""
    script = (
        "import sys, pandas as pd\n"
        "from faceaffect.core.io import write_table\n"
        "from faceaffect.core.errors import FaceaffectError\n"
        "try:\n"
        "    write_table(pd.DataFrame({'a': range(100_000)}), sys.argv[1])\n"
        "except FaceaffectError as error:\n"
        "    print(error)\n"
    )
    disk = tmp_path / "disk"
    done, left = on_small_disk(disk, [sys.executable, "-c", script, str(disk / "t.parquet")])
    assert done.stdout == f"cannot write {disk}/t.parquet: No space left on device\n", done.stderr
    assert left == []  # no partial or temporary file


def test_locked_makes_processes_take_turns(tmp_path: Path) -> None:
    """Two processes each add 1 to a counter file 50 times, reading and writing it under the lock."""
    counter = tmp_path / "counter"
    counter.write_text("0")
    script = (
        "import sys\nfrom pathlib import Path\nfrom faceaffect.core.io import locked\n"
        "path = Path(sys.argv[1])\n"
        "for _ in range(50):\n"
        "    with locked(str(path) + '.lock'):\n"
        "        value = int(path.read_text())\n"
        "        path.write_text(str(value + 1))\n"
    )
    runs = [subprocess.Popen([sys.executable, "-c", script, str(counter)]) for _ in range(2)]
    assert [run.wait(timeout=120) for run in runs] == [0, 0]
    assert counter.read_text() == "100"
