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
    """The Foundry project (``contracts/``) under the project root."""
    return project_root() / "contracts"


def _newest_input_mtime(cdir: Path) -> float:
    """Newest modification time among the inputs of a build: sources, test fixtures (deployed by
    the Python chain tests) and foundry.toml."""
    inputs = [*(cdir / "src").rglob("*.sol"), *(cdir / "test" / "fixtures").rglob("*.sol"), cdir / "foundry.toml"]
    return max((p.stat().st_mtime for p in inputs if p.exists()), default=0.0)


def contracts_up_to_date() -> bool:
    """True when contracts/out holds artifacts built after the last change to src/ or foundry.toml.

    forge rewrites ``cache/solidity-files-cache.json`` on every build, including no-op builds, but
    leaves unchanged artifacts alone: the cache file, not the artifacts, is the build timestamp.
    """
    cdir = contracts_dir()
    stamp = cdir / "cache" / "solidity-files-cache.json"
    if not stamp.is_file() or not any((cdir / "out").glob("*.sol/*.json")):
        return False
    return stamp.stat().st_mtime >= _newest_input_mtime(cdir)


def build_contracts(force: bool = False) -> None:
    """Run ``forge build --offline`` with the solc shim unless the artifacts are current.

    Args:
        force: build even when :func:`contracts_up_to_date` says nothing changed.

    Raises:
        ToolchainError: forge or the shim is missing, or the build failed.
    """
    if not force and contracts_up_to_date():
        return
    forge = find_tool("forge")
    solc = find_tool("solc")
    proc = subprocess.run([str(forge), "build", "--offline", "--use", str(solc)], cwd=contracts_dir(),
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise ToolchainError(f"forge build failed: {(proc.stderr or proc.stdout).strip()[-800:]}")


def built_artifact(name: str) -> dict[str, Any]:
    """ABI and bytecode of contract ``name`` from a Foundry build (``contracts/out``), building first
    when the artifacts are missing or older than the sources. Development and tests only: the agent
    reads the copies shipped in the package (:mod:`primeguard.venues.evm.artifacts`).

    Returns:
        ``{"contract": name, "abi": [...], "bytecode": "0x...", "deployedBytecode": "0x..."}``.

    Raises:
        ToolchainError: no such contract, or the build failed.
    """
    cdir = contracts_dir()
    build_contracts()
    matches = sorted((cdir / "out").glob(f"*.sol/{name}.json"))
    if not matches:
        raise ToolchainError(f"no compiled artifact for contract {name} under {cdir / 'out'}")
    data = json.loads(matches[0].read_text())
    return {"contract": name, "abi": data["abi"], "bytecode": data["bytecode"]["object"],
            "deployedBytecode": data["deployedBytecode"]["object"]}


def artifact_text(art: dict[str, Any]) -> str:
    """The exact text a shipped artifact file holds (stable key order, one trailing newline)."""
    return json.dumps(art, indent=1, sort_keys=True) + "\n"


def export_artifacts(dest: Path | None = None) -> list[Path]:
    """Build the contracts and write every shipped artifact into the package (``make contracts``).

    Returns the files written. Raises ToolchainError when the build fails.
    """
    from primeguard.venues.evm import artifacts

    target = dest or Path(artifacts.__file__).parent
    written = []
    for name in artifacts.SHIPPED:
        path = target / f"{name}.json"
        path.write_text(artifact_text(built_artifact(name)))
        written.append(path)
    artifacts.contract_artifact.cache_clear()
    return written


@lru_cache(maxsize=16)
def safe_artifact(name: str) -> dict[str, Any]:
    """ABI and bytecode of a Safe 1.4.1 contract from npm's @safe-global/safe-contracts build."""
    base = project_root() / "infra" / "toolchain" / "node_modules" / "@safe-global" / "safe-contracts" / "build"
    matches = sorted((base / "artifacts" / "contracts").rglob(f"{name}.sol/{name}.json"))
    if not matches:
        raise ToolchainError(f"Safe artifact {name} not found under {base}: run `make setup`")
    data = json.loads(matches[0].read_text())
    return {"abi": data["abi"], "bytecode": data["bytecode"], "deployedBytecode": data["deployedBytecode"]}


if __name__ == "__main__":  # `python -m primeguard.sandbox.toolchain export` (make contracts)
    import sys

    if sys.argv[1:] != ["export"]:
        sys.exit("usage: python -m primeguard.sandbox.toolchain export")
    for p in export_artifacts():
        print(f"exported {p.name}")
