"""Options: one home for every default; the CLI shows the same defaults; bad values are one-line errors."""

from __future__ import annotations

from dataclasses import fields

import pytest
import typer

from faceaffect.cli import app
from faceaffect.core.errors import FaceaffectError
from faceaffect.options import AnalyzerOptions, RuntimeOptions, split_settings


def command_defaults(name: str) -> dict[str, object]:
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    return {param.name: param.default for param in command.params}


@pytest.mark.parametrize("command", ["analyze", "predict-crops", "features"])
def test_the_cli_shows_the_options_defaults(command: str) -> None:
    shown = command_defaults(command)
    for options in (RuntimeOptions(), AnalyzerOptions()):
        for field in fields(options):
            if field.name in shown and field.name not in ("offline", "embeddings", "min_face_size"):
                assert shown[field.name] == getattr(options, field.name), (command, field.name)
    assert shown["model"] == RuntimeOptions().model == "mbf_ferplus_8"  # the embedded model: works offline


def test_settings_of_both_kinds_are_sorted_and_checked() -> None:
    runtime, options = split_settings({"device": "cpu", "batch_size": 4, "target_fps": 5, "max_gap": 2})
    assert (runtime.batch_size, options.sampling.target_fps, options.tracking.max_gap) == (4, 5, 2)
    with pytest.raises(FaceaffectError, match="unknown option 'max_gapp'"):
        split_settings({"max_gapp": 2})


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"stride": "2"}, "option stride must be int"),
        ({"stride": 0}, "stride must be at least 1"),
        ({"margin": -0.1}, "margin must be at least 0"),
        ({"target_fps": float("nan")}, "target_fps must be float"),
        ({"embeddings": 1}, "embeddings must be bool"),
        ({"max_gap": True}, "max_gap must be int"),
        ({"smooth_frames": 3, "smooth_seconds": 1.0}, "one smoothing window"),
        ({"track_iou": 1.5}, "IoU"),
    ],
)
def test_bad_analyzer_options_are_one_line_errors(bad: dict, message: str) -> None:
    with pytest.raises(FaceaffectError, match=message):
        AnalyzerOptions.from_dict(bad)


def test_bad_runtime_options_are_one_line_errors() -> None:
    with pytest.raises(FaceaffectError, match="unknown engine 'tensorrt'"):
        RuntimeOptions(engine="tensorrt")
    with pytest.raises(FaceaffectError, match="threads must be at least 1"):
        RuntimeOptions.from_dict({"threads": 0})


def test_options_round_trip_through_json_data() -> None:
    options = AnalyzerOptions(target_fps=2.5, detect_every=3, embeddings=True)
    assert AnalyzerOptions.from_dict(options.to_dict()) == options
    assert RuntimeOptions.from_dict(RuntimeOptions(batch_size=8).to_dict()).batch_size == 8
