"""Model registry: every model by name, with everything needed to build, feed and read it.

>>> get_config("enet_b0_8_va_mtl").input_size
224
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from faceaffect.core.errors import FaceaffectError, UnknownModelError
from faceaffect.core.labels import LABEL_SETS, label_set
from faceaffect.core.validate import check_fields, check_range

Vector = tuple[float, float, float]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)

WEIGHT_FORMATS = ("hsemotion_pickle", "state_dict", "onnx", "safetensors")
INPUT_SIZES = (16, 1024)  # the square input a config may ask for, in pixels (published models: 64-260)
_HEX = re.compile(r"[0-9a-fA-F]+")
DEFAULT_MODEL = "mbf_ferplus_8"  # embedded in the package: works offline, no download
UPSTREAM = "https://github.com/av-savchenko/face-emotion-recognition/blob/main/models/"


@dataclass(frozen=True)
class WeightSource:
    """Where a published weight file lives and how to verify and read it.

    ``format`` is one of ``hsemotion_pickle`` (whole pickled torch module, read by the restricted unpickler),
    ``state_dict`` (a pickled state dict, e.g. upstream DDAMFN), ``onnx`` or ``safetensors`` (our own format).
    A file is verified by ``sha256`` when known, else by its ``git_sha1`` blob id.
    """

    url: str
    format: str
    sha256: str | None = None
    git_sha1: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        check_fields(self, "weight source")
        check_range(self, "weight source", "size", 1)
        if self.format not in WEIGHT_FORMATS:
            raise FaceaffectError(f"unknown weight format {self.format!r}; use {', '.join(WEIGHT_FORMATS)}")
        if not self.url.startswith(("https://", "http://", "package:")):
            raise FaceaffectError(f"weight URL {self.url!r} is neither http(s):// nor package:")
        if self.url.startswith("package:") and ".." in self.url.split("/"):
            raise FaceaffectError(f"weight URL {self.url!r} names a file outside the faceaffect package")
        for name, length in (("sha256", 64), ("git_sha1", 40)):
            digest = getattr(self, name)
            if digest is not None and (len(digest) != length or not _HEX.fullmatch(digest)):
                raise FaceaffectError(f"weight source {name} must be {length} hex digits, got {digest!r}")

    @property
    def filename(self) -> str:
        return self.url.split("?")[0].rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture, preprocessing, label set and output layout of one model.

    Output layout: ``len(labels)`` expression logits, then valence and arousal when ``has_va``.
    ``grayscale``: crops are turned grey before the network (models trained on grey photos, e.g. FER+).
    ``flip_average``: the network embeds each face and its mirror image and averages them (eval mode).
    ``extra``: free-form notes (provenance); nothing reads them.
    """

    name: str
    arch: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    label_set: str
    has_va: bool
    embedding_dim: int
    weights: WeightSource | None = None
    onnx: WeightSource | None = None
    description: str = ""
    grayscale: bool = False
    flip_average: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> tuple[str, ...]:
        return label_set(self.label_set)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def num_outputs(self) -> int:
        return self.num_classes + (2 if self.has_va else 0)

    def __post_init__(self) -> None:
        what = f"model config {self.name!r}:" if isinstance(self.name, str) else "model config"
        check_fields(self, what)
        if not self.name or not self.name.isprintable():
            raise FaceaffectError(f"{what} name must be printable text, got {self.name!r}")
        check_range(self, what, "input_size", *INPUT_SIZES)
        check_range(self, what, "embedding_dim", 1, 1 << 16)
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) != 3 or not all(_finite(value) for value in values):
                raise FaceaffectError(f"{what} {name} must be 3 finite numbers, got {values!r}")
        if min(self.std) <= 0:
            raise FaceaffectError(f"{what} std must be positive, got {self.std!r}")
        if self.label_set not in LABEL_SETS:
            raise FaceaffectError(f"{what} unknown label set {self.label_set!r}; use {', '.join(LABEL_SETS)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``config.json`` of a saved model)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """The config of a ``config.json``; faceaffect 0.1 kept ``grayscale`` and ``flip_average`` in
        ``extra``, which is read the same way. Wrong names, types or values are one-line errors."""
        data = dict(data)
        unknown = sorted(set(data) - {field.name for field in fields(cls)})
        if unknown:
            raise FaceaffectError(f"unknown model config field {unknown[0]!r}")
        extra = dict(data.get("extra") or {})
        for key in ("grayscale", "flip_average"):
            if key in extra:
                data[key] = bool(extra.pop(key))
        data["extra"] = extra
        for key in ("weights", "onnx"):
            if data.get(key) is not None:
                data[key] = WeightSource(**data[key])
        for key in ("mean", "std"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        return cls(**data)

    def replace(self, **changes: Any) -> ModelConfig:
        return replace(self, **changes)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _published(path: str, git_sha1: str, fmt: str = "hsemotion_pickle") -> WeightSource:
    return WeightSource(url=f"{UPSTREAM}{path}?raw=true", format=fmt, git_sha1=git_sha1)


def _hsemotion(
    name: str,
    arch: str,
    size: int,
    labels: str,
    va: bool,
    dim: int,
    pt_sha1: str,
    onnx_sha1: str | None,
    normalisation: tuple[Vector, Vector] = (IMAGENET_MEAN, IMAGENET_STD),
) -> ModelConfig:
    return ModelConfig(
        name=name,
        arch=arch,
        input_size=size,
        mean=normalisation[0],
        std=normalisation[1],
        label_set=labels,
        has_va=va,
        embedding_dim=dim,
        weights=_published(f"affectnet_emotions/{name}.pt", pt_sha1),
        onnx=_published(f"affectnet_emotions/onnx/{name}.onnx", onnx_sha1, "onnx") if onnx_sha1 else None,
        description=f"HSEmotion {arch}, AffectNet {labels[-1]} classes"
        + (" + valence/arousal" if va else ""),
    )


def _ddamfn(name: str, va: bool) -> ModelConfig:
    return ModelConfig(
        name=name,
        arch="ddamfn",
        input_size=112,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        label_set="affectnet8",
        has_va=va,
        embedding_dim=512,
        description="DDAMFN (MixedFeatureNet + dual-direction attention)"
        + (", multi-task with valence/arousal" if va else "")
        + "; no published HSEmotion weights: load an upstream DDAMFN state dict or train it",
    )


def _embedded(name: str, safetensors_sha256: str, onnx_sha256: str) -> ModelConfig:
    """A model shipped inside the package (``src/faceaffect/assets/<name>/``, with its MODEL_CARD.md)."""
    folder = f"package:assets/{name}/"
    return ModelConfig(
        name=name,
        arch="mobilefacenet",
        input_size=64,
        mean=HALF,
        std=HALF,
        label_set="affectnet8",
        has_va=False,
        embedding_dim=512,
        weights=WeightSource(folder + "model.safetensors", "safetensors", sha256=safetensors_sha256),
        onnx=WeightSource(folder + "model.onnx", "onnx", sha256=onnx_sha256),
        description="embedded default: MobileFaceNet 64x64 grey, mirror-averaged, trained on FER+ (no VA)",
        grayscale=True,
        flip_average=True,
    )


_B0, _B2 = "tf_efficientnet_b0", "tf_efficientnet_b2"
_MODELS: tuple[ModelConfig, ...] = (
    _embedded("mbf_ferplus_8", "5c3871e7cf77dc744630f72dc1fbdd75e2836345e265472a601dc9c867b64181",
              "68b9dc15db95f3538a65af1171f518a7424198ac64308b7a7974d099e15b3667"),
    _hsemotion("enet_b0_8_best_afew", _B0, 224, "affectnet8", False, 1280,
               "9540c8beff661f1c2fca16de63b530cce24bb17d", "d87faf71e8756d68c701ffd88b4cde4be460f57d"),
    _hsemotion("enet_b0_8_best_vgaf", _B0, 224, "affectnet8", False, 1280,
               "7219cfb037209b253ea8b81cf969e60a00e9181c", "49772db4e87ee6df57087fba131832a959e5c64d"),
    _hsemotion("enet_b0_8_va_mtl", _B0, 224, "affectnet8", True, 1280,
               "b7223bd1ab092a1b5a42bc04a5f4fbfe4d9f8b9b", "7ce9d6dd5b82b260bc19bfe7822a6ffa1abb6011"),
    _hsemotion("enet_b0_7", _B0, 224, "affectnet7", False, 1280,
               "47b748b42622ae1489a389588e9526d44ab01009", None),
    _hsemotion("enet_b2_8", _B2, 260, "affectnet8", False, 1408,
               "eed81e6368877e89f8a99cfabadae7c3ddc3a949", "a7cb612cbab1ce3d50dd52e57285fb2c7ea6d0d9"),
    _hsemotion("enet_b2_8_best", _B2, 260, "affectnet8", False, 1408,
               "43be51786607c44fd13df41a497056c6accf7188", "7e53eb31fefa28f6667195b27c7adade87da0a8f"),
    _hsemotion("enet_b2_7", _B2, 260, "affectnet7", False, 1408,
               "5a8ccbb17913461296003be726a22b6fc40d602b", "cdd6a6070b72ed2e59e15e810ae0ecdbcb0f7626"),
    _hsemotion("mbf_va_mtl", "mobilefacenet", 112, "affectnet8", True, 512,
               "522bdabca7c655a7abde9cfca17e3dfcceadf9a0", "194db927ec135679e5cd0a267c5605e2e9d68e7e",
               normalisation=(HALF, HALF)),  # the published MobileFaceNet takes mean = std = 0.5
    _hsemotion("mobilevit_va_mtl", "mobilevitv2_150", 224, "affectnet8", True, 768,
               "d648cb1a20a5b1ab0af64192ec9be39e5cdd3961", "bed5781a1af9924536638ac3786603e124ee900e"),
    _ddamfn("ddamfn_8", va=False),
    _ddamfn("ddamfn_va_mtl", va=True),
)  # fmt: skip

REGISTRY: dict[str, ModelConfig] = {config.name: config for config in _MODELS}


def list_models() -> list[str]:
    """Names of every registered model.

    >>> "mbf_va_mtl" in list_models()
    True
    """
    return list(REGISTRY)


def get_config(name: str) -> ModelConfig:
    """The config of a registered model; a clear error for an unknown name."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; run `faceaffect models` to list them") from None


def register(config: ModelConfig) -> None:
    """Add (or replace) a model config, e.g. for a model trained locally."""
    REGISTRY[config.name] = config
