"""Our saved-model format: model.safetensors + config.json, written atomically and read back bit for bit."""

from __future__ import annotations

import json

import pytest
import torch

from faceaffect.hub import CheckpointError, load_pretrained_files, read_safetensors, save_pretrained
from faceaffect.hub.model_folder import CONFIG_NAME, FORMAT_VERSION, WEIGHTS_NAME
from faceaffect.hub.registry import get_config


def state() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "backbone.conv.weight": torch.randn(4, 3, 3, 3, generator=generator),
        "backbone.bn.num_batches_tracked": torch.tensor(7),
        "backbone.half": torch.randn(5, generator=generator).half(),
        "head.weight": torch.randn(10, 4, generator=generator).t(),  # not contiguous
    }


def test_round_trip_is_bit_identical(tmp_path):
    config = get_config("enet_b0_8_va_mtl")
    directory = save_pretrained(state(), config, tmp_path / "new" / "model")
    assert sorted(p.name for p in directory.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]  # no temporary files
    assert json.loads((directory / CONFIG_NAME).read_text())["format_version"] == FORMAT_VERSION
    loaded_config, loaded = load_pretrained_files(directory)
    assert loaded_config == config
    expected = state()
    assert set(loaded) == set(expected)
    for key, tensor in expected.items():
        assert loaded[key].dtype == tensor.dtype and torch.equal(loaded[key], tensor)


def test_config_without_weights_round_trips(tmp_path):
    config = get_config("ddamfn_va_mtl").replace(extra={"trained_on": "affectnet", "epochs": [3, 6]})
    save_pretrained(state(), config, tmp_path)
    assert load_pretrained_files(tmp_path)[0] == config


def test_missing_and_corrupt_folders(tmp_path):
    with pytest.raises(CheckpointError, match=r"config\.json is missing"):
        load_pretrained_files(tmp_path / "absent")
    save_pretrained(state(), get_config("mbf_va_mtl"), tmp_path)
    weights = tmp_path / WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_pretrained_files(tmp_path)
    weights.unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors is missing"):
        load_pretrained_files(tmp_path)
    save_pretrained(state(), get_config("mbf_va_mtl"), tmp_path / "other")
    (tmp_path / "other" / CONFIG_NAME).write_text('{"format_version": 99}')
    with pytest.raises(CheckpointError, match="format version 99"):
        load_pretrained_files(tmp_path / "other")
    (tmp_path / "other" / CONFIG_NAME).write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json:1: not valid JSON"):
        load_pretrained_files(tmp_path / "other")
    with pytest.raises(CheckpointError, match="not found"):
        read_safetensors(tmp_path / "absent.safetensors")
