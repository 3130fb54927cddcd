"""The layers of DESIGN.md, checked on the code: every import of a faceaffect module (at module level, inside
functions and under TYPE_CHECKING alike) goes to the same layer or a lower one, and no modules import each
other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import faceaffect

PACKAGE = Path(faceaffect.__file__).parent
LAYERS = (
    ("core",),
    ("hub",),
    ("onnx", "models", "runtime", "detect", "video", "preprocess", "images", "metrics"),
    ("options", "recognizer", "analysis", "results", "render", "sink"),
    ("train", "downstream", "export"),
    ("cli", "serve", "batch", "__main__", "__init__", "_moved"),
)
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every faceaffect module ``path`` imports (``from faceaffect.x import y`` counts ``faceaffect.x.y``
    when that is a module, else ``faceaffect.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("faceaffect"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("faceaffect"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
    return found


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return LAYER_OF["__init__"]
    return LAYER_OF[parts[1]]


def graph() -> dict[str, set[str]]:
    return {name: imports(path) & MODULES.keys() - {name} for name, path in MODULES.items()}


def test_every_module_belongs_to_a_layer() -> None:
    unplaced = sorted({name.split(".")[1] for name in MODULES if "." in name} - LAYER_OF.keys())
    assert not unplaced, f"modules outside every layer of DESIGN.md: {unplaced}"


def test_no_module_imports_a_layer_above_it() -> None:
    upward = sorted(
        f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})"
        for name, targets in graph().items()
        for target in targets
        if layer(target) > layer(name) and target != "faceaffect"
    )
    assert not upward, "\n".join(upward)


def test_no_import_loops() -> None:
    edges = graph()
    loops: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(edges[name]):
            if state.get(target) == 1:
                loops.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name)
    assert not loops, "\n".join(" -> ".join(loop) for loop in loops)


def test_the_checker_sees_a_loop_and_an_upward_import(tmp_path: Path) -> None:
    """The parser above finds imports of every form (so the tests can fail)."""
    source = tmp_path / "example.py"
    source.write_text(
        "import faceaffect.core.errors\n"
        "from faceaffect.hub import registry\n"
        "def late():\n"
        "    from faceaffect.analysis import Analyzer\n"
    )
    assert imports(source) == {"faceaffect.core.errors", "faceaffect.hub.registry", "faceaffect.analysis"}
