"""Recognizer: typed predictions from crops of any size, batched, on a randomly initialised model."""

from __future__ import annotations

import numpy as np
import pytest

from faceaffect.core.errors import FaceaffectError
from faceaffect.models import create_model
from faceaffect.recognizer import Recognizer


@pytest.fixture(scope="module")
def va_recognizer() -> Recognizer:
    return Recognizer(create_model("enet_b0_8_va_mtl"), batch_size=2)


def crops(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(40 + 7 * i, 30 + 5 * i, 3), dtype=np.uint8) for i in range(count)]


def test_predictions_are_typed_and_valid(va_recognizer: Recognizer) -> None:
    predictions = va_recognizer.predict(crops(5), embeddings=True)
    assert len(predictions) == 5
    for p in predictions:
        assert p.labels == va_recognizer.labels and p.probabilities.shape == (8,)
        assert p.probabilities.sum() == pytest.approx(1.0)
        assert p.top_label == p.labels[int(np.argmax(p.logits))]
        assert -1.0 <= p.valence <= 1.0 and -1.0 <= p.arousal <= 1.0
        assert p.embedding.shape == (1280,)
    assert va_recognizer.predict(crops(1))[0].embedding is None


def test_batch_size_does_not_change_results(va_recognizer: Recognizer) -> None:
    one_by_one = Recognizer(va_recognizer.engine.model, batch_size=1).run(crops(3)).logits
    np.testing.assert_allclose(va_recognizer.run(crops(3)).logits, one_by_one, rtol=1e-4, atol=1e-4)


def test_valence_arousal_are_clipped(va_recognizer: Recognizer) -> None:
    model = va_recognizer.engine.model
    bias = model.head.bias.data.clone()
    try:
        model.head.bias.data[8:] = 50.0
        prediction = va_recognizer.predict(crops(1))[0]
        assert prediction.valence == 1.0 and prediction.arousal == 1.0
    finally:
        model.head.bias.data = bias


def test_expression_only_model_has_no_valence_arousal() -> None:
    prediction = Recognizer(create_model("enet_b0_7")).predict(crops(1))[0]
    assert prediction.valence is None and prediction.arousal is None
    assert len(prediction.probabilities) == 7 and "Contempt" not in prediction.labels


def test_empty_input_gives_empty_output(va_recognizer: Recognizer) -> None:
    assert va_recognizer.predict([]) == []


def test_bad_options_are_clear_errors(va_recognizer: Recognizer) -> None:
    with pytest.raises(FaceaffectError, match="batch_size must be at least 1"):
        Recognizer(va_recognizer.engine.model, batch_size=0)
    with pytest.raises(FaceaffectError, match="unknown device"):
        Recognizer(va_recognizer.engine.model, device="tpu")


def test_unreadable_files_are_reported_not_fatal(va_recognizer: Recognizer, tmp_path) -> None:
    from PIL import Image

    good = tmp_path / "good.png"
    Image.fromarray(crops(1)[0]).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    rows, failures = va_recognizer.predict_files([good, bad, tmp_path / "missing.png"])
    assert [path for path, _ in rows] == [str(good)]
    assert [f.path for f in failures] == [str(bad), str(tmp_path / "missing.png")]


def test_batches_in_flight_on_onnx_runtime_keep_order_and_values(calibrated_model, face_crops) -> None:
    model = calibrated_model("mbf_va_mtl")
    serial = Recognizer(model, engine="torch", batch_size=2).run(face_crops, embeddings=True)
    parallel = Recognizer(model, engine="onnx", batch_size=64)  # in-flight batches: the engine's 4
    parallel.engine.concurrency = 3  # more batches in flight than this machine may have cores
    got = parallel.run(face_crops, embeddings=True)
    np.testing.assert_allclose(got.embedding, serial.embedding, atol=1e-4 * np.abs(serial.embedding).max())
    np.testing.assert_allclose(got.valence_arousal, serial.valence_arousal, atol=1e-4)
    assert parallel.predict([]) == []
