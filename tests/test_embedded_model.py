"""The embedded default model: shipped in the package, verified, consistent, and actually recognises faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceaffect.hub import load_pretrained_files
from faceaffect.hub.cache import packaged_file
from faceaffect.hub.registry import DEFAULT_MODEL, get_config
from faceaffect.models import load_model
from faceaffect.recognizer import Recognizer
from faceaffect.train.datasets import decode, read_ferplus


@pytest.fixture(scope="module")
def ferplus_test(shared_data: Path) -> tuple[list[np.ndarray], np.ndarray]:
    samples = read_ferplus(shared_data / "ferplus", "test")[:300]
    return [decode(s) for s in samples], np.array([s.expression for s in samples])


def test_default_is_the_embedded_model_and_its_files_verify() -> None:
    config = get_config(DEFAULT_MODEL)
    assert config.weights is not None and config.onnx is not None
    folder = packaged_file(config.weights).parent  # raises when the sha256 does not match
    assert packaged_file(config.onnx).parent == folder
    saved, state = load_pretrained_files(folder)
    for field in (
        "arch",
        "input_size",
        "mean",
        "std",
        "label_set",
        "has_va",
        "embedding_dim",
        "grayscale",
        "flip_average",
    ):
        assert getattr(saved, field) == getattr(config, field), field
    assert sum(t.numel() for t in state.values()) < 3_000_000  # a few MB, fit to ship in the package
    assert (folder / "MODEL_CARD.md").is_file()


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_it_recognises_ferplus_test_faces(engine: str, ferplus_test: tuple) -> None:
    """Far above chance (the majority class is about 35 %) on held-out FER+ faces, with either engine."""
    crops, truth = ferplus_test
    recognizer = Recognizer(DEFAULT_MODEL, engine=engine, offline=True, batch_size=64)
    predictions = recognizer.predict(crops)
    labels = recognizer.labels
    accuracy = np.mean([labels.index(p.top_label) == t for p, t in zip(predictions, truth, strict=True)])
    assert accuracy > 0.7
    assert all(p.valence is None and p.arousal is None for p in predictions)


def test_engines_agree_on_real_faces(ferplus_test: tuple) -> None:
    crops = ferplus_test[0][:32]
    torch_side = Recognizer(DEFAULT_MODEL, engine="torch", offline=True).run(crops, embeddings=True)
    onnx_side = Recognizer(DEFAULT_MODEL, engine="onnx", offline=True).run(crops, embeddings=True)
    np.testing.assert_allclose(onnx_side.logits, torch_side.logits, atol=1e-4)
    assert load_model(DEFAULT_MODEL, offline=True).config.name == DEFAULT_MODEL
