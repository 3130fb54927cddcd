"""The base install analyses without torch: run the CLI in a subprocess where torch, timm and torchvision
cannot be imported, on an ONNX model folder, and compare with torch in this process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceaffect.export import export_model
from faceaffect.recognizer import Recognizer

BLOCKER = """
import importlib.abc, sys

BLOCKED = {"torch", "timm", "torchvision"}


class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None


sys.meta_path.insert(0, NoTorch())
try:
    from faceaffect.cli import app

    app(sys.argv[1:], prog_name="faceaffect")
finally:
    leaked = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
    if leaked:
        print("LEAKED", leaked, file=sys.stderr)
"""


@pytest.fixture(scope="module")
def onnx_folder(calibrated_model, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("onnx_only")
    export_model(calibrated_model("mbf_va_mtl"), folder)
    return folder


def run_without_torch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "no_torch.py"
    script.write_text(BLOCKER)
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_blocker_really_blocks(shared_data, tmp_path) -> None:
    crop = shared_data / "faces" / "pyfeat_tests" / "single_face.jpg"
    result = run_without_torch(tmp_path, "predict-crops", str(crop), "-m", "mbf_va_mtl", "--engine", "torch")
    assert result.returncode == 1
    assert "needs torch, which is not installed" in result.stderr and "LEAKED" not in result.stderr


def test_predict_crops_runs_on_onnx_runtime_alone(
    onnx_folder, calibrated_model, shared_data, tmp_path
) -> None:
    aligned = shared_data / "faces" / "facenet-pytorch" / "test_images_aligned"
    out = tmp_path / "onnx.csv"
    result = run_without_torch(
        tmp_path, "predict-crops", str(aligned), "-m", str(onnx_folder), "-q", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert "LEAKED" not in result.stderr
    got = np.loadtxt(out, delimiter=",", skiprows=1, usecols=(*range(1, 9), 10, 11))
    files = sorted(aligned.glob("*/1.png"))
    expected = Recognizer(calibrated_model("mbf_va_mtl"), engine="torch").predict_files(files)[0]
    np.testing.assert_allclose(got[:, :8], np.stack([p.probabilities for _, p in expected]), atol=1e-4)
    va = [(p.valence, p.arousal) for _, p in expected]
    np.testing.assert_allclose(got[:, 8:], va, atol=1e-4)


def test_analyze_runs_on_onnx_runtime_alone(onnx_folder, shared_data, tmp_path) -> None:
    video = shared_data / "videos" / "pyfeat_tests" / "single_face.mp4"
    out = tmp_path / "faces.csv"
    args = ["analyze", str(video), "-m", str(onnx_folder), "--max-frames", "6", "-q", "-o", str(out)]
    result = run_without_torch(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert "LEAKED" not in result.stderr
    rows = out.read_text().splitlines()
    assert len(rows) == 7 and "Happiness" in rows[0] and "valence" in rows[0]


TORCH_PARTS = (
    "faceaffect.models",
    "faceaffect.train",
    "faceaffect.runtime.torch_engine",
    "faceaffect.export",
    "faceaffect.downstream.fit",
    "faceaffect.downstream.heads",
    "faceaffect.downstream.search",
    "faceaffect.downstream.workflow",
)
IMPORT_EVERY_MODULE = """
import importlib, sys
from pathlib import Path

import faceaffect

package = Path(faceaffect.__file__).parent
torch_parts = tuple(sys.argv[1:])
for path in sorted(package.rglob("*.py")):
    parts = path.relative_to(package.parent).with_suffix("").parts
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    if name.endswith("__main__") or any(name == p or name.startswith(p + ".") for p in torch_parts):
        continue
    importlib.import_module(name)
    assert "torch" not in sys.modules, f"importing {name} imports torch"
"""


def test_torch_is_imported_only_by_the_modules_that_need_it() -> None:
    """Every module outside the torch parts (models, training, the torch engine, export, downstream heads)
    imports without torch, torch installed or not: lazy imports inside functions only."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE, *TORCH_PARTS], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
