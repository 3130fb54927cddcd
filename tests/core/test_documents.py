"""Config documents read defensively: YAML without aliases or object tags, no NaN, bounded size and depth."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from faceaffect.core.documents import read_document
from faceaffect.core.errors import CheckpointError, InputError
from faceaffect.core.limits import raised_limits


def billion_laughs() -> str:
    """Nine levels of ten aliases each: under 1 KB that a naive loader expands to 10^9 strings."""
    lines = ['a0: &a0 "lol"']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_plain_yaml_and_json_are_read(tmp_path: Path) -> None:
    yaml_text = "model: mbf_va_mtl\nstages:\n  - {epochs: 1, lr: 0.001}\nanchored: &x 3\n"
    assert read_document(write(tmp_path, "c.yml", yaml_text))["stages"] == [{"epochs": 1, "lr": 0.001}]
    assert read_document(write(tmp_path, "c.json", '{"a": [1, 2.5]}')) == {"a": [1, 2.5]}


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "bomb.yaml", billion_laughs())
    assert path.stat().st_size < 1024
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"bomb\.yaml:2: aliases \(\*name\) are not allowed"):
        read_document(path)
    assert time.perf_counter() - start < 5.0  # a hang, not a speed goal: refusing takes microseconds


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("t.yaml", "a: !!python/object/apply:os.system [echo hacked]\n", r"t\.yaml:1: could not determine"),
        ("t.yaml", "a: [1, 2\nb: 3\n", r"t\.yaml:2: "),
        ("t.yaml", "lr: .nan\n", "nan is not a number"),
        ("t.yaml", "stages: [{lr: -.inf}]\n", "-inf is not a number"),
        ("t.yaml", "- just\n- a list\n", "expected a mapping of names to values, found list"),
        ("t.yaml", "", "found NoneType"),
        ("t.yaml", "[" * 5000 + "]" * 5000, "nested too deeply"),
        ("t.json", '{"lr": NaN}', "NaN is not a number"),
        ("t.json", '{"lr": 1e999}', "1e999 is not a number"),
        ("t.json", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ("t.json", "{not json", r"t\.json:1: not valid JSON"),
        ("t.json", '"text"', "found str"),
    ],
)
def test_hostile_and_broken_documents_are_one_line_errors(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(InputError, match=message) as error:
        read_document(write(tmp_path, name, text))
    assert "\n" not in str(error.value)


def test_size_encoding_and_kind_of_file(tmp_path: Path) -> None:
    big = write(tmp_path, "big.json", '{"a": "' + "x" * 2000 + '"}')
    with raised_limits(max_config_bytes=1000), pytest.raises(InputError, match="FACEAFFECT_MAX_CONFIG_BYTES"):
        read_document(big)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(CheckpointError, match="not UTF-8"):
        read_document(latin, CheckpointError)
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(InputError, match="not a file"):
        read_document(tmp_path / "folder.json")
    with pytest.raises(InputError, match="no such file"):
        read_document(tmp_path / "absent.json")
