"""AnalysisResult: the documented table, the summary, files in every format, embeddings and plots."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.labels import AFFECTNET_8
from faceaffect.core.types import FaceBox, FacePrediction, FrameResult
from faceaffect.results import AnalysisResult, table_columns


def prediction(track: int, top: int, valence: float | None, embedding: bool = True) -> FacePrediction:
    probabilities = np.full(8, 0.05)
    probabilities[top] = 0.65
    box = FaceBox(10.0 * track, 0, 10.0 * track + 8, 8, score=0.9)
    vector = np.full(4, float(track), np.float32) if embedding else None
    arousal = None if valence is None else -valence
    return FacePrediction(
        AFFECTNET_8, probabilities, np.log(probabilities), valence, arousal, vector, box, track
    )


def video_result(frames: int = 4, va: bool = True) -> AnalysisResult:
    """Track 0 happy (valence 0.5) in every frame, track 1 sad (valence -0.25) from frame 2."""
    results = []
    for i in range(frames):
        faces = [prediction(0, 4, 0.5 if va else None)]
        if i >= 2:
            faces.append(prediction(1, 6, -0.25 if va else None))
        results.append(FrameResult(i, i / 10, tuple(faces)))
    return AnalysisResult("clip.mp4", "video", AFFECTNET_8, "m", fps=10.0, frames=results)


def test_table_has_the_documented_columns_and_types() -> None:
    table = video_result().to_table()
    assert list(table.columns) == table_columns(AFFECTNET_8) and len(table) == 6
    assert table.dtypes["frame"] == np.int64 and table.dtypes["track_id"] == np.int64
    assert table.dtypes["interpolated"] == np.bool_ and table.dtypes["score"] == np.float64
    last = table.iloc[-1][["frame", "time", "track_id", "x1", "top_label", "valence", "arousal"]].tolist()
    assert last == [3, pytest.approx(0.3), 1, 10.0, "Sadness", -0.25, 0.25]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
@pytest.mark.parametrize("frames", [0, 4])
def test_tables_round_trip_in_every_format(tmp_path: Path, suffix: str, frames: int) -> None:
    result = video_result(frames)
    path = result.save(tmp_path / f"out{suffix}")
    read = {".csv": pd.read_csv, ".parquet": pd.read_parquet,
            ".jsonl": lambda p: pd.read_json(p, lines=True)}[suffix](path)  # fmt: skip
    if frames == 0 and suffix == ".jsonl":
        assert path.read_text() == ""  # JSON lines of no rows: an empty file
        return
    assert list(read.columns) == table_columns(AFFECTNET_8) and len(read) == 2 * frames - 2 * (frames > 0)
    if frames:
        np.testing.assert_allclose(read["Happiness"], result.to_table()["Happiness"])


def test_summary_per_track() -> None:
    summary = video_result(frames=5).summary()
    assert summary[["track_id", "frames", "dominant"]].values.tolist() == [
        [0, 5, "Happiness"],
        [1, 3, "Sadness"],
    ]
    assert summary.start.tolist() == pytest.approx([0.0, 0.2]) and summary.end.tolist() == pytest.approx(
        [0.4] * 2
    )
    assert summary.valence.tolist() == pytest.approx([0.5, -0.25])
    assert summary.dominant_probability.tolist() == pytest.approx([0.65, 0.65])


def test_models_without_valence_arousal_give_nan(tmp_path: Path) -> None:
    result = video_result(va=False)
    table = result.to_table()
    assert table.valence.isna().all() and table.arousal.isna().all() and not result.has_va
    assert result.summary().valence.isna().all()
    assert [p.name for p in result.plot(tmp_path)] == ["expressions.png"]


def test_embeddings_in_npy_and_parquet(tmp_path: Path) -> None:
    result = video_result()
    vectors = np.load(result.save_embeddings(tmp_path / "e.npy"))
    assert vectors.shape == (6, 4) and vectors[:, 0].tolist() == [0, 0, 0, 1, 0, 1]
    frame = pd.read_parquet(result.save_embeddings(tmp_path / "e.parquet"))
    assert list(frame.columns) == ["source", "frame", "track_id", "e0", "e1", "e2", "e3"]
    assert (frame.track_id == frame.e0).all()
    with pytest.raises(FaceaffectError, match=r"\.npy or \.parquet"):
        result.save_embeddings(tmp_path / "e.csv")


def test_missing_embeddings_and_bad_formats_are_clear(tmp_path: Path) -> None:
    frames = [FrameResult(0, 0.0, (prediction(0, 1, 0.1, embedding=False),))]
    result = AnalysisResult("a.mp4", "video", AFFECTNET_8, "m", frames=frames)
    with pytest.raises(FaceaffectError, match="embeddings were not computed"):
        result.embeddings()
    with pytest.raises(FaceaffectError, match="unknown table format"):
        result.save(tmp_path / "out.xlsx")
    assert not list(tmp_path.iterdir())


def test_plots_are_written(tmp_path: Path) -> None:
    paths = video_result().plot(tmp_path / "plots", image_format="png")
    assert [p.name for p in paths] == ["expressions.png", "valence_arousal.png"]
    for path in paths:
        with Image.open(path) as image:
            assert image.width > 500 and np.asarray(image.convert("L")).std() > 5
    empty = AnalysisResult("a.mp4", "video", AFFECTNET_8, "m", frames=[FrameResult(0, 0.0)])
    assert empty.plot(tmp_path / "empty")[0].is_file()


def test_images_are_not_smoothed() -> None:
    result = AnalysisResult("a.jpg", "image", AFFECTNET_8, "m", frames=[FrameResult(0, math.nan)])
    assert result.smoothed(window_frames=3) is result
