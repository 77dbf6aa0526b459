"""Find the external tools primeguard drives (anvil, forge, cast, the solc shim) and the
compiled contract artifacts.

Lookup order: environment override (``PRIMEGUARD_ANVIL`` …) → the project install made by
``make setup`` (``infra/toolchain/node_modules``) → ``PATH``. We call the real Linux binaries, not
npm's node wrappers, so a process we start is the process we stop.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from primeguard.domain.errors import ToolchainError

TOOLS = ("anvil", "forge", "cast")


def project_root() -> Path:
    """The checkout root: ``PRIMEGUARD_HOME`` or the nearest parent holding pyproject.toml."""
    env = os.environ.get("PRIMEGUARD_HOME")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists() and (parent / "contracts").is_dir():
            return parent
    return Path.cwd()


def find_tool(name: str) -> Path:
    """Path of ``anvil``, ``forge``, ``cast`` or ``solc`` (the shim). Raises ToolchainError."""
    env = os.environ.get(f"PRIMEGUARD_{name.upper()}")
    if env:
        p = Path(env)
        if p.is_file() and os.access(p, os.X_OK):
            return p
        raise ToolchainError(f"PRIMEGUARD_{name.upper()}={env} is not an executable file")
    root = project_root() / "infra" / "toolchain"
    if name == "solc":
        shim = root / "solc-shim"
        if shim.is_file() and (root / "node_modules" / "solc").is_dir():
            return shim
    else:
        local = root / "node_modules" / "@foundry-rs" / f"{name}-linux-amd64" / "bin" / name
        if local.is_file():
            return local
    found = shutil.which(name)
    if found:
        return Path(found)
    raise ToolchainError(f"{name} not found: run `make setup` (installs Foundry and solc-js from npm into "
                         f"infra/toolchain), or set PRIMEGUARD_{name.upper()} to its path")


def contracts_dir() -> Path:
    return project_root() / "contracts"


def build_contracts(force: bool = False) -> None:
    """Run ``forge build`` when artifacts are missing or older than any source file."""
    cdir = contracts_dir()
    out = cdir / "out"
    sources = list((cdir / "src").rglob("*.sol"))
    if not force and sources:
        artifacts = list(out.glob("*.sol/*.json"))
        if artifacts and min(p.stat().st_mtime for p in artifacts) >= max(p.stat().st_mtime for p in sources):
            return
    forge = find_tool("forge")
    solc = find_tool("solc")
    proc = subprocess.run([str(forge), "build", "--offline", "--use", str(solc)], cwd=cdir,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise ToolchainError(f"forge build failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
    contract_artifact.cache_clear()


@lru_cache(maxsize=64)
def contract_artifact(name: str) -> dict[str, Any]:
    """ABI and bytecode of contract ``name`` from contracts/out (building first if needed)."""
    cdir = contracts_dir()
    matches = sorted((cdir / "out").glob(f"*.sol/{name}.json"))
    if not matches:
        build_contracts(force=True)
        matches = sorted((cdir / "out").glob(f"*.sol/{name}.json"))
    if not matches:
        raise ToolchainError(f"no compiled artifact for contract {name} under {cdir / 'out'}")
    data = json.loads(matches[0].read_text())
    return {"abi": data["abi"], "bytecode": data["bytecode"]["object"],
            "deployedBytecode": data["deployedBytecode"]["object"]}


@lru_cache(maxsize=16)
def safe_artifact(name: str) -> dict[str, Any]:
    """ABI and bytecode of a Safe 1.4.1 contract from npm's @safe-global/safe-contracts build."""
    base = project_root() / "infra" / "toolchain" / "node_modules" / "@safe-global" / "safe-contracts" / "build"
    matches = sorted((base / "artifacts" / "contracts").rglob(f"{name}.sol/{name}.json"))
    if not matches:
        raise ToolchainError(f"Safe artifact {name} not found under {base}: run `make setup`")
    data = json.loads(matches[0].read_text())
    return {"abi": data["abi"], "bytecode": data["bytecode"], "deployedBytecode": data["deployedBytecode"]}
