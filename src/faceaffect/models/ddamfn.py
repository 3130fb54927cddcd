"""DDAMFN: MixedFeatureNet features + dual-direction attention heads + a 7x7 depthwise "Linear" block.

Upstream layout matched: ``SainingZhang/DDAMFN`` ``networks/DDAM.py`` (``DDAMNet``) and
``networks/MixedFeatureNet.py`` (identical copies under ``DDAMFN++/networks/``). ``DDAMNet.features`` is the
first nine children of ``MixedFeatureNet`` (stem conv, depthwise conv, then mixed-depthwise stages with
coordinate attention, up to ``conv_6_sep``: 512 x 7 x 7 at 112 px); ``cat_head{i}.CoordAtt`` are the attention
heads; ``Linear`` is the depthwise 7x7 conv + BN; ``fc`` the classifier. The ABAW-6/7 notebooks of
``av-savchenko/face-emotion-recognition`` load exactly this class (``DDAMNet(num_class=10, num_head=2)`` for
the multi-task model) from checkpoints holding ``{'model_state_dict': ...}``. Checked against the upstream
code itself: the same state dict gives the same outputs and attention maps.

Upstream modules that never take part in the forward pass are left out here and dropped by
``checkpoint_filter_fn``: ``MDConv.bn`` / ``MDConv.prelu`` inside every mixed-depthwise block, the
``CoordAtt.Linear`` block of each attention head and ``DDAMNet.bn`` (a BatchNorm1d over the logits).

>>> DDAMFNBackbone().eval()(torch.zeros(1, 3, 112, 112)).shape
torch.Size([1, 512])
"""

from __future__ import annotations

import re
from functools import reduce

import torch
from torch import nn

from faceaffect.hub.registry import ModelConfig
from faceaffect.models.architectures import check_keys, plain_state_dict, register_architecture

__all__ = ["DDAMFNBackbone", "checkpoint_filter_fn"]

StateDict = dict[str, torch.Tensor]
_UNUSED = re.compile(
    r"^(bn\.|features\.\d+\.(model\.\d+\.)?conv_dw\.(bn|prelu)\.|cat_head\d+\.CoordAtt\.Linear\.)"
)
_MAP_SIDE = 7


class _ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm [+ PReLU], named like upstream's Conv_block / Linear_block."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int | tuple[int, int] = 1,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        prelu: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout) if prelu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.bn(self.conv(x)))


class _MixedDepthwise(nn.Module):
    """Channel groups, each with its own depthwise kernel size (MixConv); no norm or activation after it."""

    def __init__(self, splits: list[int], kernels: list[int], stride: int) -> None:
        super().__init__()
        self.splits = splits
        self.mixed_depthwise_conv = nn.ModuleList(
            nn.Conv2d(c, c, k, stride, k // 2, groups=c, bias=False)
            for c, k in zip(splits, kernels, strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x, self.splits, dim=1)
        return torch.cat([conv(part) for conv, part in zip(self.mixed_depthwise_conv, parts, strict=True)], 1)


class _CoordAttention(nn.Module):
    """Coordinate attention: pool along each axis, shared 1x1 conv, per-axis sigmoid gates.

    ``pool`` chooses how each axis is summarised: mean pooling (inside MixedFeatureNet) or learnt 1x7 / 7x1
    depthwise convs (``Linear_h`` / ``Linear_w``, DDAM heads). Mean pooling re-weights its input; the heads
    return the gate map itself.
    """

    def __init__(self, channels: int, learnt_pool: bool) -> None:
        super().__init__()
        mid = max(8, channels // 32)
        self.learnt_pool = learnt_pool
        if learnt_pool:
            self.add_module(
                "Linear_h", _ConvBN(channels, channels, (1, _MAP_SIDE), groups=channels, prelu=False)
            )
            self.add_module(
                "Linear_w", _ConvBN(channels, channels, (_MAP_SIDE, 1), groups=channels, prelu=False)
            )
        self.conv1 = nn.Conv2d(channels, mid, 1)
        self.bn1 = nn.BatchNorm2d(mid)
        self.act = nn.Hardswish()
        self.conv2 = nn.Conv2d(mid, channels, 1)
        self.conv3 = nn.Conv2d(mid, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.learnt_pool:
            along_h, along_w = self.get_submodule("Linear_h")(x), self.get_submodule("Linear_w")(x)
        else:
            along_h, along_w = x.mean(3, keepdim=True), x.mean(2, keepdim=True)
        y = torch.cat([along_h, along_w.transpose(2, 3)], dim=2)
        y = self.act(self.bn1(self.conv1(y)))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        gate = self.conv2(y_h).sigmoid() * self.conv3(y_w.transpose(2, 3)).sigmoid()
        return gate if self.learnt_pool else x * gate


class _MixBlock(nn.Module):
    """1x1 expand -> mixed depthwise -> coordinate attention -> 1x1 linear projection [+ shortcut]."""

    def __init__(
        self,
        cin: int,
        cout: int,
        hidden: int,
        stride: int,
        kernels: list[int],
        splits: list[int],
        residual: bool,
    ) -> None:
        super().__init__()
        self.residual = residual
        self.conv = _ConvBN(cin, hidden)
        self.conv_dw = _MixedDepthwise(splits, kernels, stride)
        self.add_module("CA", _CoordAttention(hidden, learnt_pool=False))
        self.project = _ConvBN(hidden, cout, prelu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.get_submodule("CA")(self.conv_dw(self.conv(x))))
        return x + out if self.residual else out


class _MixStage(nn.Module):
    """``depth`` residual mixed blocks at constant width, kept in ``model`` (upstream Mix_Residual)."""

    def __init__(self, channels: int, depth: int, hidden: int, kernels: list[int], splits: list[int]) -> None:
        super().__init__()
        self.model = nn.Sequential(
            *(_MixBlock(channels, channels, hidden, 1, kernels, splits, True) for _ in range(depth))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _AttentionHead(nn.Module):
    """One dual-direction attention head (upstream CoordAttHead): a gate map over the 512x7x7 features."""

    def __init__(self, channels: int = 512) -> None:
        super().__init__()
        self.add_module("CoordAtt", _CoordAttention(channels, learnt_pool=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.get_submodule("CoordAtt")(x)


def _mixed_feature_net() -> nn.Sequential:
    """MixedFeatureNet up to ``conv_6_sep``: (B, 3, 112, 112) -> (B, 512, 7, 7)."""
    return nn.Sequential(
        _ConvBN(3, 64, 3, 2, 1),
        _ConvBN(64, 64, 3, 1, 1, groups=64),
        _MixBlock(64, 64, 128, 2, [3, 5, 7], [64, 32, 32], False),
        _MixStage(64, 9, 128, [3, 5], [96, 32]),
        _MixBlock(64, 128, 256, 2, [3, 5, 7], [128, 64, 64], False),
        _MixStage(128, 16, 256, [3, 5], [192, 64]),
        _MixBlock(128, 256, 1024, 2, [3, 5, 7, 9], [256, 256, 256, 256], False),
        _MixStage(256, 6, 512, [3, 5, 7], [172, 170, 170]),
        _ConvBN(256, 512),
    )


class DDAMFNBackbone(nn.Module):
    """Image (B, 3, 112, 112), ImageNet-normalised -> 512-d embedding (upstream DDAMNet without ``fc``)."""

    def __init__(self, embedding_dim: int = 512, num_head: int = 2) -> None:
        super().__init__()
        if embedding_dim != 512:
            raise ValueError(
                f"DDAMFN embeddings are 512-d (a depthwise 7x7 over 512 maps), got {embedding_dim}"
            )
        if num_head < 1:
            raise ValueError(f"num_head must be at least 1, got {num_head}")
        self.num_features = embedding_dim
        self.num_head = num_head
        self.features = _mixed_feature_net()
        for i in range(num_head):
            self.add_module(f"cat_head{i}", _AttentionHead())
        self.add_module("Linear", _ConvBN(512, 512, _MAP_SIDE, groups=512, prelu=False))

    def heads(self) -> list[nn.Module]:
        """The attention heads, in upstream order."""
        return [self.get_submodule(f"cat_head{i}") for i in range(self.num_head)]

    def forward_with_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Embedding (B, 512) and each head's attention map (B, 512, 7, 7), for the attention-diversity loss.

        Upstream's loss is ``n_pairs / (sum of pairwise MSE between maps + eps)``, weighted 0.1.
        """
        feats = self.features(x)
        if feats.shape[-2:] != (_MAP_SIDE, _MAP_SIDE):
            raise ValueError(f"DDAMFN needs 112x112 inputs, got {tuple(x.shape[-2:])}")
        maps = [head(feats) for head in self.heads()]
        attended = feats * reduce(torch.maximum, maps)
        return self.get_submodule("Linear")(attended).flatten(1), maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The 512-d embedding."""
        return self.forward_with_heads(x)[0]


def checkpoint_filter_fn(state_dict: StateDict) -> StateDict:
    """Map an upstream DDAMNet state dict (or a checkpoint holding one) to MultiTaskModel keys.

    Accepts ``{'model_state_dict': ...}`` / ``{'state_dict': ...}`` wrappers and DataParallel ``module.``
    prefixes; drops the upstream tensors that the forward pass never uses; ``fc.*`` becomes ``head.*`` and
    everything else ``backbone.*``. The head width is kept as is: an 8-class checkpoint does not fit a
    10-output model, and strict loading says so.
    """
    state = {key: value for key, value in plain_state_dict(state_dict).items() if not _UNUSED.match(key)}
    num_head = len({key.split(".")[0] for key in state if key.startswith("cat_head")})
    with torch.device("meta"):
        expected = set(DDAMFNBackbone(num_head=max(num_head, 1)).state_dict()) | {"fc.weight", "fc.bias"}
    check_keys(state, expected, "a DDAMNet state dict")
    return {
        (f"head.{key.removeprefix('fc.')}" if key.startswith("fc.") else f"backbone.{key}"): value
        for key, value in state.items()
    }


def _build(config: ModelConfig) -> nn.Module:
    return DDAMFNBackbone(embedding_dim=config.embedding_dim)


register_architecture("ddamfn", _build, checkpoint_filter_fn)
