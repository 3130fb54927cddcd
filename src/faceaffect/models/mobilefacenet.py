"""MobileFaceNet with a GDC (global depthwise conv) embedding, laid out like insightface's ``arcface_torch``.

Upstream layout matched (module tree and therefore state-dict keys): ``deepinsight/insightface``
``recognition/arcface_torch/backbones/mobilefacenet.py`` (``get_mbf``: scale 2, blocks (1, 4, 6, 2)).
Evidence that HSEmotion's ``mbf_va_mtl.pt`` pickles exactly that class:

- ``av-savchenko/face-emotion-recognition`` ``src/ABAW/ABAW7/mtl.ipynb`` and ``src/ABAW/ABAW6/*.ipynb`` put
  ``insightface/recognition/arcface_torch/backbones/`` on ``sys.path`` and ``import mobilefacenet`` before
  ``torch.load('.../mbf_va_mtl.pt')``; the same repository ships a copy as
  ``src/affectnet/mobilefacenet.py``.
- ``sb-ai-lab/EmotiEffLib`` (the maintained successor) ships that copy as
  ``emotiefflib/backbones/mobilefacenet.py`` "required for mbf_va_mtl", reads the classifier as ``model.fc``
  (``in_features`` 512, 10 outputs) and gets the 512-d embedding by setting ``model.fc = Identity()``; its
  ONNX export ends in that Gemm.

Width: insightface's ``mbf`` has used ``scale=2`` (128-channel stem, ~2.06 M parameters with the GDC head)
since its 2021-07-22 revision, which is the revision HSEmotion copied (scale 1, ~1 M, existed only between
2021-07-08 and 2021-07-22). Key names are the same at both scales; only the shapes differ.

Not established (the pickle itself was not readable here): the name of the container holding the backbone
next to ``fc``. insightface's forward never calls ``fc``, so the published module is most likely an
``nn.Sequential`` whose children are the MobileFaceNet and ``fc``; ``checkpoint_filter_fn`` therefore finds
the backbone prefix from the keys instead of assuming it.

>>> MobileFaceNet(input_size=64).eval()(torch.zeros(1, 3, 64, 64)).shape
torch.Size([1, 512])
"""

from __future__ import annotations

import torch
from torch import nn

from faceaffect.hub.registry import ModelConfig
from faceaffect.models.architectures import check_keys, plain_state_dict, register_architecture

__all__ = ["MobileFaceNet", "checkpoint_filter_fn", "gdc_kernel_size"]

StateDict = dict[str, torch.Tensor]
_BACKBONE_ROOTS = ("layers.", "conv_sep.", "features.")
_ANCHOR = "conv_sep.layers.0.weight"


class _ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm [+ PReLU], kept in ``layers`` (insightface ConvBlock / LinearBlock)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 1,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        prelu: bool = True,
    ) -> None:
        super().__init__()
        parts: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if prelu:
            parts.append(nn.PReLU(cout))
        self.layers = nn.Sequential(*parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class _Bottleneck(nn.Module):
    """1x1 expand -> 3x3 depthwise -> 1x1 linear projection, with an optional identity shortcut."""

    def __init__(self, cin: int, cout: int, hidden: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(
            _ConvBN(cin, hidden),
            _ConvBN(hidden, hidden, 3, stride, 1, groups=hidden),
            _ConvBN(hidden, cout, prelu=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        return x + out if self.residual else out


class _Stage(nn.Module):
    """``depth`` residual bottlenecks at constant width."""

    def __init__(self, channels: int, depth: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(*(_Bottleneck(channels, channels, hidden, 1, True) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class _GDC(nn.Module):
    """Global depthwise conv over the whole final map, then Linear (no bias) + BatchNorm1d."""

    def __init__(self, embedding_dim: int, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.layers = nn.Sequential(
            _ConvBN(512, 512, kernel, groups=512, prelu=False),
            nn.Flatten(),
            nn.Linear(512, embedding_dim, bias=False),
            nn.BatchNorm1d(embedding_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.kernel, self.kernel):
            raise ValueError(
                f"MobileFaceNet built for a {self.kernel}x{self.kernel} final map got {tuple(x.shape[-2:])}: "
                "feed images of the input_size it was built with"
            )
        return self.layers(x)


def gdc_kernel_size(input_size: int) -> int:
    """Side of the final feature map (four stride-2 stages): 112 -> 7, 64 -> 4, 48 -> 3.

    >>> gdc_kernel_size(112)
    7
    """
    side = input_size
    for _ in range(4):
        side = (side + 1) // 2
    return side


class MobileFaceNet(nn.Module):
    """Image (B, 3, S, S) -> GDC embedding (B, embedding_dim); S is fixed at construction (``input_size``).

    The GDC kernel is derived from ``input_size`` (7 at 112 px, as published), so the same network works at
    64 or 48 px for small models; weights are only interchangeable between equal input sizes.
    """

    def __init__(
        self,
        embedding_dim: int = 512,
        input_size: int = 112,
        blocks: tuple[int, int, int, int] = (1, 4, 6, 2),
        scale: int = 2,
    ) -> None:
        super().__init__()
        if input_size < 16:
            raise ValueError(f"input_size must be at least 16, got {input_size}")
        self.num_features = embedding_dim
        self.input_size = input_size
        w = 64 * scale
        first = _ConvBN(w, w, 3, 1, 1, groups=64) if blocks[0] == 1 else _Stage(w, blocks[0], 128)
        self.layers = nn.ModuleList(
            [
                _ConvBN(3, w, 3, 2, 1),
                first,
                _Bottleneck(w, w, 128, 2, False),
                _Stage(w, blocks[1], 128),
                _Bottleneck(w, 2 * w, 256, 2, False),
                _Stage(2 * w, blocks[2], 256),
                _Bottleneck(2 * w, 2 * w, 512, 2, False),
                _Stage(2 * w, blocks[3], 256),
            ]
        )
        self.conv_sep = _ConvBN(2 * w, 512)
        self.features = _GDC(embedding_dim, gdc_kernel_size(input_size))
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding of normalised images (mean = std = 0.5)."""
        for layer in self.layers:
            x = layer(x)
        return self.features(self.conv_sep(x))


def _reference_keys() -> set[str]:
    with torch.device("meta"):
        return set(MobileFaceNet().state_dict())


def checkpoint_filter_fn(state_dict: StateDict) -> StateDict:
    """Map the state dict of HSEmotion's pickled MobileFaceNet (+ its classifier) to MultiTaskModel keys.

    The backbone may sit at any prefix (``""``, ``"0."``, ``"backbone."`` ...); it is found by its
    ``conv_sep`` weight. The classifier is the one remaining Linear (``fc`` upstream) and becomes ``head``.
    """
    state = plain_state_dict(state_dict)
    anchors = [key for key in state if key.endswith(_ANCHOR)]
    if len(anchors) != 1:
        raise ValueError(f"expected one MobileFaceNet ({_ANCHOR!r}) in the checkpoint, found {len(anchors)}")
    prefix = anchors[0].removesuffix(_ANCHOR)
    backbone: StateDict = {}
    rest: StateDict = {}
    for key, value in state.items():
        inner = key.removeprefix(prefix) if key.startswith(prefix) else None
        if inner is not None and inner.startswith(_BACKBONE_ROOTS):
            backbone[inner] = value
        else:
            rest[key] = value
    weights = [key for key, value in rest.items() if key.endswith(".weight") and value.ndim == 2]
    head = weights[0].removesuffix("weight") if len(weights) == 1 else None
    if head is None or set(rest) != {f"{head}weight", f"{head}bias"}:
        raise ValueError(f"expected one Linear classifier next to the backbone, found keys {sorted(rest)}")
    check_keys(backbone, _reference_keys(), "an insightface MobileFaceNet")
    out = {f"backbone.{key}": value for key, value in backbone.items()}
    out["head.weight"] = rest[f"{head}weight"]
    out["head.bias"] = rest[f"{head}bias"]
    return out


def _build(config: ModelConfig) -> nn.Module:
    return MobileFaceNet(embedding_dim=config.embedding_dim, input_size=config.input_size)


register_architecture("mobilefacenet", _build, checkpoint_filter_fn)
