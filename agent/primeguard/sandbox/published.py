"""Published third-party contracts for the sandbox and the tests, read from their npm packages.

Nothing here is ours: UNI from ``@uniswap/governance``'s build, Permit2's runtime bytecode as
shipped in ``@uniswap/v4-periphery`` (``lib/permit2``; its sources pin ``solidity 0.8.17`` exactly,
which the solc-js here is not, so we place the package's own precompiled runtime at Permit2's
canonical address, as Permit2's own test helper does), and Aave v3's Hardhat artifacts from
``@aave/core-v3``. Development and tests only: the agent never deploys these.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from primeguard.domain.errors import ToolchainError
from primeguard.sandbox.toolchain import project_root


def _modules() -> Path:
    return project_root() / "infra" / "toolchain" / "node_modules"


@lru_cache(maxsize=4)
def uni_artifact() -> dict[str, Any]:
    """ABI and creation bytecode of Uniswap's UNI token (allowances stored as uint96)."""
    path = _modules() / "@uniswap" / "governance" / "build" / "Uni.json"
    if not path.is_file():
        raise ToolchainError(f"{path.name} not found: run `make setup` (npm package @uniswap/governance)")
    data = json.loads(path.read_text())
    code = data["bytecode"] if isinstance(data["bytecode"], str) else data["evm"]["bytecode"]["object"]
    return {"abi": data["abi"], "bytecode": code if code.startswith("0x") else "0x" + code}


@lru_cache(maxsize=1)
def permit2_runtime() -> str:
    """Permit2's runtime bytecode (hex with 0x) as shipped inside ``@uniswap/v4-periphery``."""
    path = _modules() / "@uniswap" / "v4-periphery" / "lib" / "permit2" / "test" / "utils" / "DeployPermit2.sol"
    if not path.is_file():
        raise ToolchainError("Permit2 bytecode not found: run `make setup` (npm package @uniswap/v4-periphery)")
    match = re.search(r'hex"([0-9a-fA-F]+)"', path.read_text())
    if match is None:
        raise ToolchainError(f"no bytecode literal in {path.name}")
    return "0x" + match.group(1)


@lru_cache(maxsize=64)
def aave_artifact(name: str) -> dict[str, Any]:
    """ABI, bytecode and library link references of an Aave v3 contract from ``@aave/core-v3``."""
    base = _modules() / "@aave" / "core-v3" / "artifacts" / "contracts"
    matches = sorted(p for p in base.rglob(f"{name}.sol/{name}.json"))
    if not matches:
        raise ToolchainError(f"Aave artifact {name} not found: run `make setup` (npm package @aave/core-v3)")
    data = json.loads(matches[0].read_text())
    return {"abi": data["abi"], "bytecode": data["bytecode"], "linkReferences": data.get("linkReferences", {})}
