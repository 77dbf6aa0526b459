"""The layer map (agent/primeguard/layers.toml) holds: no forbidden import, no import cycle between
units (subpackages and root modules) nor between files. Every import statement counts, wherever it
is (module level, inside a function, under TYPE_CHECKING): a deferred import is still a dependency."""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "agent" / "primeguard"
ROOT = "primeguard"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = (ROOT, *path.relative_to(PKG).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> Iterable[str]:
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names)
        return
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, *([node.module] if node.module else [])])
    else:
        base = node.module or ""
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        yield sub if sub in MODULES else base  # `from pkg import module` depends on that module


def file_graph() -> dict[str, set[str]]:
    """module -> the primeguard modules it imports (the nearest existing module of each target)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        graph[module]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _targets(module, path, node):
                if target != ROOT and not target.startswith(ROOT + "."):
                    continue
                while target not in MODULES and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target != module:
                    graph[module].add(target)
    return graph


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def unit_graph(files: Mapping[str, set[str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for a, targets in files.items():
        for b in targets:
            if unit(a) != unit(b) and unit(b) != ROOT:  # the root __init__ holds only the version
                graph[unit(a)].add(unit(b))
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    nodes = set(graph) | {t for ts in graph.values() for t in ts}
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def load_map() -> tuple[dict[str, int], set[tuple[str, str]], dict[str, set[str]]]:
    data = tomllib.loads((PKG / "layers.toml").read_text(encoding="utf-8"))
    level: dict[str, int] = {}
    within: set[tuple[str, str]] = set()
    only: dict[str, set[str]] = {}
    for i, layer in enumerate(data["layer"]):
        for u in layer["units"]:
            assert u not in level, f"layers.toml: {u} is placed twice"
            level[u] = i
        for pair in layer.get("within", ()):
            a, b = (x.strip() for x in pair.split("->"))
            assert level.get(a) == level.get(b) == i, f"layers.toml: {pair} is not inside layer {layer['name']}"
            within.add((a, b))
        for u in layer["units"]:
            if "only_imported_by" in layer:
                only[u] = set(layer["only_imported_by"])
    return level, within, only


FILES = file_graph()
UNITS = unit_graph(FILES)


def test_every_unit_is_placed_on_the_map() -> None:
    level, _, _ = load_map()
    units = {unit(m) for m in MODULES} - {ROOT}
    assert sorted(units - set(level)) == [], "add these to agent/primeguard/layers.toml"


def test_no_forbidden_import() -> None:
    level, within, only = load_map()
    bad = []
    for a, targets in sorted(UNITS.items()):
        for b in sorted(targets):
            if a not in level or b not in level:
                continue  # reported by test_every_unit_is_placed_on_the_map
            ok = level[b] < level[a] or (a, b) in within
            if b in only and a not in only[b]:
                ok = False
            if not ok:
                why = sorted(f"{m} -> {t}" for m, ts in FILES.items() if unit(m) == a for t in ts if unit(t) == b)
                bad.append(f"{a} -> {b}: {', '.join(why)}")
    assert bad == []


def test_no_cycle_between_units() -> None:
    assert cycles(UNITS) == []


def test_no_cycle_between_files() -> None:
    assert cycles(FILES) == []


@pytest.mark.parametrize("unit_name", ["custody"])
def test_custody_imports_neither_the_daemon_nor_the_sandbox(unit_name: str) -> None:
    assert not UNITS[unit_name] & {"daemon", "sandbox", "app", "web", "cli"}


def test_the_checker_sees_deferred_and_type_checking_imports(tmp_path: Path) -> None:
    """The checker itself: a cycle hidden in a function body or under TYPE_CHECKING is found."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    src = tmp_path / "m.py"
    src.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from primeguard.store import repos\n"
                   "def f():\n    import primeguard.pipeline.collect\n")
    nodes = [n for n in ast.walk(ast.parse(src.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))]
    got = {t for n in nodes for t in _targets("primeguard.custody.x", src, n)}
    assert {"primeguard.store.repos", "primeguard.pipeline.collect"} <= got
