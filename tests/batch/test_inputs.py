"""Inputs of a corpus run: files, folders, globs and lists of paths become tasks with unique output names."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceaffect.batch.inputs import Task, analysis_tasks, feature_tasks, named_paths, unique_names
from faceaffect.core.errors import InputError


def make_tree(root: Path) -> Path:
    """clips/ with two videos, a folder of photos and a folder of both (the files' contents do not matter
    to finding the inputs)."""
    for name in ("a/x.mp4", "a/y.MOV", "photos/1.jpg", "photos/2.png", "photos/notes.txt",
                 "mixed/z.mkv", "mixed/3.jpg", "mixed/deeper/4.jpg"):  # fmt: skip
        (root / "clips" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "clips" / name).write_bytes(b"")
    return root / "clips"


def test_a_folder_gives_each_video_and_each_folder_of_images(tmp_path: Path) -> None:
    clips = make_tree(tmp_path)
    tasks = {task.name: task for task in analysis_tasks([clips])}
    assert sorted(tasks) == ["clips/a/x", "clips/a/y", "clips/mixed", "clips/mixed/deeper", "clips/mixed/z",
                             "clips/photos"]  # fmt: skip
    assert tasks["clips/a/y"].kind == "video" and tasks["clips/a/y"].path == str(clips / "a" / "y.MOV")
    photos = tasks["clips/photos"]
    assert photos.kind == "images" and [Path(f).name for f in photos.files] == ["1.jpg", "2.png"]
    assert [Path(f).name for f in tasks["clips/mixed"].files] == ["3.jpg"]  # its sub-folder is its own input


def test_files_globs_and_lists_name_the_same_inputs_once(tmp_path: Path) -> None:
    clips = make_tree(tmp_path)
    (tmp_path / "list.txt").write_text("# videos\nclips/a/x.mp4\n\nclips/photos/1.jpg\n")
    (tmp_path / "list.csv").write_text("label,path\nhappy,clips/a/y.MOV\nsad,clips/a/x.mp4\n")
    tasks = analysis_tasks([clips / "a" / "x.mp4", str(clips / "a" / "*.MOV"), tmp_path / "list.txt",
                            tmp_path / "list.csv"])  # fmt: skip
    assert [(task.name, task.kind) for task in tasks] == [("x", "video"), ("y", "video"), ("1", "image")]
    assert all(Path(task.path).is_absolute() for task in tasks)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("missing.mp4", "no such file or folder"),
        ("clips/*.avi", "no files match"),
        ("bad.csv", "no 'path' column"),
        ("gaps.txt", "names 1 missing path"),
    ],
)
def test_what_cannot_be_found_is_one_clear_error(tmp_path: Path, item: str, message: str) -> None:
    make_tree(tmp_path)
    (tmp_path / "bad.csv").write_text("video\nclips/a/x.mp4\n")
    (tmp_path / "gaps.txt").write_text("clips/a/x.mp4\nclips/a/nothing.mp4\n")
    with pytest.raises(InputError, match=message):
        named_paths([tmp_path / item if "*" not in item else str(tmp_path / item)])


def test_names_stay_unique_and_keep_what_an_earlier_run_gave(tmp_path: Path) -> None:
    tasks = [Task("/data/one/clip.mp4", "clip", "video"), Task("/data/two/clip.mov", "clip", "video"),
             Task("/data/three/clip.mp4", "clip", "video")]  # fmt: skip
    taken = {"clip": "/data/two/clip.mov"}  # the manifest of an earlier run
    named = unique_names(tasks, taken)
    assert [task.name for task in named] == ["clip-2", "clip", "clip-3"]
    assert taken == {
        "clip": "/data/two/clip.mov",
        "clip-2": "/data/one/clip.mp4",
        "clip-3": "/data/three/clip.mp4",
    }


def test_feature_tasks_are_the_videos_the_features_command_finds(tmp_path: Path) -> None:
    clips = make_tree(tmp_path)
    for number in (1, 2):
        (clips / "frames" / f"{number:05d}.jpg").parent.mkdir(exist_ok=True)
        (clips / "frames" / f"{number:05d}.jpg").write_bytes(b"")
    tasks = {task.name: task for task in feature_tasks([clips / "a", clips / "frames"])}
    assert {name: task.kind for name, task in tasks.items()} == {
        "x": "video",
        "y": "video",
        "frames": "frames",
    }
    assert len(tasks["frames"].files) == 2
    assert Task.from_dict(tasks["frames"].to_dict()) == tasks["frames"]
