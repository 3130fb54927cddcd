"""A corpus of broken, hostile and odd inputs, built on the spot: images, model folders, training configs,
ABAW label files and feature manifests, as an attacker or a tired user would hand them to faceaffect.

Each builder takes a fresh folder (and the shared good inputs) and returns the command line to run.
"""

from __future__ import annotations

import io
import json
import pickle
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


# --- training configs: `train CONFIG` ---------------------------------------------------------------------


def billion_laughs() -> str:
    lines = ['a0: &a0 "lol"'] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def config_file(text: str | bytes, name: str = "config.yaml") -> Callable[[Path, Good], list[str]]:
    def build(folder: Path, good: Good) -> list[str]:
        path = folder / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return ["train", str(path)]

    return build


DATA = "data: {kind: folder, train: faces}\n"
TRAINING_CONFIGS = [
    Case("billion laughs", config_file(billion_laughs()), "aliases (*name) are not allowed"),
    Case(
        "python object tag",
        config_file("model: !!python/object/apply:os.system [echo owned]\n"),
        "could not determine a constructor",
    ),
    Case("yaml syntax error", config_file("stages: [{epochs: 1\nbatch_size: 4\n"), "config.yaml:"),
    Case("NaN learning rate", config_file(DATA + "stages: [{epochs: 1, lr: .nan}]\n"), "nan is not a number"),
    Case("infinite rho", config_file(DATA + "rho: .inf\n"), "inf is not a number"),
    Case("batch size of the wrong type", config_file(DATA + "batch_size: big\n"), "batch_size must be int"),
    Case("negative seed", config_file(DATA + "seed: -1\n"), "seed must be in"),
    Case("stages not a list", config_file(DATA + "stages: 5\n"), "bad training config"),
    Case("no stages", config_file(DATA + "stages: []\n"), "stages must be a non-empty list"),
    Case("stage of the wrong shape", config_file(DATA + "stages: [[1, 2]]\n"), "bad training config"),
    Case(
        "unknown option",
        config_file(DATA + "learning_rate: 0.1\n"),
        "unknown training option(s): learning_rate",
    ),
    Case(
        "unknown data kind",
        config_file("data: {kind: imagenet, train: x}\n"),
        "training data kind 'imagenet'",
    ),
    Case("data not a mapping", config_file("data: [1]\n"), "bad training config"),
    Case(
        "huge model input",
        config_file(DATA + "model: {name: mbf_va_mtl, input_size: 100000}\n"),
        "input_size must be in [16, 1024]",
    ),
    Case(
        "model of the wrong type",
        config_file(DATA + "model: !!binary aGVsbG8=\n"),
        "model must be str or dict",
    ),
    Case(
        "a date for a learning rate",
        config_file(DATA + "stages: [{epochs: 1, lr: 2001-12-14}]\n"),
        "lr must be float",
    ),
    Case("augmentation out of range", config_file(DATA + "augment: {hflip: 2}\n"), "hflip must be in [0, 1]"),
    Case("a list document", config_file("- 1\n- 2\n"), "found list"),
    Case("an empty document", config_file(""), "found NoneType"),
    Case("deep nesting", config_file("a: " + "[" * 20_000 + "]" * 20_000 + "\n"), "nested too deeply"),
    Case("json NaN", config_file('{"rho": NaN}', "config.json"), "NaN is not a number"),
    Case("not utf-8", config_file(b"output_dir: caf\xe9\n"), "not UTF-8"),
    Case(
        "output folder under a file", config_file(DATA + "output_dir: /etc/hostname/run\n"), "not a writable"
    ),
    Case("config is a folder", lambda f, g: ["train", str(f)], "no such config file"),
]


# --- ABAW labels and feature manifests: `heads train TASK -f STORE --labels LABELS` ------------------------


def labels(
    text: str | bytes, task: str = "va", name: str = "video1.txt"
) -> Callable[[Path, Good], list[str]]:
    def build(folder: Path, good: Good) -> list[str]:
        (folder / "labels").mkdir()
        path = folder / "labels" / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        target = path if task == "emi" else folder / "labels"
        return [
            "heads",
            "train",
            task,
            "-f",
            str(good.store),
            "--labels",
            str(target),
            "-o",
            str(folder / "h"),
        ]

    return build


def manifest(change: Callable[[dict], None]) -> Callable[[Path, Good], list[str]]:
    def build(folder: Path, good: Good) -> list[str]:
        store = shutil.copytree(good.store, folder / "store")
        document = json.loads((store / "manifest.json").read_text())
        change(document)
        (store / "manifest.json").write_text(json.dumps(document))
        (folder / "labels").mkdir()
        (folder / "labels" / "v.txt").write_text("valence,arousal\n0.1,0.2\n")
        return [
            "heads",
            "train",
            "va",
            "-f",
            str(store),
            "--labels",
            str(folder / "labels"),
            "-o",
            str(folder / "h"),
        ]

    return build


def _entry(file: str) -> Callable[[dict], None]:
    def change(document: dict) -> None:
        document["videos"] = {
            "v": {
                "file": file,
                "source": "v.mp4",
                "kind": "video",
                "n_frames": 1,
                "rows": 1,
                "frames_with_face": 1,
            }
        }

    return change


LABEL_FILES = [
    Case("wrong header", labels("val,aro\n0.1,0.2\n"), "expected the header"),
    Case("NaN valence", labels("valence,arousal\nnan,0.2\n"), "not a finite number"),
    Case(
        "infinite class",
        labels("Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\ninf\n", "expr"),
        "not a finite number",
    ),
    Case("huge exponent", labels("valence,arousal\n1e400,0\n"), "not a finite number"),
    Case("valence out of range", labels("valence,arousal\n2,0\n"), "outside [-1, 1]"),
    Case("three columns", labels("valence,arousal\n0.1,0.2,0.3\n"), "expected 2 comma-separated"),
    Case("binary", labels(b"\xff\xfe\x00\x01garbage"), "cannot read annotation file"),
    Case("empty", labels(""), "found 'an empty file'"),
    Case(
        "AU of 7",
        labels("AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26\n" + "7," * 11 + "7\n", "au"),
        "AU value 7",
    ),
    Case(
        "emi field too large",
        labels("Filename,Admiration\n" + "x" * 200_000 + ",1\n", "emi", "e.csv"),
        "cannot read label file",
    ),
    Case(
        "emi intensity out of range",
        labels(
            "Filename,Admiration,Amusement,Determination,Empathic Pain,Excitement,Joy\na,2,0,0,0,0,0\n",
            "emi",
            "e.csv",
        ),
        "must lie in [0, 1]",
    ),
    Case(
        "labels missing",
        lambda f, g: [
            "heads",
            "train",
            "va",
            "-f",
            str(g.store),
            "--labels",
            str(f / "none"),
            "-o",
            str(f / "h"),
        ],
        "no annotation files",
    ),
    Case("manifest videos a list", manifest(lambda d: d.update(videos=[1])), "not a valid feature manifest"),
    Case(
        "manifest entry outside the store",
        manifest(_entry("../../../etc/hostname")),
        "lies outside the store",
    ),
    Case("manifest entry absolute", manifest(_entry("/etc/hostname")), "lies outside the store"),
    Case("manifest model labels", manifest(lambda d: d["model"].update(labels="Anger")), "list of names"),
    Case("manifest storage", manifest(lambda d: d.update(storage="zip")), "bad model record or storage"),
]


# --- outputs: checked before any work ----------------------------------------------------------------------

OUTPUTS = [
    Case(
        "table of an unknown format",
        lambda f, g: ["analyze", str(g.photo), "-o", str(f / "t.xlsx")],
        "unknown format '.xlsx'",
    ),
    Case(
        "table onto a folder",
        lambda f, g: ["analyze", str(g.photo), "-o", str((f / "t.csv").mkdir() or f / "t.csv")],
        "it is a folder",
    ),
    Case(
        "plots onto a file",
        lambda f, g: ["analyze", str(g.photo), "--plots", str(g.photo)],
        "it is not a folder",
    ),
    Case(
        "table under a file",
        lambda f, g: ["predict-crops", str(g.crop), "-o", str(g.crop / "t.csv")],
        "not a writable folder",
    ),
    Case(
        "evaluate report format",
        lambda f, g: ["evaluate", "mbf_ferplus_8", str(f), "--kind", "folder", "-o", str(f / "r.txt")],
        "unknown format '.txt'",
    ),
    Case(
        "evaluate plot format",
        lambda f, g: ["evaluate", "mbf_ferplus_8", str(f), "--kind", "folder", "--plot", str(f / "c.gif")],
        "unknown format '.gif'",
    ),
    Case(
        "unknown engine",
        lambda f, g: ["predict-crops", str(g.crop), "--engine", "tpu", "-q"],
        "unknown engine",
    ),
    Case(
        "gpu that is not there",
        lambda f, g: ["predict-crops", str(g.crop), "--device", "cuda:3", "-q"],
        "device 'cuda:3' requested",
    ),
    Case(
        "one image above --max-image-pixels",
        lambda f, g: ["analyze", str(g.photo), "--max-image-pixels", "100", "-q"],
        "more than the limit of 100",
    ),
]


def evil_pickle(path: Path) -> Path:
    """A checkpoint that would run ``os.system`` if it were unpickled as code."""

    class Evil:
        def __reduce__(self) -> tuple:
            import os

            return (os.system, ("echo owned > /dev/null",))

    import torch

    buffer = io.BytesIO()
    torch.save({"format": "faceaffect-train-checkpoint/1", "x": Evil()}, buffer)
    path.write_bytes(buffer.getvalue())
    assert b"system" in path.read_bytes()
    return path


def pickle_bomb(path: Path) -> Path:
    """Not torch at all: a plain pickle asking for builtins.eval."""
    path.write_bytes(pickle.PROTO + b"\x02" + b"cbuiltins\neval\n(S'1+1'\ntR.")
    return path
