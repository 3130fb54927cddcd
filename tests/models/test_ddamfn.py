"""DDAMFN: shapes, attention heads and import of upstream DDAMNet state dicts."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
import torch
from torch import nn

from faceaffect.models import create_model
from faceaffect.models.ddamfn import DDAMFNBackbone, checkpoint_filter_fn

# Keys and shapes of upstream ``DDAMNet(num_class=8, num_head=2)`` (SainingZhang/DDAMFN networks/DDAM.py):
# 1190 tensors, 221 of them in modules its forward never calls (MDConv.bn/prelu, CoordAtt.Linear, DDAMNet.bn).
UPSTREAM_SHAPES = {
    "features.0.conv.weight": (64, 3, 3, 3),
    "features.0.prelu.weight": (64,),
    "features.1.conv.weight": (64, 1, 3, 3),
    "features.2.conv.conv.weight": (128, 64, 1, 1),
    "features.2.conv_dw.mixed_depthwise_conv.2.weight": (32, 1, 7, 7),
    "features.2.CA.conv1.weight": (8, 128, 1, 1),
    "features.2.CA.conv2.bias": (128,),
    "features.2.project.bn.running_var": (64,),
    "features.3.model.8.conv_dw.mixed_depthwise_conv.0.weight": (96, 1, 3, 3),
    "features.6.conv_dw.mixed_depthwise_conv.3.weight": (256, 1, 9, 9),
    "features.6.CA.conv1.weight": (32, 1024, 1, 1),
    "features.7.model.5.conv_dw.mixed_depthwise_conv.0.weight": (172, 1, 3, 3),
    "features.8.conv.weight": (512, 256, 1, 1),
    "cat_head1.CoordAtt.Linear_h.conv.weight": (512, 1, 1, 7),
    "cat_head1.CoordAtt.Linear_w.conv.weight": (512, 1, 7, 1),
    "cat_head0.CoordAtt.conv1.weight": (16, 512, 1, 1),
    "cat_head0.CoordAtt.bn1.running_mean": (16,),
    "cat_head0.CoordAtt.conv3.weight": (512, 16, 1, 1),
    "Linear.conv.weight": (512, 1, 7, 7),
    "Linear.bn.weight": (512,),
}
UPSTREAM_KEY_COUNT, UPSTREAM_UNUSED_COUNT = 1190, 221


def _batchnorm(prefix: str, channels: int) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.weight": torch.rand(channels),
        f"{prefix}.bias": torch.rand(channels),
        f"{prefix}.running_mean": torch.rand(channels),
        f"{prefix}.running_var": torch.rand(channels),
        f"{prefix}.num_batches_tracked": torch.tensor(7),
    }


def _upstream_state(backbone: DDAMFNBackbone, fc: nn.Linear) -> dict[str, torch.Tensor]:
    """``backbone`` + ``fc`` as upstream DDAMNet names them, with its unused tensors added."""
    state = dict(backbone.state_dict())
    mixed: dict[str, int] = defaultdict(int)
    for key, value in state.items():
        if match := re.fullmatch(r"(.*\.conv_dw)\.mixed_depthwise_conv\.\d+\.weight", key):
            mixed[match.group(1)] += value.shape[0]
    extras: dict[str, torch.Tensor] = _batchnorm("bn", fc.out_features)
    for prefix, channels in mixed.items():
        extras |= _batchnorm(f"{prefix}.bn", channels) | {f"{prefix}.prelu.weight": torch.rand(channels)}
    for i in range(backbone.num_head):
        extras[f"cat_head{i}.CoordAtt.Linear.conv.weight"] = torch.rand(512, 1, 7, 7)
        extras |= _batchnorm(f"cat_head{i}.CoordAtt.Linear.bn", 512)
    return state | extras | {"fc.weight": fc.weight.detach(), "fc.bias": fc.bias.detach()}


def _randomise(module: nn.Module) -> nn.Module:
    """Non-trivial norm statistics and PReLU slopes, so that any mis-mapped tensor changes the outputs."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.BatchNorm2d):
                sub.running_mean.uniform_(-0.5, 0.5)
                sub.running_var.uniform_(0.5, 1.5)
                sub.weight.uniform_(0.5, 1.5)
                sub.bias.uniform_(-0.2, 0.2)
            elif isinstance(sub, nn.PReLU):
                sub.weight.uniform_(0.0, 0.5)
    return module.eval()


@pytest.mark.parametrize(("name", "outputs"), [("ddamfn_8", 8), ("ddamfn_va_mtl", 10)])
def test_shapes_and_heads(name: str, outputs: int) -> None:
    model = create_model(name)
    images = torch.randn(2, 3, 112, 112)
    with torch.inference_mode():
        embedding = model.forward_features(images)
        again, maps = model.backbone.forward_with_heads(images)
        assert model(images).shape == (2, outputs)
    assert embedding.shape == (2, 512) and model.backbone.num_features == 512
    torch.testing.assert_close(again, embedding)
    assert [tuple(m.shape) for m in maps] == [(2, 512, 7, 7)] * 2
    assert 4.0e6 < sum(p.numel() for p in model.backbone.parameters()) < 4.2e6  # 4,102,408


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="512-d"):
        DDAMFNBackbone(embedding_dim=256)
    with pytest.raises(ValueError, match="112x112"):
        DDAMFNBackbone().eval()(torch.randn(1, 3, 96, 96))


def test_key_layout_matches_upstream() -> None:
    with torch.device("meta"):
        backbone = DDAMFNBackbone()
    upstream = _upstream_state(backbone, nn.Linear(512, 8, device="meta"))
    assert len(upstream) == UPSTREAM_KEY_COUNT
    assert {key: tuple(upstream[key].shape) for key in UPSTREAM_SHAPES} == UPSTREAM_SHAPES
    assert len(checkpoint_filter_fn(upstream)) == UPSTREAM_KEY_COUNT - UPSTREAM_UNUSED_COUNT


@pytest.mark.parametrize("wrapper", ["model_state_dict", "state_dict", "data_parallel", None])
def test_checkpoint_round_trip(wrapper: str | None) -> None:
    source, fc = _randomise(DDAMFNBackbone()), nn.Linear(512, 10)
    state = _upstream_state(source, fc)
    if wrapper == "data_parallel":
        checkpoint = {"model_state_dict": {f"module.{key}": value for key, value in state.items()}}
    else:
        checkpoint = {wrapper: state, "iter": 9} if wrapper else state
    model = create_model("ddamfn_va_mtl")
    model.load_state_dict(checkpoint_filter_fn(checkpoint), strict=True)
    images = torch.randn(2, 3, 112, 112)
    with torch.inference_mode():
        torch.testing.assert_close(model(images), fc(source(images)))


def test_head_width_is_not_reshaped() -> None:
    with torch.device("meta"):
        state = _upstream_state(DDAMFNBackbone(), nn.Linear(512, 8))
    mapped = checkpoint_filter_fn(state)
    assert mapped["head.weight"].shape == (8, 512)
    with pytest.raises(RuntimeError, match=r"head\.weight"):
        create_model("ddamfn_va_mtl").load_state_dict(mapped, strict=True)


def test_checkpoint_that_does_not_fit_is_named() -> None:
    with torch.device("meta"):
        state = _upstream_state(DDAMFNBackbone(), nn.Linear(512, 8))
    missing = {key: value for key, value in state.items() if key != "cat_head0.CoordAtt.conv1.weight"}
    with pytest.raises(ValueError, match=r"missing keys \['cat_head0.CoordAtt.conv1.weight'\]"):
        checkpoint_filter_fn(missing)
    with pytest.raises(ValueError, match=r"unexpected keys \['features.9.conv.weight'\]"):
        checkpoint_filter_fn({**state, "features.9.conv.weight": torch.zeros(1)})
