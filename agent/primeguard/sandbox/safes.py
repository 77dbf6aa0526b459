"""Real Safe 1.4.1 contracts on the sandbox chain (npm's compiled artifacts, deployed as they are).

Safes are created through the proxy factory with ``setup`` like production Safes. Modules and
guards are then configured by the Safe itself (``enableModule``/``setGuard`` are ``authorized``:
only callable by the Safe), which the sandbox does by impersonating the Safe on anvil.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.logs import DISCARD

from primeguard.domain.errors import SandboxError
from primeguard.sandbox.scenario import SafeScenario
from primeguard.sandbox.toolchain import safe_artifact

ZERO = "0x0000000000000000000000000000000000000000"


@dataclass
class SafeDeployment:
    singleton: str
    factory: str
    fallback_handler: str
    guard: str | None = None  # the sandbox guard, deployed on first use


def _deploy(w3: Web3, name: str, sender: str, *args: Any) -> str:
    art = safe_artifact(name)
    tx = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args).transact({"from": sender})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    if receipt["status"] != 1:
        raise SandboxError(f"deploying Safe {name} reverted")
    return str(receipt["contractAddress"])


def deploy_safe_infra(w3: Web3, sender: str) -> SafeDeployment:
    return SafeDeployment(
        singleton=_deploy(w3, "Safe", sender),
        factory=_deploy(w3, "SafeProxyFactory", sender),
        fallback_handler=_deploy(w3, "CompatibilityFallbackHandler", sender),
    )


def _as_safe(w3: Web3, safe: str, fn_name: str, *args: Any) -> None:
    """Call an ``authorized`` Safe function from the Safe itself (anvil impersonation)."""
    contract = w3.eth.contract(address=safe, abi=safe_artifact("Safe")["abi"])
    with impersonated(w3, safe):
        tx = getattr(contract.functions, fn_name)(*args).transact({"from": safe})
        if w3.eth.wait_for_transaction_receipt(tx)["status"] != 1:
            raise SandboxError(f"Safe {fn_name} reverted on {safe}")


@contextmanager
def impersonated(w3: Web3, account: str) -> Iterator[None]:
    """Send transactions as ``account`` on anvil; its ETH balance is restored afterwards so the
    scenario's balances stay exact (the gas we spend is not the client's)."""
    before = w3.eth.get_balance(account)
    w3.provider.make_request("anvil_impersonateAccount", [account])  # type: ignore[arg-type]
    w3.provider.make_request("anvil_setBalance", [account, hex(before + 10**18)])  # type: ignore[arg-type]
    try:
        yield
    finally:
        w3.provider.make_request("anvil_stopImpersonatingAccount", [account])  # type: ignore[arg-type]
        w3.provider.make_request("anvil_setBalance", [account, hex(before)])  # type: ignore[arg-type]


def create_safe(w3: Web3, infra: SafeDeployment, spec: SafeScenario, owners: list[str], salt: int,
                sender: str) -> str:
    """Create a Safe proxy with ``owners``/``threshold``, then enable modules and set the guard."""
    safe_abi = safe_artifact("Safe")["abi"]
    singleton = w3.eth.contract(address=infra.singleton, abi=safe_abi)
    initializer = singleton.encode_abi(
        "setup", [owners, spec.threshold, ZERO, b"", infra.fallback_handler, ZERO, 0, ZERO]
    )
    factory = w3.eth.contract(address=infra.factory, abi=safe_artifact("SafeProxyFactory")["abi"])
    tx = factory.functions.createProxyWithNonce(infra.singleton, initializer, salt).transact({"from": sender})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    if receipt["status"] != 1:
        raise SandboxError("Safe creation reverted")
    created = factory.events.ProxyCreation().process_receipt(receipt, errors=DISCARD)
    address = str(created[0]["args"]["proxy"])
    for module in spec.modules:
        _as_safe(w3, address, "enableModule", module)
    if spec.guard is not None:
        guard = spec.guard
        if guard == "sandbox":
            if infra.guard is None:
                # Safe's own example guard: blocks delegatecalls except to one target.
                infra.guard = _deploy(w3, "DelegateCallTransactionGuard", sender, ZERO)
            guard = infra.guard
        _as_safe(w3, address, "setGuard", guard)
    return address
