"""Convert a MultiTaskModel to an ONNX graph (TorchScript exporter; needs neither onnxscript nor a file).

>>> data = onnx_bytes(create_model("mbf_va_mtl"))  # doctest: +SKIP
>>> OnnxEngine(data, config)  # doctest: +SKIP

Two output layouts (see ``faceaffect.onnx.graph``): ``faceaffect`` names ``logits``,
``valence_arousal`` (models with VA) and ``embedding``; ``published`` writes the single ``output`` of the
HSEmotion ONNX files, which other tools (e.g. the ``hsemotion-onnx`` package) read. Batch size is dynamic.
"""

from __future__ import annotations

import io
import warnings

import onnx
import torch
from torch import nn

from faceaffect.models.multitask import MultiTaskModel
from faceaffect.onnx.graph import (
    EMBEDDING,
    LOGITS,
    VALENCE_AROUSAL,
    Layout,
    optimize_for_runtime,
)

INPUT = "input"
PUBLISHED_OUTPUT = "output"
DEFAULT_OPSET = 17


class _FaceaffectOutputs(nn.Module):
    def __init__(self, model: MultiTaskModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        embedding = self.model.forward_features(images)
        logits, va = self.model.forward_head(embedding)
        return (logits, embedding) if va is None else (logits, va, embedding)


def output_names(model: MultiTaskModel, layout: str = Layout.FACEAFFECT) -> list[str]:
    """The graph outputs ``onnx_bytes`` writes for ``model`` in ``layout``."""
    if layout == Layout.PUBLISHED:
        return [PUBLISHED_OUTPUT]
    if layout != Layout.FACEAFFECT:
        raise ValueError(f"unknown ONNX layout {layout!r}; use {Layout.FACEAFFECT} or {Layout.PUBLISHED}")
    return [LOGITS, VALENCE_AROUSAL, EMBEDDING] if model.config.has_va else [LOGITS, EMBEDDING]


def onnx_bytes(
    model: MultiTaskModel, *, layout: str = Layout.FACEAFFECT, opset: int = DEFAULT_OPSET
) -> bytes:
    """The serialised ONNX graph of ``model``, traced on CPU in float32 (then moved back to its device), in
    the form ONNX Runtime runs fastest (``optimize_for_runtime``: constant padding, PReLU as Mul + Max)."""
    names = output_names(model, layout)
    size = model.config.input_size
    device = next(model.parameters()).device
    was_training = model.training
    module = model.float().cpu().eval()
    wrapped = module if layout == Layout.PUBLISHED else _FaceaffectOutputs(module)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TorchScript exporter
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # input-size checks
            torch.onnx.export(
                wrapped,
                (torch.zeros(2, 3, size, size),),
                buffer,
                input_names=[INPUT],
                output_names=names,
                dynamic_axes={name: {0: "batch"} for name in [INPUT, *names]},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        model.to(device).train(was_training)
    return optimize_for_runtime(onnx.load_from_string(buffer.getvalue()), size).SerializeToString()
