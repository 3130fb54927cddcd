"""Optional extras: imported when installed, one line naming the extra when not."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.extras import is_installed, optional_import


def test_an_installed_module_is_imported() -> None:
    assert optional_import("json", "reading JSON") is sys.modules["json"]
    assert is_installed("json") and not is_installed("no_such_package_4f2a")


def test_a_missing_package_names_the_extra_to_install() -> None:
    message = (
        r"training needs no_such_package_4f2a, which is not installed: pip install 'faceaffect\[torch\]'"
    )
    with pytest.raises(FaceaffectError, match=message):
        optional_import("no_such_package_4f2a.sub", "training")
    with pytest.raises(FaceaffectError, match=r"faceaffect\[audio\]' \(or a local model\)"):
        optional_import("no_such_package_4f2a", "audio", "audio", " (or a local model)")


def test_a_missing_faceaffect_module_is_a_bug_not_a_missing_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package that exists but fails on a missing import of its own names that package, not an extra;
    faceaffect's own modules are never blamed on an extra."""
    (tmp_path / "broken_extra_4f2a.py").write_text("import no_such_dependency_4f2a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(FaceaffectError, match="needs no_such_dependency_4f2a"):
        optional_import("broken_extra_4f2a", "the broken extra")
    with pytest.raises(ModuleNotFoundError):
        optional_import("faceaffect.no_such_module_4f2a", "nothing")
