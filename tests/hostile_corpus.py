"""A corpus of broken, hostile and odd inputs, built on the spot, as an attacker or a tired user would hand
them to faceaffect: the good inputs they start from, images and model folders (configs, labels, manifests,
outputs and checkpoints: hostile_configs.py).

Each builder takes a fresh folder (and the shared good inputs) and returns the command line to run.
"""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from faceaffect.downstream.features import FeatureStore, model_info
from faceaffect.hub.model_folder import write_config
from faceaffect.hub.registry import get_config

ASSETS = Path(__import__("faceaffect").__file__).parent / "assets" / "mbf_ferplus_8"


@dataclass(frozen=True)
class Good:
    """The good inputs every case may start from."""

    photo: Path  # a real photo with two faces
    crop: Path  # a real face crop
    model: Path  # a valid saved model folder (config.json + model.onnx)
    store: Path  # a valid, empty feature store


@dataclass(frozen=True)
class Case:
    """One input: ``build(folder, good)`` makes it and returns the command's arguments; the command must
    fail with ``code`` and one stderr line containing ``says``; ``env`` is set while it runs."""

    name: str
    build: Callable[[Path, Good], list[str]]
    says: str
    code: int = 1
    env: dict[str, str] = field(default_factory=dict)


def png_header(width: int, height: int, colour_type: int = 0) -> bytes:
    """A PNG declaring ``width`` x ``height`` grey pixels that holds one row of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    rows = zlib.compress(b"\0" * (min(width, 1 << 16) + 1))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def make_good(root: Path, shared_data: Path) -> Good:
    faces = shared_data / "faces"
    photo = shutil.copy(faces / "face_recognition" / "two_people.jpg", root / "photo.jpg")
    crop = shutil.copy(faces / "facenet-pytorch" / "test_images_aligned" / "paul_rudd" / "1.png", root)
    model = root / "model"
    model.mkdir()
    shutil.copy(ASSETS / "model.onnx", model / "model.onnx")
    write_config(get_config("mbf_ferplus_8").replace(name="copy", weights=None, onnx=None), model)
    store = FeatureStore.create(root / "store", model_info(get_config("mbf_ferplus_8"))).root
    return Good(Path(photo), Path(crop), model, store)


# --- images: `analyze IMAGE` ------------------------------------------------------------------------------


def image_bytes(name: str, content: bytes | Callable[[Good], bytes]) -> Callable[[Path, Good], list[str]]:
    def build(folder: Path, good: Good) -> list[str]:
        path = folder / name
        path.write_bytes(content(good) if callable(content) else content)
        return ["analyze", str(path), "-q"]

    return build


def _analyze_path(make: Callable[[Path], Path]) -> Callable[[Path, Good], list[str]]:
    return lambda folder, good: ["analyze", str(make(folder)), "-q"]


def _fifo(folder: Path) -> Path:
    import os

    os.mkfifo(folder / "pipe.jpg")
    return folder / "pipe.jpg"


def _loop(folder: Path) -> Path:
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    return folder / "loop.jpg"


BROKEN_IMAGES = [
    Case("empty file", image_bytes("empty.jpg", b""), "cannot read image"),
    Case(
        "garbage",
        image_bytes("noise.png", bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8))),
        "cannot read image",
    ),
    Case(
        "text named .jpg",
        image_bytes("notes.jpg", b"dear diary, today I took no photo\n"),
        "cannot read image",
    ),
    Case(
        "truncated jpeg",
        image_bytes("half.jpg", lambda g: g.photo.read_bytes()[: g.photo.stat().st_size // 3]),
        "cannot read image",
    ),
    Case("png cut in its header", image_bytes("cut.png", png_header(64, 64)[:30]), "cannot read image"),
    Case("png colour type 7", image_bytes("odd.png", png_header(64, 64, colour_type=7)), "cannot read image"),
    Case("png of 0x0 pixels", image_bytes("zero.png", png_header(0, 0)), "cannot read image"),
    Case(
        "decompression bomb",
        image_bytes("bomb.png", png_header(65_000, 65_000)),
        "65000x65000 pixels, more than the limit",
    ),
    Case(
        "bomb below pillows own limit",
        image_bytes("bomb2.png", png_header(10_000, 10_000)),
        "more than the limit of 1000000",
        env={"FACEAFFECT_MAX_IMAGE_PIXELS": "1000000"},
    ),
    Case(
        "limit set to nonsense",
        image_bytes("fine.png", png_header(8, 8)),
        "must be a positive whole number",
        env={"FACEAFFECT_MAX_IMAGE_PIXELS": "lots"},
    ),
    Case("markup in a file name", image_bytes("[bold]x[link=x].png", b"broken"), "[bold]x[link=x].png"),
    Case(
        "folder named like an image",
        _analyze_path(lambda f: (f / "dir.jpg").mkdir() or f / "dir.jpg"),
        "no image files",
    ),
    Case("fifo named like an image", _analyze_path(_fifo), "not a file"),
    Case("symlink loop", _analyze_path(_loop), "no such file or folder"),
    Case("missing file", _analyze_path(lambda f: f / "absent.jpg"), "no such file or folder"),
    Case("empty folder", _analyze_path(lambda f: f), "no image files"),
]


def _saved(save: Callable[[Image.Image, Path], None], name: str) -> Callable[[Path, Good], Path]:
    def build(folder: Path, good: Good) -> Path:
        path = folder / name
        save(Image.open(good.photo).convert("RGB"), path)
        return path

    return build


def _exif(orientation: int | bytes) -> Callable[[Image.Image, Path], None]:
    def save(image: Image.Image, path: Path) -> None:
        if isinstance(orientation, bytes):
            image.save(path, exif=orientation)
            return
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.transpose(Image.Transpose.ROTATE_270).save(path, exif=exif.tobytes())

    return save


def _palette_with_transparency(image: Image.Image, path: Path) -> None:
    palette = image.convert("P")
    palette.info["transparency"] = 0
    palette.save(path)


ODD_IMAGES = [  # valid images in unusual forms: analysed, exit code 0
    (
        "16-bit grey png",
        _saved(
            lambda im, p: Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257).save(p),
            "grey16.png",
        ),
    ),
    (
        "32-bit float tiff",
        _saved(
            lambda im, p: Image.fromarray(np.asarray(im.convert("L"), np.float32) / 255).save(p), "float.tif"
        ),
    ),
    ("cmyk jpeg", _saved(lambda im, p: im.convert("CMYK").save(p), "cmyk.jpg")),
    ("palette with transparency", _saved(_palette_with_transparency, "palette.png")),
    ("grey with alpha", _saved(lambda im, p: im.convert("LA").save(p), "la.png")),
    ("1-bit", _saved(lambda im, p: im.convert("1").save(p), "bits.png")),
    ("gif named .png", _saved(lambda im, p: im.save(p, format="GIF"), "gif.png")),
    ("exif orientation 8", _saved(_exif(8), "rotated.jpg")),
    ("damaged exif", _saved(_exif(b"Exif\0\0MM\0*garbage"), "exif.jpg")),
    ("one pixel", _saved(lambda im, p: im.resize((1, 1)).save(p), "pixel.png")),
]


# --- model folders: `predict-crops CROP -m FOLDER` ---------------------------------------------------------


def model_folder(change: Callable[[Path], None]) -> Callable[[Path, Good], list[str]]:
    def build(folder: Path, good: Good) -> list[str]:
        model = shutil.copytree(good.model, folder / "model")
        change(model)
        return ["predict-crops", str(good.crop), "-m", str(model), "-q"]

    return build


def config_field(**changes: object) -> Callable[[Path], None]:
    def change(model: Path) -> None:
        document = json.loads((model / "config.json").read_text())
        document.update(changes)
        (model / "config.json").write_text(json.dumps(document))

    return change


def config_text(text: str | bytes) -> Callable[[Path], None]:
    def change(model: Path) -> None:
        path = model / "config.json"
        path.write_bytes(text.encode() if isinstance(text, str) else text)

    return change


def external_data(location: str) -> Callable[[Path], None]:
    """The graph's first weight moved out to ``location`` (written there when it is a plain name)."""

    def change(model: Path) -> None:
        import onnx

        proto = onnx.load(str(model / "model.onnx"))
        tensor = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", "64")):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        (model / "model.onnx").write_bytes(proto.SerializeToString())
        secret = model.parent / "secret.bin"
        secret.write_bytes(b"s" * 4096)
        if location == "link.bin":
            (model / "link.bin").symlink_to(secret)

    return change


def _remove(name: str) -> Callable[[Path], None]:
    return lambda model: (model / name).unlink()


def _replace_with_folder(name: str) -> Callable[[Path], None]:
    def change(model: Path) -> None:
        (model / name).unlink()
        (model / name).mkdir()

    return change


MODEL_FOLDERS = [
    Case(
        "input_size of the wrong type", model_folder(config_field(input_size="big")), "input_size must be int"
    ),
    Case("huge input_size", model_folder(config_field(input_size=10**9)), "input_size must be in [16, 1024]"),
    Case(
        "NaN mean",
        model_folder(config_text('{"format_version": 1, "mean": [NaN, 0.5, 0.5]}')),
        "NaN is not a number",
    ),
    Case("zero std", model_folder(config_field(std=[0.0, 0.5, 0.5])), "std must be positive"),
    Case("unknown label set", model_folder(config_field(label_set="emotions9")), "unknown label set"),
    Case("name with a line break", model_folder(config_field(name="a\nb")), "name must be printable"),
    Case(
        "unknown field", model_folder(config_field(run="os.system('x')")), "unknown model config field 'run'"
    ),
    Case(
        "file URL",
        model_folder(config_field(weights={"url": "file:///etc/passwd", "format": "onnx"})),
        "neither http",
    ),
    Case(
        "package path escaping",
        model_folder(config_field(onnx={"url": "package:../../etc/passwd", "format": "onnx"})),
        "outside the faceaffect",
    ),
    Case("weights of the wrong type", model_folder(config_field(weights=[1, 2])), "not a valid model config"),
    Case("format version", model_folder(config_field(format_version=7)), "format version 7"),
    Case("config is a list", model_folder(config_text("[1, 2]")), "expected a mapping"),
    Case("config not json", model_folder(config_text("{nope")), "not valid JSON"),
    Case(
        "config deeply nested",
        model_folder(config_text('{"a": ' + "[" * 50_000 + "]" * 50_000 + "}")),
        "nested too deeply",
    ),
    Case("config not utf-8", model_folder(config_text(b'{"name": "caf\xe9"}')), "not UTF-8"),
    Case(
        "config too large",
        model_folder(config_field(description="x" * 5000)),
        "FACEAFFECT_MAX_CONFIG_BYTES",
        env={"FACEAFFECT_MAX_CONFIG_BYTES": "4000"},
    ),
    Case(
        "config is a folder",
        model_folder(_replace_with_folder("config.json")),
        "neither a saved model folder",
    ),
    Case(
        "onnx garbage",
        model_folder(lambda m: (m / "model.onnx").write_bytes(b"\x08\x07\x12\xff\xff\xffgarbage")),
        "ONNX model",
    ),
    Case("onnx empty", model_folder(lambda m: (m / "model.onnx").write_bytes(b"")), "has outputs []"),
    Case(
        "onnx external data above its folder",
        model_folder(external_data("../secret.bin")),
        "outside its folder",
    ),
    Case("onnx external data absolute", model_folder(external_data("/etc/hostname")), "outside its folder"),
    Case("onnx external data through a link", model_folder(external_data("link.bin")), "outside its folder"),
    Case("onnx external data missing", model_folder(external_data("absent.bin")), "external data"),
    Case(
        "onnx for another input size", model_folder(config_field(input_size=112)), "expected [N, 3, 112, 112]"
    ),
    Case("no weights at all", model_folder(_remove("model.onnx")), "model.safetensors"),
    Case(
        "unknown model name",
        lambda f, g: ["predict-crops", str(g.crop), "-m", "enet_b9", "-q"],
        "unknown model",
    ),
    Case(
        "system folder as model",
        lambda f, g: ["predict-crops", str(g.crop), "-m", "/etc", "-q"],
        "neither a saved model folder",
    ),
]
