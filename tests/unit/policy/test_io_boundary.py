"""Only ``policy/loader.py`` touches files: every other module of the policy package takes data.

An AST scan of each module: no ``open()``, no file-system calls on paths (``read_text``, ``rglob``,
``is_file``, ...), no file-system modules (``os``, ``io``, ``shutil``, ``tempfile``, ``glob``), no
concrete ``pathlib.Path``, and no ``safeyaml.read_yaml_text``. The pure modules may not import the
loader either, so they cannot reach files through it; only the command layer and the package
``__init__`` (which re-exports it) do.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import primeguard.policy

PACKAGE = Path(primeguard.policy.__file__).parent
BOUNDARY = "loader.py"
MAY_IMPORT_LOADER = frozenset({"__init__.py", "commands.py", BOUNDARY})
FS_MODULES = frozenset({"os", "io", "shutil", "tempfile", "glob", "fileinput"})
FS_METHODS = frozenset({
    "open", "read_text", "read_bytes", "write_text", "write_bytes", "rglob", "glob", "iterdir", "walk",
    "is_file", "is_dir", "exists", "stat", "lstat", "mkdir", "rmdir", "unlink", "touch", "scandir", "listdir",
    "fdopen", "fsync", "mkstemp", "read_yaml_text",
})
FORBIDDEN_NAMES = {"pathlib": {"Path", "PosixPath", "WindowsPath"}, "primeguard.safeyaml": {"read_yaml_text"}}


def io_uses(source: str) -> list[str]:
    """Every file access (or way to one) in ``source``, as ``line: what``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] in FS_MODULES]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] in FS_MODULES:
                found.append(f"{node.lineno}: from {module} import")
            found += [f"{node.lineno}: from {module} import {a.name}" for a in node.names
                      if a.name in FORBIDDEN_NAMES.get(module, ())]
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "open":
                found.append(f"{node.lineno}: open()")
            elif isinstance(func, ast.Attribute) and func.attr in FS_METHODS:
                found.append(f"{node.lineno}: .{func.attr}()")
    return found


def imports_loader(source: str) -> bool:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "primeguard.policy.loader":
            return True
        if (isinstance(node, ast.ImportFrom) and node.module == "primeguard.policy"
                and any(a.name == "loader" for a in node.names)):
            return True
        if isinstance(node, ast.Import) and any(a.name == "primeguard.policy.loader" for a in node.names):
            return True
    return False


MODULES = sorted(p.name for p in PACKAGE.glob("*.py"))


def test_the_boundary_is_where_files_are_read() -> None:
    assert BOUNDARY in MODULES and "engine.py" in MODULES
    assert io_uses((PACKAGE / BOUNDARY).read_text(encoding="utf-8"))  # the scan sees real file access


@pytest.mark.parametrize("name", [m for m in MODULES if m != BOUNDARY])
def test_module_does_no_file_io(name: str) -> None:
    assert io_uses((PACKAGE / name).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("name", [m for m in MODULES if m not in MAY_IMPORT_LOADER])
def test_pure_module_does_not_import_the_loader(name: str) -> None:
    assert not imports_loader((PACKAGE / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("snippet", [
    "open('x')",
    "from pathlib import Path\n",
    "p.read_text()",
    "root.rglob('*')",
    "import os\n",
    "from primeguard.safeyaml import read_yaml_text\n",
])
def test_the_scan_catches_file_access(snippet: str) -> None:
    assert io_uses(snippet)
