"""MobileFaceNet: shapes, low-resolution builds and import of HSEmotion's ``mbf_va_mtl`` state dict."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from faceaffect.hub.registry import get_config
from faceaffect.models import create_model
from faceaffect.models.mobilefacenet import MobileFaceNet, checkpoint_filter_fn, gdc_kernel_size

# Keys and shapes of insightface arcface_torch ``get_mbf(fp16, 512)`` (scale 2, blocks (1, 4, 6, 2)): the
# module tree HSEmotion pickled in mbf_va_mtl.pt. 333 tensors in all.
UPSTREAM_SHAPES = {
    "layers.0.layers.0.weight": (128, 3, 3, 3),
    "layers.0.layers.2.weight": (128,),
    "layers.1.layers.0.weight": (128, 2, 3, 3),
    "layers.2.layers.0.layers.0.weight": (128, 128, 1, 1),
    "layers.2.layers.1.layers.0.weight": (128, 1, 3, 3),
    "layers.3.layers.3.layers.2.layers.1.running_var": (128,),
    "layers.4.layers.2.layers.0.weight": (256, 256, 1, 1),
    "layers.5.layers.5.layers.0.layers.0.weight": (256, 256, 1, 1),
    "layers.6.layers.0.layers.0.weight": (512, 256, 1, 1),
    "layers.7.layers.1.layers.2.layers.0.weight": (256, 256, 1, 1),
    "conv_sep.layers.0.weight": (512, 256, 1, 1),
    "features.layers.0.layers.0.weight": (512, 1, 7, 7),
    "features.layers.2.weight": (512, 512),
    "features.layers.3.running_mean": (512,),
}
UPSTREAM_KEY_COUNT = 333


def _randomise(module: nn.Module) -> nn.Module:
    """Non-trivial norm statistics and PReLU slopes, so that any mis-mapped tensor changes the outputs."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.BatchNorm1d | nn.BatchNorm2d):
                sub.running_mean.uniform_(-0.5, 0.5)
                sub.running_var.uniform_(0.5, 1.5)
                sub.weight.uniform_(0.5, 1.5)
                sub.bias.uniform_(-0.2, 0.2)
            elif isinstance(sub, nn.PReLU):
                sub.weight.uniform_(0.0, 0.5)
    return module.eval()


class _FcOnTop(MobileFaceNet):
    """The classifier as an attribute of the MobileFaceNet itself (backbone keys without any prefix)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(512, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(super().forward(x))


def _upstream_style(layout: str) -> nn.Module:
    if layout == "named":
        return nn.Sequential(OrderedDict(backbone=MobileFaceNet(), fc=nn.Linear(512, 10)))
    if layout == "indexed":  # nn.Sequential(mbf) with ``fc`` set as an attribute: keys "0.*" and "fc.*"
        wrapper = nn.Sequential(MobileFaceNet())
        wrapper.fc = nn.Linear(512, 10)
        return wrapper
    return _FcOnTop()


def test_mbf_va_mtl_shapes() -> None:
    model = create_model("mbf_va_mtl")
    images = torch.randn(2, 3, 112, 112)
    with torch.inference_mode():
        assert model.forward_features(images).shape == (2, 512)
        assert model(images).shape == (2, 10)
    assert model.backbone.num_features == 512
    assert 1.9e6 < sum(p.numel() for p in model.backbone.parameters()) < 2.2e6  # 2,059,520 as insightface's


@pytest.mark.parametrize(("size", "kernel"), [(112, 7), (64, 4), (48, 3)])
def test_other_input_sizes(size: int, kernel: int) -> None:
    net = MobileFaceNet(embedding_dim=128, input_size=size).eval()
    assert gdc_kernel_size(size) == kernel
    assert net.features.layers[0].layers[0].kernel_size == (kernel, kernel)
    with torch.inference_mode():
        assert net(torch.randn(2, 3, size, size)).shape == (2, 128)
    assert net.num_features == 128


def test_flip_average_is_the_mean_of_both_views_in_eval_mode_only() -> None:
    config = get_config("mbf_va_mtl").replace(input_size=48, flip_average=True)
    plain = create_model(config.replace(flip_average=False))
    averaged = create_model(config)
    averaged.load_state_dict(plain.state_dict())
    images = torch.randn(3, 3, 48, 48)
    with torch.inference_mode():
        torch.testing.assert_close(averaged(images), (plain(images) + plain(images.flip(-1))) / 2)
        torch.testing.assert_close(averaged(images.flip(-1)), averaged(images))
        torch.testing.assert_close(averaged.train()(images), plain.train()(images))  # training sees one view


def test_input_size_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="input_size"):
        MobileFaceNet(input_size=64).eval()(torch.randn(1, 3, 112, 112))


def test_key_layout_matches_insightface() -> None:
    state = MobileFaceNet().state_dict()
    assert len(state) == UPSTREAM_KEY_COUNT
    assert {key: tuple(state[key].shape) for key in UPSTREAM_SHAPES} == UPSTREAM_SHAPES


@pytest.mark.parametrize("layout", ["named", "indexed", "flat"])
def test_checkpoint_round_trip(layout: str) -> None:
    reference = _randomise(_upstream_style(layout))
    mapped = checkpoint_filter_fn(reference.state_dict())
    assert set(mapped) == {f"backbone.{key}" for key in MobileFaceNet().state_dict()} | {
        "head.weight",
        "head.bias",
    }
    model = create_model("mbf_va_mtl")
    model.load_state_dict(mapped, strict=True)
    images = torch.randn(2, 3, 112, 112)
    with torch.inference_mode():
        torch.testing.assert_close(model(images), reference(images))


def test_checkpoint_that_does_not_fit_is_named() -> None:
    with torch.device("meta"):
        state = nn.Sequential(MobileFaceNet(), nn.Linear(512, 10)).state_dict()
    assert set(checkpoint_filter_fn(state)) >= {"head.weight", "backbone.conv_sep.layers.2.weight"}
    missing = {key: value for key, value in state.items() if key != "0.conv_sep.layers.2.weight"}
    with pytest.raises(ValueError, match=r"missing keys \['conv_sep.layers.2.weight'\]"):
        checkpoint_filter_fn(missing)
    with pytest.raises(ValueError, match=r"unexpected keys \['layers.8.weight'\]"):
        checkpoint_filter_fn({**state, "0.layers.8.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="one Linear classifier"):
        checkpoint_filter_fn({**state, "extra.weight": torch.zeros(3, 512), "extra.bias": torch.zeros(3)})
    with pytest.raises(ValueError, match="one MobileFaceNet"):
        checkpoint_filter_fn({"fc.weight": torch.zeros(10, 512)})
