"""Compiled artifacts of primeguard's own contracts, shipped inside the package.

``make contracts`` builds ``contracts/`` with Foundry and exports each contract's ABI and bytecode
here (``<Name>.json``); a test holds the shipped files equal to the current build. Nothing at run
time calls forge: an agent installed from a wheel reads these files.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from primeguard.domain.errors import ConfigError

#: Contracts whose artifacts ship with the package (the sandbox deploys all; production reads
#: through BatchReader and CollateralVault).
SHIPPED = ("BatchReader", "CollateralVault", "SandboxAggregator", "SandboxSanctionsList", "SandboxToken")


@lru_cache(maxsize=16)
def contract_artifact(name: str) -> dict[str, Any]:
    """ABI and bytecode of one of our contracts.

    Returns:
        ``{"abi": [...], "bytecode": "0x...", "deployedBytecode": "0x..."}`` (a cached dict: do not
        mutate it).

    Raises:
        ConfigError: ``name`` is not one of :data:`SHIPPED`.
    """
    if name not in SHIPPED:
        raise ConfigError(f"no shipped artifact for contract {name!r} (known: {', '.join(SHIPPED)})")
    text = resources.files(__name__).joinpath(f"{name}.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def contract_abi(name: str) -> list[dict[str, Any]]:
    """The ABI of :func:`contract_artifact` ``name``."""
    abi: list[dict[str, Any]] = contract_artifact(name)["abi"]
    return abi
