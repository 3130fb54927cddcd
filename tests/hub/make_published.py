"""Weight files with the structure of the published HSEmotion files, rebuilt from seeds without old timm.

The published ``.pt`` files are whole modules written by ``torch.save`` (see ``torch_records``). Three are
reproduced, with the registered models' names:

- ``enet_b0_7``: timm 0.6 module paths (``timm.models.efficientnet_blocks``, ``timm.models.layers.*``), the
  module attributes of torch 1.12, classifier ``Sequential(Linear)``;
- ``enet_b0_8_va_mtl``: timm 0.9 paths (``timm.models._efficientnet_blocks``, ``timm.layers.*``), torch 2.0,
  classifier ``Linear``; and its ONNX file, exported as upstream did (opset 11, dynamic batch, TF "same"
  padding that the graph computes from the input's shape);
- ``mbf_va_mtl``: the upstream ``mobilefacenet`` module's classes in an ``nn.Sequential`` beside ``fc``,
  torch 2.0, storages saved on ``cuda:0``.

Weights are seeded; BatchNorm statistics were measured once on seeded images (so activations keep their scale)
and are stored as float16 in ``published/<model>.bn.npy``. The files (8-16 MB) are not committed: the tests
rebuild them and check their sha256 against ``published/manifest.json``. The reference outputs beside it come
from the original architectures holding the same weights: timm's EfficientNet, the module upstream pickled;
for MobileFaceNet, the upstream classes' forward applied record by record (``_mobilefacenet_forward``).

    python tests/hub/make_published.py   # re-measure statistics, rewrite references and manifest

Structure established from the upstream training notebooks and ``convert_pt_to_onnx.py`` of
av-savchenko/face-emotion-recognition (``torch.save(model, PATH)``, the classifier replacements, the export
call, ``import mobilefacenet`` from insightface's arcface_torch backbones, ``model.fc``), its history (which
file was re-saved for which timm), hsemotion and EmotiEffLib (how they read the classifier), the timm 0.6.13
and 0.9.7 sources, and pickles of the same models written with those timm versions, compared record by record.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch_records import Call, Record, Tree, save, state_dict, walk

PUBLISHED = Path(__file__).resolve().parent / "published"
IMAGE_SEED, IMAGE_COUNT, CALIBRATION_SEED = 2024, 3, 7
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

# ---------------------------------------------------------------- EfficientNet-B0 as timm 0.6 / 0.9 pickle it

B0_STAGES = (  # block, repeats, kernel, first stride, expansion, channels: timm's tf_efficientnet_b0
    ("ds", 1, 3, 1, 1, 16), ("ir", 2, 3, 2, 6, 24), ("ir", 2, 5, 2, 6, 40), ("ir", 3, 3, 2, 6, 80),
    ("ir", 3, 5, 1, 6, 112), ("ir", 4, 5, 2, 6, 192), ("ir", 1, 3, 1, 6, 320),
)  # fmt: skip
TIMM_PATHS = {  # blocks module, layers package: 0.9 moved both
    "0.6.13": ("timm.models.efficientnet_blocks", "timm.models.layers"),
    "0.9.7": ("timm.models._efficientnet_blocks", "timm.layers"),
}
NN = "torch.nn.modules."
IDENTITY, SILU = f"{NN}linear.Identity", f"{NN}activation.SiLU"


def efficientnet_b0(timm_version: str, torch_version: str, sequential_head: bool, outputs: int) -> Record:
    """``timm.create_model('tf_efficientnet_b0_ns')`` with its classifier replaced, as HSEmotion saved it."""
    blocks, layers = TIMM_PATHS[timm_version]
    t = Tree(torch_version)

    def conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> Record:
        if stride == 1:
            return t.conv(cin, cout, k, 1, k // 2, groups)
        # TF "same" padding of a strided convolution depends on the input's size: timm's Conv2dSame
        return t.conv(cin, cout, k, stride, 0, groups, path=f"{layers}.conv2d_same.Conv2dSame")

    def bn_act(c: int, act: bool = True) -> Record:
        activation = t.module(SILU, inplace=True) if act else t.module(IDENTITY)
        children = {"drop": t.module(IDENTITY), "act": activation}
        return t.batchnorm(c, f"{layers}.norm_act.BatchNormAct2d", 1e-3, children)

    def se(c: int, reduced: int) -> Record:
        parts = {"conv_reduce": t.conv(c, reduced, 1, bias=True), "act1": t.module(SILU, inplace=True)}
        parts |= {
            "conv_expand": t.conv(reduced, c, 1, bias=True),
            "gate": t.module(f"{NN}activation.Sigmoid"),
        }
        return t.module(f"{blocks}.SqueezeExcite", parts)

    def block(kind: str, cin: int, cout: int, k: int, stride: int, expansion: int) -> Record:
        skip, drop = stride == 1 and cin == cout, t.module(IDENTITY)
        if kind == "ds":
            parts = {"conv_dw": conv(cin, cin, k, stride, cin), "bn1": bn_act(cin), "se": se(cin, cin // 4)}
            parts |= {"conv_pw": conv(cin, cout, 1), "bn2": bn_act(cout, False), "drop_path": drop}
            return t.module(f"{blocks}.DepthwiseSeparableConv", parts, has_skip=skip, has_pw_act=False)
        mid = cin * expansion
        parts = {"conv_pw": conv(cin, mid, 1), "bn1": bn_act(mid), "conv_dw": conv(mid, mid, k, stride, mid)}
        parts |= {"bn2": bn_act(mid), "se": se(mid, cin // 4), "conv_pwl": conv(mid, cout, 1)}
        parts |= {"bn3": bn_act(cout, False), "drop_path": drop}
        return t.module(f"{blocks}.InvertedResidual", parts, has_skip=skip)

    stages, cin = [], 32
    for kind, repeats, k, stride, expansion, cout in B0_STAGES:
        first = block(kind, cin, cout, k, stride, expansion)
        rest = (block(kind, cout, cout, k, 1, expansion) for _ in range(repeats - 1))
        stages.append(t.sequential(first, *rest))
        cin = cout
    pool = t.module(f"{NN}pooling.AdaptiveAvgPool2d", output_size=1)
    flatten = t.module(f"{NN}flatten.Flatten", start_dim=1, end_dim=-1)
    old = timm_version.startswith("0.6")  # made its flatten first
    pooling = {"flatten": flatten, "pool": pool} if old else {"pool": pool, "flatten": flatten}
    head = t.linear(1280, outputs)
    children = {"conv_stem": conv(3, 32, 3, 2), "bn1": bn_act(32), "blocks": t.sequential(*stages)}
    children |= {
        "conv_head": conv(320, 1280, 1),
        "bn2": bn_act(1280),
        "global_pool": t.module(
            f"{layers}.adaptive_avgmax_pool.SelectAdaptivePool2d", pooling, pool_type="avg"
        ),
        "classifier": t.sequential(head) if sequential_head else head,
    }
    return t.module("timm.models.efficientnet.EfficientNet", children, **_efficientnet_attrs(timm_version))


def _efficientnet_attrs(timm_version: str) -> dict[str, Any]:
    """The plain attributes of timm's EfficientNet, for the ``_ns`` model HSEmotion started from."""
    old = timm_version.startswith("0.6")
    info = [  # 0.6 names each stage's last block and a hook type
        {"stage": stage, "reduction": reduction, "module": f"blocks.{block if old else block[0]}"}
        | ({"hook_type": ""} if old else {})
        | {"num_chs": channels}
        for stage, reduction, channels, block in ((1, 2, 16, "0.0"), (2, 4, 24, "1.1"), (3, 8, 40, "2.1"),
                                                  (5, 16, 112, "4.2"), (7, 32, 320, "6.0"))
    ]  # fmt: skip
    url = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/"
    url += "tf_efficientnet_b0_ns-c0e6a31c.pth"
    size, pool, crop = (3, 224, 224), (7, 7), 0.875
    norm = {"mean": IMAGENET[0], "std": IMAGENET[1]}
    names = {"first_conv": "conv_stem", "classifier": "classifier"}
    if old:
        cfg = {"url": url, "num_classes": 1000, "input_size": size, "pool_size": pool, "crop_pct": crop}
        cfg |= {"interpolation": "bicubic", **norm, **names, "architecture": "tf_efficientnet_b0_ns"}
    else:  # the fields of 0.9's PretrainedCfg
        cfg = {"url": url, "hf_hub_id": "timm/tf_efficientnet_b0.ns_jft_in1k"}
        cfg |= {"architecture": "tf_efficientnet_b0", "tag": "ns_jft_in1k", "custom_load": False}
        cfg |= {"input_size": size, "fixed_input_size": False, "interpolation": "bicubic", "crop_pct": crop}
        cfg |= {"crop_mode": "center", **norm, "num_classes": 1000, "pool_size": pool, **names}
    attrs = {"num_classes": 1000, "num_features": 1280, "drop_rate": 0.0, "grad_checkpointing": False}
    return attrs | {"feature_info": info, "pretrained_cfg": cfg, "default_cfg": dict(cfg)}


# ---------------------------------------------------------------- MobileFaceNet as upstream pickled it


def mobilefacenet_fc(torch_version: str, outputs: int) -> Record:
    """insightface's ``get_mbf`` (scale 2, blocks 1-4-6-2, 512-d GDC) in an ``nn.Sequential`` before ``fc``
    (upstream reads ``model.fc``; the name of the backbone's slot is not established, ``0`` here)."""
    t = Tree(torch_version)

    def conv_block(cin: int, cout: int, k: int = 1, stride: int = 1, pad: int = 0, groups: int = 1,
                   prelu: bool = True) -> Record:  # fmt: skip
        parts = [t.conv(cin, cout, k, stride, pad, groups), t.batchnorm(cout)]
        if prelu:
            parts.append(t.prelu(cout))
        name = "ConvBlock" if prelu else "LinearBlock"
        return t.module(f"mobilefacenet.{name}", {"layers": t.sequential(*parts)})

    def depthwise(cin: int, cout: int, groups: int, stride: int = 2, residual: bool = False) -> Record:
        parts = [conv_block(cin, groups), conv_block(groups, groups, 3, stride, 1, groups)]
        parts.append(conv_block(groups, cout, prelu=False))
        return t.module("mobilefacenet.DepthWise", {"layers": t.sequential(*parts)}, residual=residual)

    def residual(c: int, depth: int, groups: int) -> Record:
        parts = (depthwise(c, c, groups, 1, True) for _ in range(depth))
        return t.module("mobilefacenet.Residual", {"layers": t.sequential(*parts)})

    stem = [conv_block(3, 128, 3, 2, 1), conv_block(128, 128, 3, 1, 1, groups=64)]
    body = [depthwise(128, 128, 128), residual(128, 4, 128), depthwise(128, 256, 256), residual(256, 6, 256)]
    body += [depthwise(256, 256, 512), residual(256, 2, 256)]
    gdc = t.sequential(
        conv_block(512, 512, 7, groups=512, prelu=False),
        t.module("mobilefacenet.Flatten"),
        t.linear(512, 512, bias=False),
        t.batchnorm(512, f"{NN}batchnorm.BatchNorm1d"),
    )
    children = {"layers": t.sequential(*stem, *body, path=f"{NN}container.ModuleList")}
    children |= {"conv_sep": conv_block(256, 512), "features": t.module("mobilefacenet.GDC", {"layers": gdc})}
    backbone = t.module("mobilefacenet.MobileFaceNet", children, scale=2, fp16=False)
    return t.sequential(backbone, t.linear(512, outputs), names=("0", "fc"))


def _mobilefacenet_forward(record: Record, x: torch.Tensor, calibrate: bool = False) -> torch.Tensor:
    """The forward of the upstream module a record stands for, chosen by its class name; ``calibrate`` sets
    each BatchNorm's statistics to those of ``x`` first (what one pass in training mode measures)."""
    p, a, b = record.params, record.attrs, record.buffers
    if record.kind == "Conv2d":
        return F.conv2d(x, p["weight"], p["bias"], a["stride"], a["padding"], a["dilation"], a["groups"])
    if record.kind.startswith("BatchNorm"):
        if calibrate:
            dims = [0, *range(2, x.ndim)]
            b["running_mean"], b["running_var"] = x.mean(dims), x.var(dims)
        return F.batch_norm(x, b["running_mean"], b["running_var"], p["weight"], p["bias"], eps=a["eps"])
    if record.kind == "PReLU":
        return F.prelu(x, p["weight"])
    if record.kind == "Linear":
        return F.linear(x, p["weight"], p["bias"])
    if record.kind == "Flatten":
        return x.view(x.size(0), -1)
    out = x  # containers and blocks: their children in order, plus the shortcut of residual DepthWise
    for child in record.children.values():
        out = _mobilefacenet_forward(child, out, calibrate)
    return x + out if a.get("residual") else out


# ---------------------------------------------------------------- the fixtures


@dataclass(frozen=True)
class Fixture:
    """One published file reproduced: the registered model it stands for, its records, seed and input, where
    its hostile variant slips a call in (record path, attribute, function), its classifier's weight scale."""

    model: str
    seed: int
    records: Callable[[], Record]
    input_size: int
    mean_std: tuple[tuple[float, ...], tuple[float, ...]]
    hostile: tuple[str, str, Callable[..., Any]]
    head_std: float  # large enough that the logits differ between images
    location: str = "cpu"
    onnx: bool = False

    @property
    def filename(self) -> str:
        return f"{self.model}.pt"


FIXTURES = {
    fixture.model: fixture
    for fixture in (
        Fixture("enet_b0_7", 7, lambda: efficientnet_b0("0.6.13", "1.12", True, 7), 224, IMAGENET,
                ("blocks.3.1.se", "_forward_hooks", os.system), 0.1),
        Fixture("enet_b0_8_va_mtl", 8, lambda: efficientnet_b0("0.9.7", "2.0", False, 10), 224, IMAGENET,
                ("", "default_cfg", builtins.eval), 0.1, onnx=True),
        Fixture("mbf_va_mtl", 10, lambda: mobilefacenet_fc("2.0", 10), 112, HALF,
                ("0.features", "_state_dict_hooks", subprocess.Popen), 0.05, location="cuda:0"),
    )
}  # fmt: skip
HEADS = ("classifier", "classifier.0", "fc")
STATISTICS = ("running_mean", "running_var")


def _values(fixture: Fixture, path: str, record: Record, name: str, rs: np.random.RandomState) -> np.ndarray:
    shape = record.params.get(name) or record.buffers[name]
    if name == "running_var":
        return rs.uniform(0.5, 1.5, shape)
    if name in ("running_mean", "bias"):
        return rs.standard_normal(shape) * 0.1
    if record.kind.startswith("BatchNorm"):
        return 1.0 + rs.standard_normal(shape) * 0.1
    if record.kind == "PReLU":
        return 0.25 + rs.standard_normal(shape) * 0.05
    if path in HEADS:
        return rs.standard_normal(shape) * fixture.head_std
    gain = 2.0 if record.kind.startswith("Conv") else 1.0
    return rs.standard_normal(shape) * np.sqrt(gain / np.prod(shape[1:]))


def build(fixture: Fixture, *, measured: bool = True) -> Record:
    """The fixture's records with its seeded weights and, when ``measured``, the stored BatchNorm statistics
    (``published/<model>.bn.npy``: each BatchNorm's running mean then var, in ``state_dict`` order)."""
    root = fixture.records()
    rs = np.random.RandomState(fixture.seed)
    for path, record in walk(root):
        for table in (record.params, record.buffers):
            for name in [name for name, shape in table.items() if shape is not None]:
                if name == "num_batches_tracked":
                    table[name] = torch.tensor(int(rs.randint(1, 10**6)))
                else:
                    values = _values(fixture, path, record, name, rs)
                    table[name] = torch.from_numpy(values.astype(np.float32))
    if measured:
        statistics = iter(np.load(PUBLISHED / f"{fixture.model}.bn.npy").astype(np.float32))
        for _, record in _batchnorms(root):
            for name in STATISTICS:
                size = record.buffers[name].numel()
                record.buffers[name] = torch.from_numpy(np.fromiter(statistics, np.float32, size))
    return root


def _batchnorms(root: Record) -> list[tuple[str, Record]]:
    return [(path, record) for path, record in walk(root) if "running_var" in record.buffers]


def write_pickle(fixture: Fixture, folder: Path, *, hostile_command: str | None = None) -> Path:
    """Write the fixture's ``.pt`` file into ``folder``. With ``hostile_command``: ``hostile_<model>.pt``, the
    same file with a call that runs the shell command slipped into its module tree."""
    root = build(fixture)
    if hostile_command is None:
        return save(root, folder / fixture.filename, fixture.location)
    where, key, func = fixture.hostile
    args = {
        builtins.eval: (f"__import__('os').system({hostile_command!r})",),
        subprocess.Popen: (["sh", "-c", hostile_command],),
    }.get(func, (hostile_command,))
    target = dict(walk(root))[where]
    if key.startswith("_"):
        target.hooks[key] = {0: Call(func, *args)}
    else:
        target.attrs[key] = Call(func, *args)
    return save(root, folder / f"hostile_{fixture.filename}", fixture.location)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def input_images(size: int, seed: int = IMAGE_SEED, count: int = IMAGE_COUNT) -> np.ndarray:
    """Seeded RGB uint8 images (N, size, size, 3): coloured 8x8 blocks with pixel noise."""
    rs = np.random.RandomState(seed)
    blocks = rs.randint(0, 256, (count, 8, 8, 3))
    images = np.repeat(np.repeat(blocks, size // 8, axis=1), size // 8, axis=2)
    return np.clip(images + rs.randint(-24, 25, images.shape), 0, 255).astype(np.uint8)


def normalized(images: np.ndarray, fixture: Fixture) -> torch.Tensor:
    """The upstream transform: ToTensor (x / 255, channels first), then Normalize(mean, std)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in fixture.mean_std)
    return (x - mean) / std


def original_efficientnet(root: Record) -> torch.nn.Module:
    """timm's EfficientNet-B0 with the record's classifier and weights: the module upstream pickled and
    exported (loading ``strict`` also proves that the records hold its every key and shape)."""
    from faceaffect.hub.registry import get_config
    from faceaffect.models.timm_backbones import create_timm_backbone

    model = create_timm_backbone(get_config("enet_b0_8_va_mtl"))  # num_classes=0: classifier set below
    head = root.children["classifier"]
    layer = torch.nn.Linear(1280, head.children.get("0", head).attrs["out_features"])
    model.classifier = torch.nn.Sequential(layer) if head.children else layer
    model.load_state_dict(state_dict(root), strict=True)
    return model.eval()


@torch.no_grad()
def reference_outputs(fixture: Fixture, root: Record) -> tuple[np.ndarray, np.ndarray]:
    """The original module's outputs (published layout) and embeddings (its classifier's input)."""
    x = normalized(input_images(fixture.input_size), fixture)
    if "classifier" in root.children:
        model = original_efficientnet(root)
        embedding = model.forward_head(model.forward_features(x), pre_logits=True)
        return model(x).numpy(), embedding.numpy()
    embedding = _mobilefacenet_forward(root.children["0"], x)
    return _mobilefacenet_forward(root.children["fc"], embedding).numpy(), embedding.numpy()


@torch.no_grad()
def measure_statistics(fixture: Fixture) -> np.ndarray:
    """BatchNorm statistics of the seeded weights on 8 seeded images (one pass in training mode), float16."""
    root = build(fixture, measured=False)
    x = normalized(input_images(fixture.input_size, CALIBRATION_SEED, 8), fixture)
    if "classifier" in root.children:
        model = original_efficientnet(root)
        for norm in model.modules():
            if isinstance(norm, torch.nn.modules.batchnorm._BatchNorm):
                norm.reset_running_stats()
                norm.momentum = None  # the average over one pass: that batch's statistics
        model.train()(x)
        measured = model.state_dict()
        values = [measured[f"{path}.{name}"] for path, _ in _batchnorms(root) for name in STATISTICS]
    else:
        _mobilefacenet_forward(root, x, calibrate=True)
        values = [record.buffers[name] for _, record in _batchnorms(root) for name in STATISTICS]
    return torch.cat(values).numpy().astype(np.float16)


def write_onnx(fixture: Fixture, folder: Path) -> Path:
    """The ONNX file as upstream made it: ``torch.onnx.export`` of the pickled module, opset 11, a dynamic
    batch, and TF "same" padding that the graph computes from the input's shape."""
    model = original_efficientnet(build(fixture))
    path = folder / f"{fixture.model}.onnx"
    axes = {"input": {0: "batch_size"}, "output": {0: "batch_size"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation, tracer warnings
        torch.onnx.export(
            model, (torch.zeros(1, 3, 224, 224),), str(path), opset_version=11, do_constant_folding=True,
            export_params=True, input_names=["input"], output_names=["output"], dynamic_axes=axes,
            dynamo=False,
        )  # fmt: skip
    return path


def manifest() -> dict[str, Any]:
    return json.loads((PUBLISHED / "manifest.json").read_text())


def reference(model: str) -> tuple[np.ndarray, np.ndarray]:
    """The stored reference outputs and embeddings of a fixture."""
    return np.load(PUBLISHED / f"{model}.output.npy"), np.load(PUBLISHED / f"{model}.embedding.npy")


def main() -> None:
    """Re-measure the statistics, rewrite the reference outputs and the manifest (sizes, sha256)."""
    import tempfile
    from importlib.metadata import version

    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fixture in FIXTURES.values():
            np.save(PUBLISHED / f"{fixture.model}.bn.npy", measure_statistics(fixture))
            path = write_pickle(fixture, Path(tmp))
            output, embedding = reference_outputs(fixture, build(fixture))
            np.save(PUBLISHED / f"{fixture.model}.output.npy", output)
            np.save(PUBLISHED / f"{fixture.model}.embedding.npy", embedding)
            files[fixture.model] = {"file": path.name, "bytes": path.stat().st_size, "sha256": sha256(path)}
            print(f"{path.name}: {path.stat().st_size} bytes, outputs {output.shape}")
    made_with = {name: version(name) for name in ("torch", "timm", "numpy")}
    text = json.dumps({"made_with": made_with, "files": files}, indent=2)
    (PUBLISHED / "manifest.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
