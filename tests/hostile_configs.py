"""The second half of the hostile corpus (see hostile_corpus.py): training configs, ABAW label files,
feature manifests, output paths and checkpoints."""

from __future__ import annotations

import io
import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

from hostile_corpus import Case, Good

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
        "export under a file",
        lambda f, g: ["export", str(g.model), "-o", str(g.crop / "exported")],
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
