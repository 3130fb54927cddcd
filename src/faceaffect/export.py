"""Export a model to ONNX (``model.onnx`` + ``config.json``) and check it against torch on the way.

>>> report = export_model("enet_b0_8_va_mtl", "enet_onnx")  # doctest: +SKIP
>>> report.max_probability_diff < 1e-4  # doctest: +SKIP
True
>>> Recognizer("enet_onnx", engine="onnx")  # doctest: +SKIP

The graph has a dynamic batch axis and is one self-contained file. Nothing is written unless ONNX Runtime's
probabilities (and valence-arousal) agree with torch's within ``tolerance`` on the check images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.io import atomic_path
from faceaffect.core.numeric import softmax
from faceaffect.hub import write_config
from faceaffect.hub.model_folder import ONNX_NAME
from faceaffect.images import ImageLike
from faceaffect.models import MultiTaskModel, load_model, save_model
from faceaffect.models.onnx_export import DEFAULT_OPSET, onnx_bytes
from faceaffect.onnx.graph import Layout
from faceaffect.preprocess import preprocess
from faceaffect.runtime.onnx_engine import OnnxEngine
from faceaffect.runtime.torch_engine import TorchEngine

DEFAULT_TOLERANCE = 1e-4
_CHECK_SIZES = ((48, 40), (96, 80), (130, 150), (224, 224), (300, 260), (61, 97))


class ExportError(FaceaffectError):
    """The exported graph does not reproduce the torch model."""


@dataclass(frozen=True)
class ExportReport:
    """Where the model went and how closely ONNX Runtime reproduced torch (see ``parity``)."""

    onnx_path: Path
    layout: str
    opset: int
    images: int
    max_probability_diff: float
    max_valence_arousal_diff: float | None
    max_embedding_diff: float

    def summary(self) -> str:
        diffs = f"probabilities {self.max_probability_diff:.1e} (absolute)"
        if self.max_valence_arousal_diff is not None:
            diffs += f", valence-arousal {self.max_valence_arousal_diff:.1e}"
        diffs += f", embedding {self.max_embedding_diff:.1e} (relative)"
        size = self.onnx_path.stat().st_size / 2**20
        return (
            f"wrote {self.onnx_path} ({size:.1f} MiB, {self.layout} layout, opset {self.opset}); "
            f"ONNX Runtime vs torch on {self.images} images, max differences: {diffs}"
        )


def export_model(
    model: str | Path | MultiTaskModel,
    directory: str | Path,
    *,
    weights_path: str | Path | None = None,
    offline: bool | None = None,
    layout: str = Layout.FACEAFFECT,
    opset: int = DEFAULT_OPSET,
    check_images: Sequence[ImageLike] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    torch_weights: bool = False,
) -> ExportReport:
    """Write ``directory/model.onnx`` and ``config.json`` (and ``model.safetensors`` with ``torch_weights``).

    ``model`` is anything ``load_model`` takes (``weights_path`` and ``offline`` are passed on) or a model.
    ``check_images`` are face crops for the parity check (default: fixed synthetic crops of several sizes);
    ExportError when the probabilities or valence-arousal differ by more than ``tolerance``.
    """
    if not isinstance(model, MultiTaskModel):
        model = load_model(model, weights_path=weights_path, offline=offline)
    data = onnx_bytes(model, layout=layout, opset=opset)
    crops = list(check_images) if check_images is not None else _synthetic_crops()
    diffs = parity(model, OnnxEngine(data, model.config), crops)
    checked = (("probabilities", diffs[0]), ("valence-arousal", diffs[1]))
    problems = [f"{name} {diff:.1e}" for name, diff in checked if diff is not None and not diff <= tolerance]
    if problems:
        raise ExportError(
            f"ONNX Runtime and torch disagree on {model.config.name}: {', '.join(problems)} above the "
            f"tolerance {tolerance:.0e}; nothing written"
        )
    directory = Path(directory)
    if torch_weights:
        save_model(model, directory)
    path = directory / ONNX_NAME
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    write_config(model.config, directory)
    return ExportReport(path, layout, opset, len(crops), *diffs)


def parity(
    model: MultiTaskModel, engine: OnnxEngine, crops: Sequence[ImageLike]
) -> tuple[float, float | None, float]:
    """Max |diff| between torch and ``engine``: probabilities; valence-arousal (None without) over
    max(1, max |VA|); embedding over max |embedding|."""
    if not crops:
        raise FaceaffectError("the parity check needs at least one image")
    batch = preprocess(crops, model.config)
    ours = TorchEngine(model, str(next(model.parameters()).device)).run(batch, with_embedding=True)
    theirs = engine.run(batch, with_embedding=True)
    assert ours.embedding is not None and theirs.embedding is not None
    probabilities = np.abs(
        softmax(ours.logits.astype(np.float64)) - softmax(theirs.logits.astype(np.float64))
    )
    va = None
    if ours.valence_arousal is not None and theirs.valence_arousal is not None:
        scale = max(float(np.abs(ours.valence_arousal).max()), 1.0)
        va = float(np.abs(ours.valence_arousal - theirs.valence_arousal).max()) / scale
    scale = max(float(np.abs(ours.embedding).max()), 1e-12)
    return float(probabilities.max()), va, float(np.abs(ours.embedding - theirs.embedding).max()) / scale


def _synthetic_crops() -> list[np.ndarray]:
    """Smooth random images (blurred noise, so the network sees structure rather than pixel noise)."""
    rng = np.random.default_rng(0)
    crops = []
    for height, width in _CHECK_SIZES:
        coarse = rng.integers(0, 256, size=(height // 8 + 2, width // 8 + 2, 3)).astype(np.float32)
        fine = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:height, :width]
        crops.append(np.clip(fine + rng.normal(0, 12, fine.shape), 0, 255).astype(np.uint8))
    return crops
