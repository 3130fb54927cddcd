"""Make ``import timm`` work next to a torchvision whose compiled ops cannot load.

timm imports torchvision unconditionally. When torchvision's C++ extension fails to load (e.g. a CUDA
build of torchvision next to a CPU build of torch), ``import torchvision`` raises
``RuntimeError: operator torchvision::nms does not exist`` because its meta registrations assume the
ops exist. We then declare the two op schemas it registers unconditionally (``nms``, ``qnms``) and
import it again; its ops stay unusable (faceaffect never calls them) and a warning says so. A healthy
install never reaches this path, and any other import error propagates unchanged.
"""

from __future__ import annotations

import sys
import warnings

_MISSING_OP = "operator torchvision::nms does not exist"
_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor",
)
_library = None  # keeps the op definitions alive


def ensure_torchvision_importable() -> None:
    """Import torchvision, declaring its missing op schemas first if (and only if) its extension is broken."""
    try:
        import torchvision
    except RuntimeError as error:
        if _MISSING_OP not in str(error):
            raise
        _declare_missing_ops()
        import torchvision  # noqa: F401


def _declare_missing_ops() -> None:
    global _library
    import torch

    for module in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[module]
    _library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        _library.define(schema)
    warnings.warn(
        "torchvision's compiled ops could not load (torch and torchvision builds do not match); "
        "faceaffect does not need them, but torchvision.ops will not work in this environment",
        RuntimeWarning,
        stacklevel=3,
    )
