"""Put a trained model into the package as the embedded default: ONNX export with a parity check on real
FER+ validation faces, safetensors weights, config.json; prints the sha256 lines for the registry.

    python scripts/package_default_model.py runs/ferplus_mbf48/best --ferplus ../shared/data/ferplus
"""

from __future__ import annotations

import argparse
from pathlib import Path

from faceaffect.export import export_model
from faceaffect.hub import sha256_file
from faceaffect.train.datasets import decode, read_ferplus

ASSETS = Path(__file__).resolve().parents[1] / "src" / "faceaffect" / "assets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trained", type=Path, help="a saved model folder (e.g. runs/.../best)")
    parser.add_argument("--name", default="mbf_ferplus_8")
    parser.add_argument("--ferplus", type=Path, default=Path("../shared/data/ferplus"))
    args = parser.parse_args()
    crops = [decode(sample) for sample in read_ferplus(args.ferplus, "valid")[:64]]
    target = ASSETS / args.name
    report = export_model(args.trained, target, check_images=crops, torch_weights=True)
    print(report.summary())
    for file in ("model.safetensors", "model.onnx"):
        print(f"{file}: sha256 {sha256_file(target / file)}")


if __name__ == "__main__":
    main()
