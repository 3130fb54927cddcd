"""The registry holds every model of METHOD.md with its published facts."""

from __future__ import annotations

import json

import pytest

from faceaffect.core.labels import AFFECTNET_7, AFFECTNET_8
from faceaffect.hub.registry import REGISTRY, ModelConfig, get_config, list_models

EXPECTED = {  # name: (input size, embedding, classes, has VA)
    "enet_b0_8_best_afew": (224, 1280, 8, False),
    "enet_b0_8_best_vgaf": (224, 1280, 8, False),
    "enet_b0_8_va_mtl": (224, 1280, 8, True),
    "enet_b0_7": (224, 1280, 7, False),
    "enet_b2_8": (260, 1408, 8, False),
    "enet_b2_8_best": (260, 1408, 8, False),
    "enet_b2_7": (260, 1408, 7, False),
    "mbf_va_mtl": (112, 512, 8, True),
    "mobilevit_va_mtl": (224, 768, 8, True),
    "ddamfn_8": (112, 512, 8, False),
    "ddamfn_va_mtl": (112, 512, 8, True),
}


def test_every_model_of_the_method_is_registered() -> None:
    assert set(EXPECTED) <= set(list_models())


@pytest.mark.parametrize("name", EXPECTED)
def test_config_facts(name: str) -> None:
    config = get_config(name)
    assert (config.input_size, config.embedding_dim, config.num_classes, config.has_va) == EXPECTED[name]
    assert config.num_outputs == config.num_classes + 2 * config.has_va
    half = config.arch == "mobilefacenet"
    assert config.mean == ((0.5,) * 3 if half else (0.485, 0.456, 0.406))
    assert config.std == ((0.5,) * 3 if half else (0.229, 0.224, 0.225))


def test_configs_carry_their_label_order() -> None:
    assert get_config("enet_b0_8_va_mtl").labels == AFFECTNET_8
    assert get_config("enet_b2_7").labels == AFFECTNET_7


def test_weight_sources_point_at_the_published_files() -> None:
    source = get_config("enet_b0_8_best_afew").weights
    assert source is not None and source.format == "hsemotion_pickle"
    assert source.url == (
        "https://github.com/av-savchenko/face-emotion-recognition/blob/main/"
        "models/affectnet_emotions/enet_b0_8_best_afew.pt?raw=true"
    )
    assert source.git_sha1 == "9540c8beff661f1c2fca16de63b530cce24bb17d"
    assert source.filename == "enet_b0_8_best_afew.pt"
    assert get_config("mobilevit_va_mtl").onnx.git_sha1 == "bed5781a1af9924536638ac3786603e124ee900e"
    assert get_config("enet_b0_7").onnx is None
    assert get_config("ddamfn_8").weights is None


@pytest.mark.parametrize("name", list(REGISTRY))
def test_config_json_round_trip(name: str) -> None:
    config = get_config(name)
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        get_config("nope")
