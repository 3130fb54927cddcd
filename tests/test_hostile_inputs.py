"""Broken, hostile and odd inputs against the real command line: every one ends with exit code 1 (2 for a
usage mistake), exactly one line on stderr and no traceback, and whatever could be done is kept. The corpus
is built here (hostile_corpus.py, hostile_configs.py). Most cases run in-process through typer's runner; a
representative set runs as real ``faceaffect`` processes, which also see warnings and stdout failures."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hostile_configs import LABEL_FILES, OUTPUTS, TRAINING_CONFIGS, billion_laughs, evil_pickle, pickle_bomb
from hostile_corpus import BROKEN_IMAGES, MODEL_FOLDERS, ODD_IMAGES, Case, Good, make_good, png_header
from PIL import Image
from small_disk import on_small_disk
from typer.testing import CliRunner

from faceaffect.cli import app

runner = CliRunner()
CASES = BROKEN_IMAGES + MODEL_FOLDERS + TRAINING_CONFIGS + LABEL_FILES + OUTPUTS


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Good:
    return make_good(tmp_path_factory.mktemp("good"), shared_data)


def assert_one_line(code: int, stderr: str, expected_code: int, says: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert code == expected_code and len(stderr.splitlines()) == 1, f"exit {code}: {stderr}"
    assert says in stderr, stderr


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_hostile_input_is_one_line(case: Case, good: Good, tmp_path: Path) -> None:
    result = runner.invoke(app, case.build(tmp_path, good), env=case.env)
    assert_one_line(result.exit_code, result.stderr, case.code, case.says)
    assert "weights_only" not in result.stderr


@pytest.mark.parametrize(("name", "make"), ODD_IMAGES, ids=[name for name, _ in ODD_IMAGES])
def test_odd_but_valid_images_are_analysed(name: str, make, good: Good, tmp_path: Path) -> None:
    path = make(tmp_path, good)
    result = runner.invoke(app, ["analyze", str(path), "-o", str(tmp_path / "t.csv"), "-q"])
    assert result.exit_code == 0 and result.stderr == "", result.stderr
    table = pd.read_csv(tmp_path / "t.csv")
    assert "valence" in table.columns and set(table.source) <= {str(path)}


def mixed_folder(folder: Path, good: Good) -> Path:
    """Two good images between a bomb, a truncated file and a text file with an image's name."""
    folder.mkdir()
    shutil.copy(good.photo, folder / "a_photo.jpg")
    shutil.copy(good.crop, folder / "d_crop.png")
    (folder / "b_bomb.png").write_bytes(png_header(65_000, 65_000))
    (folder / "c_cut.jpg").write_bytes(good.photo.read_bytes()[:2000])
    (folder / "e_text.png").write_text("not an image")
    return folder


def skipped(stderr: str, names: list[str]) -> list[str]:
    """Which of ``names`` the stderr lines report as skipped, one line each (and nothing else said)."""
    lines = stderr.splitlines()
    assert all(line.startswith("skipped: ") for line in lines) and "Traceback" not in stderr, stderr
    return [name for line in lines for name in names if name in line]


def test_a_folder_with_a_bomb_keeps_the_good_images_in_every_command(good: Good, tmp_path: Path) -> None:
    folder = mixed_folder(tmp_path / "in", good)
    bad = ["b_bomb.png", "c_cut.jpg", "e_text.png"]
    result = runner.invoke(app, ["analyze", str(folder), "-o", str(tmp_path / "a.csv"), "-q"])
    assert result.exit_code == 0 and skipped(result.stderr, bad) == bad and "65000x65000" in result.stderr
    analysed = pd.read_csv(tmp_path / "a.csv")
    assert set(analysed.source) == {str(folder / "a_photo.jpg"), str(folder / "d_crop.png")}

    result = runner.invoke(app, ["predict-crops", str(folder), "-o", str(tmp_path / "c.csv"), "-q"])
    assert result.exit_code == 0 and skipped(result.stderr, bad) == bad
    assert sorted(pd.read_csv(tmp_path / "c.csv").path) == [
        str(folder / "a_photo.jpg"),
        str(folder / "d_crop.png"),
    ]

    result = runner.invoke(app, ["features", str(folder), "-o", str(tmp_path / "store"), "-q"])
    assert result.exit_code == 0 and skipped(result.stderr, bad) == bad
    assert len(list((tmp_path / "store" / "features").glob("[ad]_*.parquet"))) == 2


@pytest.fixture(scope="module")
def training_run(tmp_path_factory: pytest.TempPathFactory, good: Good) -> Path:
    """A tiny image-folder data set and the config of a run on it (MobileFaceNet at 32 px, one epoch)."""
    root = tmp_path_factory.mktemp("training")
    for label in ("happy", "sad"):
        (root / "faces" / label).mkdir(parents=True)
        for index in range(2):
            Image.open(good.crop).resize((32, 32)).save(root / "faces" / label / f"{index}.png")
    return root


def training_config(root: Path, folder: Path, **extra: str) -> Path:
    data = root / "faces"
    lines = [
        f"data: {{kind: folder, train: {data}, val: {data}}}",
        "model: {name: mbf_va_mtl, input_size: 32}",
        "stages: [{epochs: 1, lr: 0.001}]",
        "batch_size: 2",
        "sam: false",
        "num_workers: 0",
        "tensorboard: false",
        "device: cpu",
        f"output_dir: {folder / 'run'}",
        *(f"{key}: {value}" for key, value in extra.items()),
    ]
    path = folder / "train.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("make", "says"),
    [(evil_pickle, "system, which could run code"), (pickle_bomb, "builtins.eval, which could run code"),
     (lambda p: p.write_bytes(b"\x80\x02garbage") and p, "refused by torch's weights-only loader")],
    ids=["torch pickle running os.system", "pickle calling eval", "garbage"],
)  # fmt: skip
def test_unsafe_checkpoints_are_refused_in_one_line_of_our_own(
    make, says: str, training_run: Path, tmp_path: Path
) -> None:
    evil = make(tmp_path / "evil.pt")
    config = training_config(training_run, tmp_path, init_weights=str(evil))
    result = runner.invoke(app, ["train", str(config), "-q"])
    assert_one_line(result.exit_code, result.stderr, 1, says)
    assert "weights_only" not in result.stderr
    (tmp_path / "run").mkdir(exist_ok=True)
    shutil.copy(evil, tmp_path / "run" / "last.pt")
    result = runner.invoke(app, ["train", str(training_config(training_run, tmp_path)), "--resume", "-q"])
    assert_one_line(result.exit_code, result.stderr, 1, says)
    assert "weights_only" not in result.stderr


# --- real processes ----------------------------------------------------------------------------------------


def faceaffect(*args: object, stdout: object = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "faceaffect", *map(str, args)]
    return subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300, check=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "says"),
    [(["analyze"], "Missing argument 'INPUT'"), (["analyze", "x.jpg", "--bogus"], "No such option: --bogus"),
     (["predict-crops", "x.png", "--batch-size", "0"], "Invalid value for '--batch-size'"),
     (["no-such-command"], "No such command")],
)  # fmt: skip
def test_usage_mistakes_are_one_line_and_exit_code_2(args: list[str], says: str) -> None:
    done = faceaffect(*args)
    assert_one_line(done.returncode, done.stderr, 2, says)


@pytest.mark.slow
def test_processes_keep_good_outputs_and_refuse_hostile_files_in_one_line(good: Good, tmp_path: Path) -> None:
    folder = mixed_folder(tmp_path / "in", good)
    done = faceaffect("analyze", folder, "-o", tmp_path / "t.csv", "-q")
    bad = ["b_bomb.png", "c_cut.jpg", "e_text.png"]
    assert done.returncode == 0 and skipped(done.stderr, bad) == bad
    assert pd.read_csv(tmp_path / "t.csv").source.nunique() == 2

    exif = tmp_path / "exif.jpg"
    Image.open(good.photo).save(exif, exif=b"Exif\0\0MM\0*garbage")  # Pillow warns when it reads this
    done = faceaffect("analyze", exif, "-o", tmp_path / "e.csv", "-q")
    assert done.returncode == 0 and done.stderr == "" and len(pd.read_csv(tmp_path / "e.csv")) == 2

    nan_model = shutil.copytree(good.model, tmp_path / "model")
    (nan_model / "config.json").write_text('{"format_version": 1, "mean": [NaN, 0.5, 0.5]}')
    done = faceaffect("predict-crops", good.crop, "-m", nan_model)
    assert_one_line(done.returncode, done.stderr, 1, "NaN is not a number")

    (tmp_path / "bomb.yaml").write_text(billion_laughs())
    done = faceaffect("train", tmp_path / "bomb.yaml")
    assert_one_line(done.returncode, done.stderr, 1, "aliases (*name) are not allowed")


@pytest.mark.slow
def test_a_full_disk_is_one_line_for_stdout_and_for_files(good: Good, tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        done = faceaffect("analyze", good.photo, "-q", stdout=full)
    assert_one_line(done.returncode, done.stderr, 1, "cannot write the output: No space left on device")

    disk = tmp_path / "disk"
    fill_then_run = ["sh", "-c", f'head -c 1000000 /dev/zero > {disk}/filler 2>/dev/null; exec "$@"', "sh"]
    command = [*fill_then_run, sys.executable, "-m", "faceaffect", "analyze", str(good.photo), "-q",
               "-o", str(disk / "t.parquet"), "--summary", str(disk / "s.csv")]  # fmt: skip
    done, left = on_small_disk(disk, command)
    assert_one_line(done.returncode, done.stderr, 1, "No space left on device")
    assert left == ["filler"]  # no partial table, no temporary file


@pytest.mark.slow
def test_an_annotated_video_onto_a_full_disk_is_one_line_and_keeps_the_table(
    shared_data: Path, tmp_path: Path
) -> None:
    clip = shared_data / "videos" / "face_recognition" / "short_hamilton_clip.mp4"
    disk = tmp_path / "disk"
    command = [sys.executable, "-m", "faceaffect", "analyze", str(clip), "--max-frames", "30", "-q",
               "-o", str(tmp_path / "t.csv"), "--video", str(disk / "a.mp4")]  # fmt: skip
    done, left = on_small_disk(disk, command, size="16k")
    assert_one_line(
        done.returncode, done.stderr, 1, f"cannot write {disk / 'a.mp4'}: No space left on device"
    )
    assert left == [] and len(pd.read_csv(tmp_path / "t.csv")) > 0  # the table came first and is kept
