"""Atomic writing (whole, and chunk by chunk; permissions kept, a full disk in one line), reading back in
chunks, early checks of output paths, file locks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from small_disk import on_small_disk

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.io import ArrayWriter, TableWriter, check_writable, read_table_chunks, write_table


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


def schema() -> object:
    import pyarrow as pa

    return pa.schema([("source", pa.string()), ("frame", pa.int64()), ("p", pa.float64())])


def chunk(start: int, count: int) -> pd.DataFrame:
    frames = list(range(start, start + count))
    return pd.DataFrame(
        {"source": [f"s{i % 3}" for i in frames], "frame": frames, "p": [i / 7 for i in frames]}
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_table_written_chunk_by_chunk_reads_back_whole(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"t{suffix}"
    with TableWriter(path, schema()) as table:
        table.append(chunk(0, 5))
        assert not path.exists()  # the rows wait in a temporary file beside it
        partial = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
        if suffix != ".parquet":  # flushed: a crash would keep the rows written so far
            assert (
                len(pd.read_csv(partial[0]) if suffix == ".csv" else pd.read_json(partial[0], lines=True))
                == 5
            )
        table.append(chunk(5, 0))
        table.append(chunk(5, 4))
    back = pd.concat(read_table_chunks(path, chunk_rows=3), ignore_index=True)
    pd.testing.assert_frame_equal(back, chunk(0, 9), check_dtype=False)
    assert [p.name for p in tmp_path.iterdir()] == [path.name] and table.rows == 9


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_table_continues_an_earlier_one_and_empty_tables_keep_their_columns(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"t{suffix}"
    with TableWriter(path, schema()):
        pass
    if suffix == ".jsonl":
        assert path.read_bytes() == b""
    else:
        empty = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        assert list(empty.columns) == ["source", "frame", "p"] and empty.empty
    with TableWriter(path, schema()) as first:
        first.append(chunk(0, 4))
    with TableWriter(path, schema()) as second:
        second.copy_from(path)
        second.append(chunk(4, 3))
    assert second.rows == 7
    back = pd.concat(read_table_chunks(path), ignore_index=True)
    pd.testing.assert_frame_equal(back, chunk(0, 7), check_dtype=False)


def test_a_failed_table_leaves_the_old_file(tmp_path: Path) -> None:
    path = write_table(chunk(0, 2), tmp_path / "t.parquet")
    with pytest.raises(RuntimeError), TableWriter(path, schema()) as table:
        table.append(chunk(0, 5))
        raise RuntimeError("stopped")
    assert len(pd.read_parquet(path)) == 2 and len(list(tmp_path.iterdir())) == 1


def test_a_table_to_stdout_comes_chunk_by_chunk(capsys: pytest.CaptureFixture[str]) -> None:
    table = TableWriter(None, schema())
    table.append(chunk(0, 2))
    assert capsys.readouterr().out == "source,frame,p\ns0,0,0.0\ns1,1,0.14285714285714285\n"
    table.append(chunk(2, 1))
    table.commit()
    assert capsys.readouterr().out == "s2,2,0.2857142857142857\n"
    lines = TableWriter(None, schema(), lines=True)
    lines.append(chunk(0, 1))
    lines.commit()
    assert capsys.readouterr().out == '{"source":"s0","frame":0,"p":0.0}\n'


def test_an_array_written_block_by_block(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(n, 6)).astype(np.float32) for n in (3, 0, 5)]
    with ArrayWriter(tmp_path / "e.npy") as array:
        for block in blocks[:2]:
            array.append(block)
    with ArrayWriter(tmp_path / "e.npy") as more:
        more.copy_from(tmp_path / "e.npy")
        more.append(blocks[2])
    np.testing.assert_array_equal(np.load(tmp_path / "e.npy"), np.concatenate(blocks))
    with ArrayWriter(tmp_path / "empty.npy"):
        pass
    assert np.load(tmp_path / "empty.npy").shape == (0, 0)
    with pytest.raises(FaceaffectError, match="rows of 2 values cannot follow rows of 6"):
        more = ArrayWriter(tmp_path / "x.npy")
        more.append(blocks[0])
        more.append(np.zeros((1, 2), np.float32))
    more.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.npy", "empty.npy"]
