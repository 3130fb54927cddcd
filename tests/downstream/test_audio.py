"""Audio: PyAV decoding of a synthetic tone, frame alignment, audio heads and their late fusion with video."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import av
import numpy as np
import pytest
from sample_data import unavailable
from synthetic_abaw import MODEL, add_video, write_txt

from faceaffect.core.errors import InputError
from faceaffect.downstream.abaw import ABAW_EXPR, read_annotations
from faceaffect.downstream.audio import has_audio, read_audio
from faceaffect.downstream.data import frame_inputs, nearest_index
from faceaffect.downstream.features import FeatureStore
from faceaffect.downstream.predictors import load_predictor
from faceaffect.downstream.workflow import TrainOptions, evaluate, fit_fusion, train_head


def write_media(
    path: Path, seconds: float, tone: float | None, video: bool = True, rate: int = 44100
) -> Path:
    """A small file with a sine tone (stereo, ``rate`` Hz) and/or a grey video track at 25 fps."""
    with av.open(str(path), "w") as container:
        picture = container.add_stream("libx264", rate=25) if video else None
        if picture is not None:
            picture.width, picture.height, picture.pix_fmt = 64, 48, "yuv420p"
        sound = container.add_stream("aac" if video else "pcm_s16le", rate=rate) if tone else None
        if sound is not None:
            sound.layout = "stereo"
            t = np.arange(int(seconds * rate)) / rate
            wave = (0.5 * np.sin(2 * np.pi * tone * t) * 32767).astype(np.int16)
            frame_size = 1024
            for start in range(0, len(wave), frame_size):
                chunk = np.repeat(wave[start : start + frame_size][None], 2, axis=0).T.reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="s16", layout="stereo")
                frame.sample_rate, frame.pts = rate, start
                container.mux(sound.encode(frame))
            container.mux(sound.encode())
        if picture is not None:
            for _ in range(int(seconds * 25)):
                image = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 128, np.uint8), format="rgb24")
                container.mux(picture.encode(image))
            container.mux(picture.encode())
    return path


@pytest.mark.parametrize("video", [False, True])
def test_a_tone_is_decoded_resampled_and_mono(tmp_path: Path, video: bool) -> None:
    path = write_media(tmp_path / ("tone.mp4" if video else "tone.wav"), 1.5, tone=440.0, video=video)
    assert has_audio(path)
    samples = read_audio(path, sample_rate=16000)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) - 24000) < 2048  # codecs pad a frame or so
    spectrum = np.abs(np.fft.rfft(samples[2000:18000]))
    assert np.fft.rfftfreq(16000, 1 / 16000)[spectrum.argmax()] == pytest.approx(440.0, abs=2.0)
    assert 0.3 < np.abs(samples).max() <= 1.0


def test_video_without_sound(tmp_path: Path) -> None:
    path = write_media(tmp_path / "silent.mp4", 0.4, tone=None)
    assert not has_audio(path)
    with pytest.raises(InputError, match="no audio stream"):
        read_audio(path)
    assert not has_audio(tmp_path / "missing.mp4")


def test_nearest_audio_state_for_each_frame() -> None:
    times = (np.arange(100) + 0.5) * 0.02
    assert nearest_index(times, np.array([0.0, 0.019, 0.021, 0.05, 5.0])).tolist() == [0, 0, 1, 2, 99]
    assert nearest_index(times[:1], np.array([3.0])).tolist() == [0]


def audio_visual_dataset(root: Path) -> tuple[FeatureStore, Path]:
    """Expression labels that the video features show for classes 0-3 and the audio states for 4-7."""
    rng = np.random.default_rng(0)
    store = FeatureStore.create(root / "features", MODEL, "parquet", {"audio": "synthetic"})
    mix_video, mix_audio = rng.normal(size=(8, 24)), rng.normal(size=(8, 16))
    for index in range(9):
        video, frames = f"clip{index}", 200
        classes = np.repeat(rng.integers(0, 8, size=frames // 20), 20)
        seen_by_video = np.where(classes < 4, classes, 4)  # classes 4-7 look alike on video
        seen_by_audio = np.where(classes >= 4, classes, 0)  # classes 0-3 sound alike
        embedding = np.eye(8)[seen_by_video] @ mix_video * 2 + rng.normal(size=(frames, 24))
        add_video(store, video, np.arange(1, frames + 1), embedding, rng.normal(size=(frames, 8)), fps=25.0)
        times = (np.arange(frames * 2) + 0.5) * 0.02  # two audio states per frame (50 per second)
        hidden = np.eye(8)[np.repeat(seen_by_audio, 2)] @ mix_audio * 2 + rng.normal(size=(frames * 2, 16))
        store.write_audio(video, times, hidden)
        split = "Train_Set" if index < 6 else "Validation_Set"
        path = root / "Annotations" / "EXPR_Recognition_Challenge" / split / f"{video}.txt"
        write_txt(path, ",".join(ABAW_EXPR), [str(c) for c in classes])
    return store, root / "Annotations"


def test_audio_heads_and_late_fusion(tmp_path: Path) -> None:
    store, annotations = audio_visual_dataset(tmp_path)
    frames, x = frame_inputs(store, "clip0", "audio")
    assert frames.tolist() == list(range(1, 201)) and x.shape == (200, 16)
    train, validation = (read_annotations(annotations, "expr", split) for split in ("train", "validation"))
    options = TrainOptions(epochs=25, windows=(0,))
    visual, _ = train_head("expr", store, train, validation, options=options)
    audio, report = train_head(
        "expr", store, train, validation, options=TrainOptions(inputs="audio", epochs=25, windows=(0,))
    )
    assert report["inputs"] == "audio" and audio.head.config.in_dim == 16
    fused, figures = fit_fusion(visual, audio, store, validation, windows=(0,))
    assert figures["fused_per_frame"] > max(figures["first"], figures["second"]) + 0.2
    assert len(figures["weights"]) == 8 and all(0 <= w <= 1 for w in figures["weights"])
    fused.save(tmp_path / "fused")
    reloaded = load_predictor(tmp_path / "fused")
    assert evaluate(reloaded, store, validation)["head"]["final"]["score"] == pytest.approx(
        figures["smoothed"]
    )


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:torchvision's compiled ops could not load")
def test_wav2vec2_states_are_stored_per_video(tmp_path: Path) -> None:
    if importlib.util.find_spec("transformers") is None:
        unavailable("transformers not installed (the audio extra)")
    from faceaffect.downstream.audio import Wav2Vec2Encoder
    from faceaffect.downstream.extract import extract_features
    from faceaffect.hub.registry import get_config
    from faceaffect.models import create_model, save_model
    from faceaffect.models._torchvision_compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    Wav2Vec2Model(config).save_pretrained(tmp_path / "w2v")
    encoder = Wav2Vec2Encoder(tmp_path / "w2v", chunk_seconds=1.0)
    times, hidden = encoder.encode(read_audio(write_media(tmp_path / "tone.wav", 2.0, 300.0, video=False)))
    assert hidden.shape == (98, 32)  # 49 states per 1 s chunk (400-sample receptive field, 320-sample hop)
    np.testing.assert_allclose(times[[0, 1, 48, 49]], [0.0125, 0.0325, 0.9725, 1.0125], atol=1e-6)
    model = save_model(
        create_model(get_config("mbf_va_mtl").replace(name="tiny", input_size=48)), tmp_path / "m"
    )
    clip = write_media(tmp_path / "clip.mp4", 1.0, tone=220.0)
    report = extract_features([clip], tmp_path / "store", model=model, audio=encoder)
    times, stored = report.store.read_audio("clip")
    assert (
        stored.shape[1] == 32
        and times[-1] < 1.0
        and len(stored) >= 45
        and report.store.settings["audio"] == str(tmp_path / "w2v")
    )
