"""The risk package stays pure: no I/O library, no wall clock, no float in the decision path."""

from __future__ import annotations

import ast
from pathlib import Path

import primeguard.risk

RISK = Path(primeguard.risk.__file__).parent
FORBIDDEN = {"web3", "ccxt", "httpx", "aiohttp", "sqlmodel", "sqlalchemy", "requests", "socket", "asyncio",
             "primeguard.venues", "primeguard.store", "primeguard.web", "primeguard.daemon", "os", "subprocess"}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_io_imports_and_no_wall_clock():
    for path in RISK.glob("*.py"):
        mods = imported(path)
        bad = {m for m in mods if m in FORBIDDEN or m.split(".")[0] in FORBIDDEN}
        assert not bad, f"{path.name} imports {bad}"
        text = path.read_text()
        assert "datetime.now(" not in text and ".utcnow(" not in text and "time.time(" not in text, path.name


def test_floats_only_in_the_stress_grid():
    for path in RISK.glob("*.py"):
        if path.name == "stress.py":
            continue
        tree = ast.parse(path.read_text())
        floats = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "float"]
        consts = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, float)]
        assert not floats and not consts, path.name
