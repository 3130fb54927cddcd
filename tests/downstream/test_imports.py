"""The downstream package has no import loops, counting imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import faceaffect.downstream

PACKAGE = "faceaffect.downstream"


def import_graph() -> dict[str, set[str]]:
    """Module name -> the package's modules it imports anywhere in its file (top level or in functions)."""
    folder = Path(faceaffect.downstream.__file__).parent
    modules = {path.stem for path in folder.glob("*.py") if path.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name in modules:
        tree = ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            targets |= {n.split(".")[2] for n in names if n.startswith(PACKAGE + ".")} & modules
        graph[name] = targets - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import loop as a list of modules (first == last), or [] when there is none."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node], path[len(path) :] = "open", [node]
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        path.pop()
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def test_no_import_loops_in_downstream() -> None:
    graph = import_graph()
    assert {"fit", "heads", "predictors", "search", "workflow"} <= set(graph)
    assert "predictors" not in graph["heads"] and "heads" in graph["fit"]
    assert find_cycle(graph) == [], " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_loop() -> None:
    assert find_cycle({"fit": {"heads"}, "heads": {"predictors"}, "predictors": {"fit"}}) == [
        "fit",
        "heads",
        "predictors",
        "fit",
    ]
    assert find_cycle({"a": {"b"}, "b": set()}) == []
