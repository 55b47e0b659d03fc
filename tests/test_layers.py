"""The import contract covers the whole app, and nothing imports in a circle.

import-linter (in `make lint`) checks that a lower layer never imports a higher one; it says
nothing of a module left out of every layer, nor of a circle among modules of one layer.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("obligations", cache_dir=None)


def _app_modules(graph: grimp.ImportGraph) -> set[str]:
    return {
        m
        for m in graph.modules
        if not m.startswith("obligations.migrations")
        and not (ROOT / m.replace(".", "/") / "__init__.py").exists()
    }


def _placed() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    return [name.strip() for layer in layers for name in layer.split(":")]


def test_every_module_of_the_app_is_placed_in_a_layer() -> None:
    placed = _placed()
    unplaced = {
        m
        for m in _app_modules(_graph())
        if not any(m == p or m.startswith(p + ".") for p in placed)
    }
    assert not unplaced, f"add these to a layer in pyproject.toml: {sorted(unplaced)}"


def _circles(imports: dict[str, set[str]]) -> list[list[str]]:
    """Every back edge of a depth-first search, with the path that closes the circle."""
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(imports[module]):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(imports):
        if module not in state:
            visit(module, [module])
    return circles


def test_no_module_imports_in_a_circle() -> None:
    graph = _graph()
    modules = _app_modules(graph)
    imports = {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}
    circles = _circles(imports)
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_the_circle_search_finds_a_circle_and_only_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _circles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
