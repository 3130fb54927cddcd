"""The torchvision work-around: timm imports, unrelated errors surface, healthy installs are untouched."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_timm_imports_and_builds_in_this_environment() -> None:
    result = run_python(
        """
        from faceaffect.models._torchvision_compat import ensure_torchvision_importable
        ensure_torchvision_importable()
        import timm
        print(timm.create_model("tf_efficientnet_b0", pretrained=False, num_classes=0).num_features)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1280"


def test_an_unrelated_import_error_is_not_hidden() -> None:
    result = run_python(
        """
        import sys
        class Broken:
            def find_spec(self, name, path=None, target=None):
                if name == "torchvision":
                    raise RuntimeError("some other torchvision failure")
        sys.meta_path.insert(0, Broken())
        from faceaffect.models._torchvision_compat import ensure_torchvision_importable
        ensure_torchvision_importable()
        """
    )
    assert result.returncode != 0
    assert "RuntimeError: some other torchvision failure" in result.stderr


def test_a_healthy_torchvision_is_left_alone() -> None:
    result = run_python(
        """
        import sys, types, warnings
        sys.modules["torchvision"] = types.ModuleType("torchvision")
        from faceaffect.models import _torchvision_compat as compat
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compat.ensure_torchvision_importable()
        assert compat._library is None
        print("untouched")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "untouched"
