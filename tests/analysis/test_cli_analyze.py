"""`faceaffect analyze` end to end: every output, stdout, live streams, and one-line errors for bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from conftest import FRAMES
from typer.testing import CliRunner

from faceaffect.cli import app
from faceaffect.images import IMAGE_SUFFIXES

runner = CliRunner()


def run(*args: object) -> tuple[int, str, str]:
    result = runner.invoke(app, ["analyze", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_video_to_every_output(tiny_model: Path, two_face_video: Path, tmp_path: Path) -> None:
    out = {"table": tmp_path / "t.parquet", "summary": tmp_path / "s.csv", "emb": tmp_path / "e.npy",
           "video": tmp_path / "a.mp4", "plots": tmp_path / "plots"}  # fmt: skip
    options = ["-o", out["table"], "--summary", out["summary"], "--embeddings", out["emb"],
               "--video", out["video"], "--plots", out["plots"], "--smooth-seconds", "0.2", "-q"]  # fmt: skip
    code, stdout, stderr = run(two_face_video, "-m", tiny_model, *options)
    assert code == 0, stderr
    assert stdout == "" and stderr == ""  # quiet, and the table went to its file
    table = pd.read_parquet(out["table"])
    assert len(table) == 2 * FRAMES and table.track_id.nunique() == 2
    assert len(pd.read_csv(out["summary"])) == 2
    assert np.load(out["emb"]).shape == (2 * FRAMES, 512)
    with av.open(str(out["video"])) as container:
        assert sum(1 for _ in container.decode(video=0)) == FRAMES
    assert sorted(p.name for p in out["plots"].iterdir()) == ["expressions.png", "valence_arousal.png"]


def test_table_on_stdout_and_summary_on_stderr(tiny_model: Path, shared_data: Path) -> None:
    code, stdout, stderr = run(
        shared_data / "faces" / "face_recognition" / "two_people.jpg", "-m", tiny_model
    )
    assert code == 0, stderr
    table = pd.read_csv(StringIO(stdout))
    assert len(table) == 2 and list(table.track_id) == [0, 1]
    assert "summary" in stderr and "frames 1, faces 2, tracks 2" in stderr


def test_both_engines_give_the_same_table(tiny_model: Path, shared_data: Path, tmp_path: Path) -> None:
    image = shared_data / "faces" / "face_recognition" / "two_people.jpg"
    both = tmp_path / "both"
    exported = runner.invoke(app, ["export", str(tiny_model), "-o", str(both), "--torch-weights"])
    assert exported.exit_code == 0, exported.stderr
    tables = {}
    for engine in ("torch", "onnx"):
        code, stdout, stderr = run(image, "-m", both, "--engine", engine, "--threads", "1", "-q")
        assert code == 0, stderr
        tables[engine] = pd.read_csv(StringIO(stdout))
    numbers = tables["torch"].select_dtypes("number").columns
    assert len(tables["torch"]) == 2 and list(tables["onnx"].columns) == list(tables["torch"].columns)
    np.testing.assert_allclose(tables["onnx"][numbers], tables["torch"][numbers], atol=1e-4)


def test_no_face_gives_an_empty_table(tiny_model: Path, shared_data: Path, tmp_path: Path) -> None:
    code, _, stderr = run(
        shared_data / "faces" / "fer" / "no-faces.jpg", "-m", tiny_model, "-o", tmp_path / "t.csv"
    )
    assert code == 0, stderr
    table = pd.read_csv(tmp_path / "t.csv")
    assert table.empty and "valence" in table.columns and "faces 0" in stderr


def test_folder_with_bad_images(tiny_model: Path, shared_data: Path, tmp_path: Path) -> None:
    shutil.copy(shared_data / "faces" / "fer" / "justin.jpg", tmp_path / "good.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    code, stdout, stderr = run(tmp_path, "-m", tiny_model, "-q")
    assert code == 0, stderr
    assert "skipped:" in stderr and "broken.jpg" in stderr
    assert set(pd.read_csv(StringIO(stdout)).source) == {str(tmp_path / "good.jpg")}
    (tmp_path / "good.jpg").unlink()
    code, _, stderr = run(tmp_path, "-m", tiny_model, "-q")
    assert code == 1 and stderr.startswith("error: cannot read image") and stderr.count("\n") == 1


def test_live_stream_prints_json_lines_and_records(
    tiny_model: Path, two_face_video: Path, tmp_path: Path
) -> None:
    code, stdout, stderr = run(f"file://{two_face_video}", "-m", tiny_model, "--max-frames", 3, "--no-show",
                               "--video", tmp_path / "live.mkv", "-q")  # fmt: skip
    assert code == 0, stderr
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [row["frame"] for row in rows] == [0, 0, 1, 1, 2, 2]
    assert {row["track_id"] for row in rows} == {0, 1} and all(0 <= row["Neutral"] <= 1 for row in rows)
    with av.open(str(tmp_path / "live.mkv")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 3


def truncated(tmp_path: Path, video: Path) -> Path:
    data = video.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    return tmp_path / "cut.mp4"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such file or folder"),
        ("garbage", "cannot open video"),
        ("truncated", "cannot decode any frame of"),
        ("model", "unknown model 'no_such_model'"),
        ("unwritable", "is not a writable folder"),
        ("format", "unknown format '.xlsx'"),
        ("embeddings", "unknown format '.txt'"),
        ("video", "unknown format '.gif'"),
        ("camera", "cannot open camera 42"),
        ("stride", "give either a stride or a target fps"),
    ],
)
def test_user_errors_are_one_line(case: str, message: str, tiny_model: Path, two_face_video: Path,
                                  tmp_path: Path) -> None:  # fmt: skip
    (tmp_path / "garbage.mov").write_bytes(b"\x00" * 1000)
    (tmp_path / "file").write_text("a file, not a folder")
    model = ["-m", tiny_model]
    args = {
        "missing": [tmp_path / "nothing.mp4", *model],
        "garbage": [tmp_path / "garbage.mov", *model],
        "truncated": [truncated(tmp_path, two_face_video), *model],
        "model": [two_face_video, "-m", "no_such_model"],
        "unwritable": [two_face_video, *model, "-o", tmp_path / "file" / "out.csv"],
        "format": [two_face_video, *model, "-o", tmp_path / "out.xlsx"],
        "embeddings": [two_face_video, *model, "--embeddings", tmp_path / "e.txt"],
        "video": [two_face_video, *model, "--video", tmp_path / "v.gif"],
        "camera": ["42", *model],
        "stride": [two_face_video, *model, "--stride", 2, "--target-fps", 5],
    }[case]
    code, stdout, stderr = run(*args, "-q")
    assert code == 1 and stdout == ""
    assert stderr.startswith("error: ") and message in stderr and "Traceback" not in stderr
    assert stderr.count("\n") == 1 and stderr.endswith("\n")  # one line, never wrapped at the terminal width
    assert sorted(p.name for p in tmp_path.iterdir()) in (
        ["file", "garbage.mov"],
        ["cut.mp4", "file", "garbage.mov"],
    )


@pytest.mark.slow
def test_every_shared_video_and_image(tiny_model: Path, shared_data: Path, tmp_path: Path) -> None:
    videos = sorted(p for p in (shared_data / "videos").rglob("*") if p.suffix in (".mp4", ".mov"))
    images = sorted(p for p in (shared_data / "faces").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    assert len(videos) >= 10 and len(images) >= 20
    for index, path in enumerate([*videos, shared_data / "faces"]):
        table_path = tmp_path / f"{index}.csv"
        code, _, stderr = run(path, "-m", tiny_model, "-o", table_path, "--target-fps", 5, "-q")
        assert code == 0, f"{path}: {stderr}"
        table = pd.read_csv(table_path)
        assert table.empty == ("no_face" in path.name), path
    assert set(pd.read_csv(table_path).source) <= {str(p) for p in images}


def test_quiet_means_nothing_on_the_terminal(tiny_model: Path, shared_data: Path, tmp_path: Path) -> None:
    """In a real process, so that native libraries' logs on file descriptor 2 (LiteRT's) would show."""
    script = "from faceaffect.cli import app; app()"
    image = shared_data / "faces" / "face_recognition" / "two_people.jpg"
    args = ["analyze", str(image), "-m", str(tiny_model), "-o", str(tmp_path / "t.csv"), "-q"]
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stderr
    assert len(pd.read_csv(tmp_path / "t.csv")) == 2
