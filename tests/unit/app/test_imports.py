"""The layering rules of docs/architecture.md, read from the source: no import cycle between production modules
(not even through an import inside a function), shared/ never imports the Functions layers, and production code
never imports devstack/, tools/, tests/ or bench/."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
LAYERS = ("shared", "orchestrators", "activities", "triggers")
NEVER = ("devstack", "tools", "tests", "bench")


def _modules() -> dict[str, Path]:
    out = {"function_app": REPO / "function_app.py"}
    for layer in LAYERS:
        for path in (REPO / layer).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path, modules: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Every module path an import in the file names (at the top, or inside a function). `from a.b import c` names
    a.b.c when that is one of `modules` (a submodule import), else a.b."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                names.add(sub if sub in modules else node.module)
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: {n for n in _imports(path, known) if n in known and n != name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_production_modules() -> None:
    graph = _graph()
    assert len(graph) > 100  # the walk found the code
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_one_through_a_function_level_import() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_shared_never_imports_the_functions_layers_and_production_never_imports_the_tools() -> None:
    bad = []
    for name, path in _modules().items():
        for imported in _imports(path):
            top = imported.split(".")[0]
            if top in NEVER or (name.startswith("shared") and top in ("triggers", "orchestrators", "activities")):
                bad.append(f"{name} imports {imported}")
    assert not bad, bad
