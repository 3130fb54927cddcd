"""``faceaffect export MODEL -o DIR``: write an ONNX model folder, checked against torch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceaffect.cli.common import OfflineOption, app, user_errors
from faceaffect.core.errors import InputError
from faceaffect.core.io import check_writable
from faceaffect.images import expand_images, load_image
from faceaffect.onnx.graph import Layout


@app.command()
@user_errors
def export(
    model: Annotated[str, typer.Argument(help="Registered model name or saved model folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for model.onnx + config.json.")],
    weights: Annotated[
        Path | None, typer.Option(help="Local weight file for a registered architecture.")
    ] = None,
    layout: Annotated[
        str, typer.Option(help="faceaffect (logits, valence_arousal, embedding) or published (one output).")
    ] = "faceaffect",
    opset: Annotated[int, typer.Option(min=11, help="ONNX opset.")] = 17,
    check_images: Annotated[
        list[Path] | None, typer.Option(help="Face crops (files or folders) for the parity check.")
    ] = None,
    torch_weights: Annotated[
        bool, typer.Option(help="Also write model.safetensors, so the folder serves both engines.")
    ] = False,
    offline: OfflineOption = False,
) -> None:
    """Export a model to ONNX; ONNX Runtime must match torch on the check images (needs the torch extra)."""
    from faceaffect.core.extras import optional_import

    if layout not in tuple(Layout):
        raise InputError(f"unknown layout {layout!r}; use {' or '.join(Layout)}")
    check_writable(output, folder=True)
    crops = None
    if check_images:
        files = expand_images(check_images)
        if not files:
            raise InputError("no image files found in " + ", ".join(map(str, check_images)))
        crops = [load_image(path) for path in files]
    export_model = optional_import("faceaffect.export", "faceaffect export").export_model
    report = export_model(
        model,
        output,
        weights_path=weights,
        offline=offline or None,
        layout=layout,
        opset=opset,
        check_images=crops,
        torch_weights=torch_weights,
    )
    typer.echo(report.summary())
