"""Choose and build an engine for a model: ``create_engine(model, engine="auto", device="cpu")``.

``model`` is a registered name, a saved model folder (``config.json`` with ``model.onnx`` and/or
``model.safetensors``) or a torch ``MultiTaskModel``. ``engine`` is ``torch``, ``onnx`` or ``auto``: ONNX
Runtime when an ONNX file is available and the device is the CPU (or torch is not installed), torch on a GPU
and when only torch weights exist. The ONNX path imports neither torch nor timm.

>>> engine = create_engine("enet_b0_8_va_mtl")  # doctest: +SKIP  (ONNX Runtime, published .onnx file)
>>> engine = create_engine("my_model", engine="torch", device="cuda")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.extras import is_installed, optional_import
from faceaffect.hub.cache import cache_path, is_offline
from faceaffect.hub.model_folder import ONNX_NAME, WEIGHTS_NAME
from faceaffect.hub.resolve import ResolvedModel, resolve_model
from faceaffect.runtime.base import ENGINES, Engine

if TYPE_CHECKING:
    from faceaffect.models.multitask import MultiTaskModel


def create_engine(
    model: str | Path | MultiTaskModel,
    *,
    engine: str = "auto",
    device: str = "cpu",
    offline: bool | None = None,
    threads: int | None = None,
    cores: int | None = None,
) -> Engine:
    """An engine running ``model`` (see the module docstring for the choice ``auto`` makes).

    ``threads`` sets ONNX Runtime's threads per batch (default 1 on CPU, one batch in flight per physical
    core); ``cores`` the CPU cores it fills (default: the physical cores this process may run on).
    ``offline`` applies to published weights that still have to be downloaded; offline, ``auto`` takes the
    published file that is already cached when only one of the two is.
    """
    if engine not in ENGINES:
        raise FaceaffectError(f"unknown engine {engine!r}; use {', '.join(ENGINES)}")
    if not isinstance(model, str | Path):
        return _from_torch_model(model, engine, device, threads, cores)
    resolved = _available(resolve_model(model), offline)
    if resolved.folder is not None and not (resolved.has_onnx or resolved.has_torch):
        raise FaceaffectError(f"{model} holds neither {ONNX_NAME} nor {WEIGHTS_NAME}")
    chosen = choose_engine(engine, device, has_onnx=resolved.has_onnx, has_torch=resolved.has_torch)
    if chosen == "onnx":
        from faceaffect.runtime.onnx_engine import OnnxEngine

        path = resolved.onnx_file(offline=offline)
        if path is None:
            raise FaceaffectError(
                f"{model} has no ONNX file; use --engine torch, or write one with `faceaffect export`"
            )
        return OnnxEngine(path, resolved.config, device=device, threads=threads, cores=cores)
    if resolved.folder is not None and not resolved.has_torch:
        raise FaceaffectError(f"{model} has no torch weights ({WEIGHTS_NAME}); use --engine onnx")
    hint = ", or use --engine onnx with a model that has an ONNX file"
    loading = optional_import("faceaffect.models.loading", "the torch engine", hint=hint)
    torch_engine = optional_import("faceaffect.runtime.torch_engine", "the torch engine", hint=hint)
    return torch_engine.TorchEngine(loading.load_model(resolved, offline=offline), device)


def choose_engine(engine: str, device: str, *, has_onnx: bool, has_torch: bool) -> str:
    """``engine`` itself unless it is ``auto``; then ONNX Runtime on CPU, torch on GPU, by what exists."""
    if engine != "auto":
        return engine
    if not has_onnx:
        return "torch"  # also for names without weights: load_model says what to pass
    if not has_torch:
        return "onnx"
    torch_installed = is_installed("torch") and is_installed("timm")
    wants_gpu = device.startswith("cuda") or (device == "auto" and torch_installed and _torch_has_cuda())
    return "torch" if wants_gpu and torch_installed else "onnx"


def _available(resolved: ResolvedModel, offline: bool | None) -> ResolvedModel:
    """Offline, a published model whose ONNX file or torch file alone is cached offers only that one."""
    config = resolved.config
    if resolved.folder is not None or not is_offline(offline) or not (config.onnx and config.weights):
        return resolved
    onnx_cached = cache_path(config.onnx).is_file()
    if onnx_cached == cache_path(config.weights).is_file():
        return resolved
    return ResolvedModel(config.replace(weights=None) if onnx_cached else config.replace(onnx=None))


def _from_torch_model(
    model: MultiTaskModel, engine: str, device: str, threads: int | None, cores: int | None
) -> Engine:
    if engine == "onnx":
        from faceaffect.models.onnx_export import onnx_bytes
        from faceaffect.runtime.onnx_engine import OnnxEngine

        return OnnxEngine(onnx_bytes(model), model.config, device=device, threads=threads, cores=cores)
    from faceaffect.runtime.torch_engine import TorchEngine

    return TorchEngine(model, device)


def _torch_has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())
