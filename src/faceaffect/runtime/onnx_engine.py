"""The ONNX Runtime engine: no torch, no timm; 3-4x faster than torch eager on a small CPU.

>>> engine = OnnxEngine("my_model/model.onnx", config)  # doctest: +SKIP
>>> engine.run(batch, with_embedding=True).embedding.shape  # doctest: +SKIP
(16, 1280)

Throughput on CPU comes from running several batches at once, one per physical core, each on one thread
(``threads=1``, the default: ``concurrency`` = physical cores): no per-operation barriers, no spinning worker
threads, and the Recognizer preprocesses each batch on its own thread too. On a loaded 2-core machine that
measured 1.3-1.9x the throughput of one batch on 2 intra-op threads. Pass ``threads`` for fewer, wider calls
(lower latency for one face at a time). Sessions use all graph optimisations, and the TensorRT / CUDA
execution providers when the installed onnxruntime has them and a GPU device is asked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from faceaffect.core.errors import CheckpointError, FaceaffectError
from faceaffect.hub.registry import ModelConfig
from faceaffect.onnx.graph import (
    EMBEDDING,
    LOGITS,
    VALENCE_AROUSAL,
    Layout,
    expose_embedding,
    graph_layout,
    optimize_for_runtime,
    ort_errors,
    read_graph,
)
from faceaffect.runtime.base import EngineOutput

_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
CPU_BATCH = 1
"""Faces per single-threaded CPU run: small batches stay in cache. On 2 cores (EfficientNet-B0, 64 faces, two
batches in flight) 1-4 faces per batch gave 125-134 faces/s, 8 gave 115-125, 16 gave 98-111, 32 gave 93-103;
MobileFaceNet 112 px 92-97 at 2-4 and 76-86 at 16-32; at 48 px every size from 4 to 32 gave about 450. On a
2-core Xeon (2 MB L2 per core), CPU ms per face at 1 / 2 / 4 faces per run, medians of alternating rounds:
the embedded 64 px model (mirror-averaged) 5.83 / 6.38 / 6.53, MobileFaceNet 112 px 9.92 / 10.19 / 11.25,
EfficientNet-B0 10.80 / 11.63 / 11.51; a folder of 180x192 portraits through analyze 13.4 ms CPU per image
at 1 against 14.1 at 4."""


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads counted once); at least 1."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for cpu in allowed:
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(siblings.read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def onnx_providers(device: str) -> list[str | tuple[str, dict[str, str]]]:
    """Execution providers for ``device`` (cpu, cuda, cuda:N or auto), best first, CPU last."""
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device != "auto" and device != "cuda" and not device.startswith("cuda:"):
        raise FaceaffectError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto")
    available = ort.get_available_providers()
    gpu = [name for name in _GPU_PROVIDERS if name in available]
    if not gpu:
        if device == "auto":
            return ["CPUExecutionProvider"]
        raise FaceaffectError(
            f"device {device!r} requested but this onnxruntime has no CUDA provider "
            f"(it has {', '.join(available)}); install onnxruntime-gpu or use --device cpu"
        )
    device_id = device.partition(":")[2] or "0"
    return [(name, {"device_id": device_id}) for name in gpu] + ["CPUExecutionProvider"]


class OnnxEngine:
    """Runs an ONNX model of either layout (see ``faceaffect.onnx.graph``) on normalised batches.

    ``model`` is a ``.onnx`` file or its bytes; ``threads`` is the intra-op threads of one ``run`` call
    (default 1 on CPU); ``concurrency`` = ``cores`` (default: the physical cores) // threads on CPU, 1 on a
    GPU.
    """

    def __init__(
        self,
        model: str | Path | bytes,
        config: ModelConfig,
        *,
        device: str = "cpu",
        threads: int | None = None,
        cores: int | None = None,
    ) -> None:
        import onnx
        import onnxruntime as ort
        from google.protobuf.message import DecodeError

        self.config = config
        try:
            proto = onnx.load_from_string(model) if isinstance(model, bytes) else read_graph(model)
        except DecodeError as error:
            raise CheckpointError(f"cannot read the ONNX model {_origin(model)}: {error}") from None
        self.layout = graph_layout(proto, config)
        if self.layout == Layout.PUBLISHED:
            proto = expose_embedding(proto, config)
        proto = optimize_for_runtime(proto, config.input_size)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        providers = onnx_providers(device)
        on_cpu = providers == ["CPUExecutionProvider"]
        options.intra_op_num_threads = threads or (1 if on_cpu else physical_cores())
        options.inter_op_num_threads = 1
        self.concurrency = (
            max(1, (cores or physical_cores()) // options.intra_op_num_threads) if on_cpu else 1
        )
        self.preferred_batch = CPU_BATCH if on_cpu else None
        try:
            self.session = ort.InferenceSession(proto.SerializeToString(), options, providers=providers)
        except ort_errors() as error:
            raise CheckpointError(f"onnxruntime cannot load {_origin(model)}: {error}") from None
        self.providers = self.session.get_providers()
        self.input_name = self.session.get_inputs()[0].name
        self.threads = options.intra_op_num_threads
        self._outputs = (
            [self.session.get_outputs()[0].name]
            if self.layout == Layout.PUBLISHED
            else [LOGITS] + ([VALENCE_AROUSAL] if config.has_va else [])
        )
        self._check_io()

    def _check_io(self) -> None:
        size = self.config.input_size
        shape = self.session.get_inputs()[0].shape
        if len(shape) != 4 or [d for d in shape[1:] if isinstance(d, int)] not in ([3, size, size], []):
            raise CheckpointError(
                f"ONNX model for {self.config.name} takes {shape}, expected [N, 3, {size}, {size}]"
            )
        widths = {o.name: o.shape[-1] for o in self.session.get_outputs()}
        expected = {EMBEDDING: self.config.embedding_dim}
        if self.layout == Layout.PUBLISHED:
            expected[self.session.get_outputs()[0].name] = self.config.num_outputs
        else:
            expected.update({LOGITS: self.config.num_classes, VALENCE_AROUSAL: 2})
        wrong = [f"{name} {widths[name]} (expected {want})" for name, want in expected.items()
                 if name in widths and isinstance(widths[name], int) and widths[name] != want]  # fmt: skip
        if wrong:
            raise CheckpointError(f"ONNX model for {self.config.name}: output widths {', '.join(wrong)}")

    def run(self, batch: np.ndarray, *, with_embedding: bool = False) -> EngineOutput:
        """Logits, valence-arousal (None without VA) and, when asked, embeddings for a float32 batch."""
        if len(batch) == 0:
            return self._empty(with_embedding)
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        names = self._outputs + [EMBEDDING] * with_embedding
        values = dict(zip(names, self.session.run(names, {self.input_name: batch}), strict=True))
        if self.layout == Layout.PUBLISHED:
            out, n = values[self._outputs[0]], self.config.num_classes
            logits, va = out[:, :n], (out[:, n : n + 2] if self.config.has_va else None)
        else:
            logits, va = values[LOGITS], values.get(VALENCE_AROUSAL)
        return EngineOutput(logits, va, values.get(EMBEDDING))

    def _empty(self, with_embedding: bool) -> EngineOutput:
        c = self.config
        return EngineOutput(
            np.zeros((0, c.num_classes), np.float32),
            np.zeros((0, 2), np.float32) if c.has_va else None,
            np.zeros((0, c.embedding_dim), np.float32) if with_embedding else None,
        )


def _origin(model: str | Path | bytes) -> str:
    return "(bytes)" if isinstance(model, bytes) else str(model)
