"""Make torchvision importable and its ``nms`` usable in the reference environment of the benchmarks.

The machines this project is benchmarked on pair a CPU build of torch with the only torchvision wheel for it,
a CUDA build whose compiled ops cannot load (``operator torchvision::nms does not exist``). hsemotion imports
torchvision and facenet-pytorch's MTCNN calls ``torchvision.ops.batched_nms``. This declares the op schemas
and gives ``nms`` a CPU kernel (greedy suppression, numpy, one vectorised IoU row per kept box), so
the reference recipe runs unchanged. The time spent in it is counted and reported by the runners
(``nms_seconds``). On a healthy install nothing here is used.
"""

from __future__ import annotations

import time

import numpy as np
import torch

NMS_SECONDS = [0.0]
_library = None


def install() -> None:
    """Import torchvision, declaring and implementing its ``nms`` op first if its extension is broken."""
    global _library
    try:
        import torchvision

        return
    except RuntimeError as error:
        if "torchvision::nms does not exist" not in str(error):
            raise
    import sys

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _library = torch.library.Library("torchvision", "DEF")
    _library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _library.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
    _library.impl("nms", _nms, "CPU")
    import torchvision.extension

    torchvision.extension._has_ops = lambda: True  # nms now has a kernel; nothing else is called


def _nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    start = time.perf_counter()
    b = boxes.detach().double().numpy()
    order = np.argsort(-scores.detach().double().numpy(), kind="stable")
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        width = np.clip(np.minimum(b[best, 2], b[rest, 2]) - np.maximum(b[best, 0], b[rest, 0]), 0, None)
        height = np.clip(np.minimum(b[best, 3], b[rest, 3]) - np.maximum(b[best, 1], b[rest, 1]), 0, None)
        overlap = width * height
        order = rest[overlap <= iou_threshold * (areas[best] + areas[rest] - overlap)]
    NMS_SECONDS[0] += time.perf_counter() - start
    return torch.as_tensor(np.asarray(keep, dtype=np.int64))
