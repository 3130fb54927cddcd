"""The feature store and extraction: columnar files keyed by video and frame, manifest, resume."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from synthetic_abaw import MODEL

import faceaffect
from faceaffect.core.errors import FaceaffectError, InputError
from faceaffect.downstream.extract import discover_sources, extract_features
from faceaffect.downstream.features import FeatureStore, VideoEntry, VideoFeatures, model_info
from faceaffect.hub.registry import get_config
from faceaffect.models import create_model, save_model
from faceaffect.options import RuntimeOptions
from faceaffect.recognizer import Recognizer


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = get_config("mbf_va_mtl").replace(name="tiny_mbf", input_size=48)
    return save_model(create_model(config), tmp_path_factory.mktemp("model") / "tiny_mbf")


def features(video: str, rows: int, rng: np.random.Generator, tracks: bool = False) -> VideoFeatures:
    return VideoFeatures(
        video,
        rng.permutation(np.arange(1, rows + 1)),
        rng.integers(0, 2, rows).astype(np.int16),
        rng.normal(size=(rows, 5)).astype(np.float32),
        rng.normal(size=(rows, MODEL["embedding_dim"])).astype(np.float32),
        rng.normal(size=(rows, 8)).astype(np.float32),
        rng.normal(size=(rows, 2)).astype(np.float32),
        rng.integers(0, 3, rows).astype(np.int32) if tracks else None,
    )


@pytest.mark.parametrize("storage", ["parquet", "npz"])
def test_store_round_trip(tmp_path: Path, storage: str) -> None:
    rng = np.random.default_rng(0)
    store = FeatureStore.create(tmp_path / "store", MODEL, storage, {"stride": 1})
    written = features("clip_left", 30, rng, tracks=True)
    store.write(
        written, VideoEntry("", "clip.mp4", "video", n_frames=40, rows=0, frames_with_face=0, fps=25.0)
    )
    store.write(features("empty", 0, rng), VideoEntry("", "x", "frames", 0, 0, 0))
    reopened = FeatureStore.open(tmp_path / "store")
    assert list(reopened) == ["clip_left", "empty"] and reopened.videos["clip_left"].rows == 30
    assert (tmp_path / "store" / "features" / f"clip_left.{storage}").is_file()
    read = reopened.read("clip_left")
    for name in ("frames", "faces", "boxes", "embedding", "logits", "valence_arousal", "tracks"):
        np.testing.assert_array_equal(getattr(read, name), getattr(written, name))
    assert read.outputs.shape == (30, 10) and reopened.output_names[-2:] == ("valence", "arousal")
    main = read.main_face()
    assert (main.faces == 0).all() and (np.diff(main.frames) > 0).all()
    assert len(reopened.read("empty")) == 0 and reopened.read("empty").embedding.shape == (0, 24)


def test_store_refuses_other_models_and_bad_ids(tmp_path: Path) -> None:
    FeatureStore.create(tmp_path, MODEL, "parquet", {"stride": 1})
    with pytest.raises(FaceaffectError, match="use another output folder"):
        FeatureStore.create(tmp_path, {**MODEL, "name": "other"}, "parquet", {"stride": 1})
    with pytest.raises(FaceaffectError, match="use another output folder"):
        FeatureStore.create(tmp_path, MODEL, "parquet", {"stride": 2})
    store = FeatureStore.open(tmp_path)
    with pytest.raises(InputError, match="cannot name a file"):
        store.write(features("../escape", 2, np.random.default_rng(0)), VideoEntry("", "", "frames", 2, 0, 0))
    with pytest.raises(InputError, match="not in the feature store"):
        store.read("missing")
    with pytest.raises(InputError, match="not a feature store"):
        FeatureStore.open(tmp_path / "nothing")
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(InputError, match=r"manifest\.json:1: not valid JSON"):
        FeatureStore.open(tmp_path)


def test_reads_are_cached_within_a_byte_budget(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    store = FeatureStore.create(tmp_path, MODEL, "npz")  # npz arrays are writable when read afresh
    for name in ("a", "b", "c"):
        store.write(features(name, 10, rng), VideoEntry("", "x", "frames", 10, 0, 0))
    first = store.read("a")
    assert store.read("a") is first and not first.embedding.flags.writeable  # shared, so read-only
    replaced = features("a", 4, rng)
    store.write(replaced, VideoEntry("", "x", "frames", 4, 0, 0))
    np.testing.assert_array_equal(store.read("a").logits, replaced.logits)  # a write drops the cached copy
    arrays = ("frames", "faces", "boxes", "embedding", "logits", "valence_arousal")
    one_video = sum(getattr(first, name).nbytes for name in arrays)
    small = FeatureStore.open(tmp_path)
    small.cache_bytes = 3 * one_video // 2  # room for one video of 10 rows at a time
    b = small.read("b")
    small.read("c")
    assert small.read("c") is small.read("c") and small.read("b") is not b  # b was evicted for c
    off = FeatureStore.open(tmp_path)
    off.cache_bytes = 0
    assert off.read("b") is not off.read("b") and off.read("b").embedding.flags.writeable


def save_image(path: Path, seed: int, size: tuple[int, int] = (40, 36)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_sources_follow_the_aff_wild2_layout(tmp_path: Path) -> None:
    for frame in (1, 2, 5):
        save_image(tmp_path / "cropped_aligned" / "video7_left" / f"{frame:05d}.jpg", frame)
    save_image(tmp_path / "photos" / "portrait.png", 9)
    save_image(tmp_path / "photos" / "group.jpg", 10)
    sources = {s.video: s for s in discover_sources([tmp_path])}
    assert sorted(sources) == ["group", "portrait", "video7_left"]
    assert sources["video7_left"].kind == "frames" and len(sources["video7_left"].files) == 3
    assert sources["portrait"].kind == "image"
    save_image(tmp_path / "more" / "portrait.jpg", 11)
    with pytest.raises(InputError, match="two inputs would get the video id 'portrait'"):
        discover_sources([tmp_path])


def test_extraction_of_frame_folders_matches_the_recognizer(tiny_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cropped_aligned" / "vid"
    files = [save_image(folder / f"{frame:05d}.jpg", frame) for frame in (1, 2, 4, 7)]
    (folder / "00009.jpg").write_bytes(b"not an image")
    calls: list[tuple[int, int]] = []
    report = extract_features(
        [tmp_path / "cropped_aligned"],
        tmp_path / "store",
        model=tiny_model,
        batch_size=3,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert report.written == ["vid"] and [f[0] for f in report.failures] == [str(folder / "00009.jpg")]
    assert calls[-1] == (5, 5)
    store = FeatureStore.open(tmp_path / "store")
    assert store.model == model_info(get_config("mbf_va_mtl").replace(name="tiny_mbf", input_size=48))
    assert store.videos["vid"].n_frames == 7 and store.videos["vid"].kind == "frames"
    stored = store.read("vid")
    assert (
        stored.frames.tolist() == [1, 2, 4, 7] and (stored.faces == 0).all() and np.isnan(stored.boxes).all()
    )
    expected = Recognizer(tiny_model).run(
        [np.asarray(Image.open(f).convert("RGB")) for f in files], embeddings=True
    )
    np.testing.assert_allclose(stored.logits, expected.logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stored.embedding, expected.embedding, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stored.valence_arousal, np.clip(expected.valence_arousal, -1, 1), atol=1e-5)


def test_extraction_resumes_and_adds_new_videos(tiny_model: Path, tmp_path: Path) -> None:
    save_image(tmp_path / "in" / "a.png", 1)
    first = extract_features([tmp_path / "in"], tmp_path / "store", model=tiny_model)
    written = (tmp_path / "store" / "features" / "a.parquet").stat().st_mtime_ns
    save_image(tmp_path / "in" / "b.png", 2)
    second = extract_features([tmp_path / "in"], tmp_path / "store", model=tiny_model)
    assert first.written == ["a"] and second.written == ["b"] and second.skipped == ["a"]
    assert (tmp_path / "store" / "features" / "a.parquet").stat().st_mtime_ns == written
    assert sorted(FeatureStore.open(tmp_path / "store")) == ["a", "b"]
    with pytest.raises(FaceaffectError, match="use another output folder"):
        extract_features([tmp_path / "in"], tmp_path / "store", model=tiny_model, stride=2)


def test_an_interrupted_run_of_images_keeps_what_it_wrote(tiny_model: Path, tmp_path: Path) -> None:
    for index in range(5):
        save_image(tmp_path / "in" / f"face{index}.png", index)

    def interrupt(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_features([tmp_path / "in"], tmp_path / "store", model=tiny_model, progress=interrupt)
    kept = sorted(FeatureStore.open(tmp_path / "store"))  # saved at the interruption, not 5 s later
    assert len(kept) >= 2 and kept == [f"face{i}" for i in range(len(kept))]
    resumed = extract_features([tmp_path / "in"], tmp_path / "store", model=tiny_model)
    assert resumed.skipped == kept and resumed.written == [f"face{i}" for i in range(len(kept), 5)]


@pytest.mark.slow
def test_detected_faces_of_images_are_those_of_the_analysis_stream(
    tiny_model: Path, shared_data: Path, tmp_path: Path
) -> None:
    photo = shared_data / "faces" / "face_recognition" / "two_people.jpg"
    for frame in (1, 3):
        shutil.copy(photo, tmp_path / f"{frame:05d}.jpg")
    runtime = RuntimeOptions(batch_size=2, engine="torch")
    report = extract_features(
        [tmp_path], tmp_path / "store", model=tiny_model, runtime=runtime, detect_images=True
    )
    stored = report.store.read(tmp_path.name)
    expected = (
        faceaffect.analyze(photo, model=tiny_model, embeddings=True, min_face_size=32.0).frames[0].faces
    )
    assert len(expected) == 2 and report.store.settings["detector"] == "blazeface"
    assert stored.frames.tolist() == [1, 1, 3, 3] and stored.faces.tolist() == [0, 1, 0, 1]
    assert stored.tracks is None and report.store.videos[tmp_path.name].kind == "frames"
    corners = [[f.box.x1, f.box.y1, f.box.x2, f.box.y2, f.box.score] for f in expected]
    np.testing.assert_allclose(stored.boxes, np.array(corners * 2, np.float32), rtol=1e-6)
    np.testing.assert_allclose(stored.logits, np.stack([f.logits for f in expected] * 2), atol=1e-4)
    with pytest.raises(FaceaffectError, match="unknown option 'batch'"):
        extract_features([tmp_path], tmp_path / "other", model=tiny_model, batch=2)


def write_video(path: Path, frames: int, fps: int = 25) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for index in range(frames):
            image = np.full((64, 96, 3), 40 + index * 5, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_video_without_faces_counts_its_frames(tiny_model: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "blank.mp4", 12)
    report = extract_features([video], tmp_path / "store", model=tiny_model, stride=3)
    entry = report.store.videos["blank"]
    assert entry.kind == "video" and entry.n_frames == 12 and entry.fps == pytest.approx(25.0)
    assert entry.rows == 0 and len(report.store.read("blank")) == 0


def test_undecodable_video_is_a_clear_error(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match=r"broken\.mp4"):
        extract_features([tmp_path / "broken.mp4"], tmp_path / "store", model=tiny_model)


@pytest.mark.slow
def test_faces_of_a_real_video(tiny_model: Path, shared_data: Path, tmp_path: Path) -> None:
    video = shared_data / "videos" / "pyfeat_tests" / "single_face.mp4"
    report = extract_features([video], tmp_path / "store", model=tiny_model, stride=6)
    stored = report.store.read("single_face")
    assert report.store.videos["single_face"].n_frames == 72
    assert set(stored.frames.tolist()) <= set(range(1, 73, 6)) and len(np.unique(stored.frames)) >= 10
    width = stored.boxes[:, 2] - stored.boxes[:, 0]
    assert (width > 50).all() and (stored.boxes[:, 4] > 0.5).all() and (stored.tracks >= 0).all()


def test_two_runs_into_one_store_keep_both_runs_videos(shared_data: Path, tmp_path: Path) -> None:
    """Two real ``faceaffect features`` processes write 16 one-image videos each into one store at the
    same time; the manifest must list all 32 (without the lock each run kept only its own)."""
    crops = sorted((shared_data / "faces" / "facenet-pytorch" / "test_images_aligned").glob("*/1.png"))
    folders = [tmp_path / "run0", tmp_path / "run1"]
    for run, folder in enumerate(folders):
        folder.mkdir()
        for index in range(16):
            shutil.copy(crops[index % len(crops)], folder / f"r{run}_{index:02d}.png")
    store = tmp_path / "store"
    command = [sys.executable, "-m", "faceaffect", "features", "-o", str(store), "-q", "--batch-size", "1"]
    runs = [subprocess.Popen([*command, str(f)], stderr=subprocess.PIPE, text=True) for f in folders]
    errors = [run.communicate(timeout=300)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors
    videos = FeatureStore.open(store).videos
    assert sorted(videos) == sorted(f"r{run}_{index:02d}" for run in (0, 1) for index in range(16))
    assert all((store / entry.file).is_file() for entry in videos.values())
