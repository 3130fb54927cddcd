"""Analyzer.run into a FileSink: files written as frames come, the same as the in-memory result; a run stopped
at any frame keeps every finished frame and resumes to exactly the rows of an uninterrupted run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd
import pytest
from moving_faces import moving_frames, write_video

import faceaffect
from faceaffect.analysis import Analyzer
from faceaffect.core.errors import FaceaffectError
from faceaffect.core.io import read_table_chunks
from faceaffect.recognizer import Recognizer
from faceaffect.sink import FileSink, state_path

FRAMES = 30


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 frames of two moving faces, face 0 hidden on frames 9 and 10, a key frame every 8 frames."""
    frames = moving_frames(FRAMES, hide={0: (9, 10)})
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames, fps=25, gop=8)


def outputs(folder: Path, suffix: str = ".parquet", embeddings: str = ".npy") -> dict[str, Path]:
    names = {"table": f"t{suffix}", "summary": "s.csv", "embeddings": f"e{embeddings}", "video": "a.mp4",
             "plots": "plots"}  # fmt: skip
    return {kind: folder / name for kind, name in names.items()}


def run(analyzer: Analyzer, source: Path, paths: dict[str, Path], stop_at: int | None = None,
        resume: bool = False) -> FileSink:  # fmt: skip
    """Analyse ``source`` into ``paths``; ``stop_at``: Ctrl-C when the result of that frame (or the first
    analysed one after it) comes."""

    def on_frame(image: np.ndarray, frame: Any) -> None:
        if stop_at is not None and frame.index >= stop_at:
            raise KeyboardInterrupt

    sink = FileSink(paths["table"], summary=paths["summary"], embeddings=paths["embeddings"],
                    video=paths["video"], plots=paths["plots"], resume=resume)  # fmt: skip
    analyzer.run(source, sink, on_frame=on_frame)
    return sink


def read(path: Path) -> pd.DataFrame:
    return pd.concat(read_table_chunks(path), ignore_index=True)


def video_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Frames, tracks, boxes, labels exactly; probabilities to the recognizer's batch-to-batch rounding."""
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    numbers = got.select_dtypes("number").columns
    exact = ["frame", "track_id", "x1", "y1", "x2", "y2", "interpolated", "top_label", "source"]
    pd.testing.assert_frame_equal(got[exact], want[exact], check_dtype=False)
    np.testing.assert_allclose(got[numbers].to_numpy(float), want[numbers].to_numpy(float), atol=1e-6)


@pytest.mark.parametrize(
    ("suffix", "embeddings"), [(".parquet", ".npy"), (".csv", ".parquet"), (".jsonl", ".npy")]
)
def test_files_written_as_frames_come_equal_the_in_memory_result(
    recognizer: Recognizer, clip: Path, tmp_path: Path, suffix: str, embeddings: str
) -> None:
    analyzer = Analyzer(recognizer, smooth_frames=5, embeddings=True)
    paths = outputs(tmp_path, suffix, embeddings)
    sink = run(analyzer, clip, paths)
    memory = faceaffect.analyze(clip, model=recognizer, smooth_frames=5, embeddings=True)
    same_rows(read(paths["table"]), memory.to_table())
    pd.testing.assert_frame_equal(pd.read_csv(paths["summary"]), memory.summary(), check_dtype=False)
    vectors = np.load(paths["embeddings"]) if embeddings == ".npy" else read(paths["embeddings"]).iloc[:, 3:]
    np.testing.assert_allclose(np.asarray(vectors), memory.embeddings(), atol=1e-6)
    assert video_frames(paths["video"]) == FRAMES and sink.frames == FRAMES and sink.rows == 2 * FRAMES
    assert sorted(p.name for p in paths["plots"].iterdir()) == ["expressions.png", "valence_arousal.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())


@pytest.mark.parametrize("settings", [{"smooth_frames": 5}, {"smooth_seconds": 0.3, "detect_every": 3},
                                      {"stride": 2, "max_gap": 1}, {"target_fps": 10}])  # fmt: skip
def test_a_run_stopped_at_any_frame_resumes_to_the_uninterrupted_rows(
    recognizer: Recognizer, clip: Path, tmp_path: Path, settings: dict[str, Any]
) -> None:
    analyzer = Analyzer(recognizer, embeddings=True, **settings)
    whole = outputs(tmp_path / "whole")
    run(analyzer, clip, whole)
    reference = read(whole["table"])
    for stop_at in (6, 16):
        paths = outputs(tmp_path / f"stopped{stop_at}")
        with pytest.raises(KeyboardInterrupt):
            run(analyzer, clip, paths, stop_at=stop_at)
        partial = read(paths["table"])
        done = partial.frame.max()
        assert 0 < done < reference.frame.max()  # up to the last frame whose smoothing window was full
        same_rows(partial, reference[reference.frame <= done].reset_index(drop=True))
        summary = pd.read_csv(paths["summary"])
        assert summary.frames.sum() == len(partial) and len(np.load(paths["embeddings"])) == len(partial)
        assert video_frames(paths["video"]) == partial.frame.nunique()  # face 1 is in every frame
        assert not [p for p in paths["table"].parent.iterdir() if p.name.endswith(".part")]
        state = json.loads(state_path(paths["table"]).read_text())
        assert state["rows"] == len(partial) and state["mark"]["index"] == done

        sink = run(analyzer, clip, paths, resume=True)
        assert sink.resumed is not None and not state_path(paths["table"]).exists()
        same_rows(read(paths["table"]), reference)
        np.testing.assert_allclose(np.load(paths["embeddings"]), np.load(whole["embeddings"]), atol=1e-6)
        pd.testing.assert_frame_equal(pd.read_csv(paths["summary"]), pd.read_csv(whole["summary"]), atol=1e-6)
        assert video_frames(paths["video"]) == video_frames(whole["video"])


def test_a_run_that_finished_no_frame_writes_nothing(
    recognizer: Recognizer, clip: Path, tmp_path: Path
) -> None:
    analyzer = Analyzer(recognizer, smooth_frames=9, embeddings=True)
    with pytest.raises(KeyboardInterrupt):
        run(analyzer, clip, outputs(tmp_path), stop_at=2)  # frame 0 waits for frames up to 4
    assert list(tmp_path.iterdir()) == []


def test_resuming_another_run_is_refused(recognizer: Recognizer, clip: Path, tmp_path: Path) -> None:
    paths = outputs(tmp_path)
    with pytest.raises(FaceaffectError, match="embeddings are not computed in this run"):
        run(Analyzer(recognizer), clip, paths)
    with pytest.raises(KeyboardInterrupt):
        run(Analyzer(recognizer, embeddings=True), clip, paths, stop_at=12)
    with pytest.raises(FaceaffectError, match=r"cannot resume: .*option stride 1 -> 2"):
        run(Analyzer(recognizer, embeddings=True, stride=2), clip, paths, resume=True)
    other = tmp_path / "other.mp4"
    shutil.copy(clip, other)
    with pytest.raises(FaceaffectError, match=r"cannot resume: .*input "):
        run(Analyzer(recognizer, embeddings=True), other, paths, resume=True)
    read(paths["table"]).iloc[:-1].to_parquet(paths["table"])
    with pytest.raises(FaceaffectError, match=r"holds .* rows, the interrupted run wrote"):
        run(Analyzer(recognizer, embeddings=True), clip, paths, resume=True)
    assert state_path(paths["table"]).exists()  # refused: nothing changed
    with pytest.raises(FaceaffectError, match="only a run that writes its table to a file"):
        FileSink(None, resume=True)


def test_a_folder_resumes_after_its_last_finished_image(
    recognizer: Recognizer, shared_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    faces = sorted((shared_data / "faces" / "facenet-pytorch" / "test_images_aligned").glob("*/1.png"))[:4]
    for i, path in enumerate(faces):
        shutil.copy(path, folder / f"{i}.png")
    (folder / "2b.png").write_bytes(b"broken")
    analyzer = Analyzer(recognizer, embeddings=True)
    whole = outputs(tmp_path / "whole")
    whole["video"] = tmp_path / "whole" / "drawn"
    run(analyzer, folder, whole)
    paths = outputs(tmp_path / "stopped")
    paths["video"] = tmp_path / "stopped" / "drawn"
    with pytest.raises(KeyboardInterrupt):
        run(analyzer, folder, paths, stop_at=2)
    assert sorted(read(paths["table"]).source) == [str(folder / "0.png"), str(folder / "1.png"),
                                                   str(folder / "2.png")]  # fmt: skip
    sink = run(analyzer, folder, paths, resume=True)
    same_rows(read(paths["table"]), read(whole["table"]))
    assert sorted(p.name for p in paths["video"].iterdir()) == ["0.png", "1.png", "2.png", "3.png"]
    assert sink.resumed is not None and [f.path for f in sink.resumed.failures] == []
