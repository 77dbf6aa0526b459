"""Sandbox accounts and transactions: keys derived from the sandbox mnemonic, and sending a call
from an unlocked anvil account. Sandbox only; the building block of chain.py and vaults.py."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from eth_account import Account as EthAccount

from primeguard.domain.errors import SandboxError
from primeguard.sandbox.anvil import SANDBOX_MNEMONIC

EthAccount.enable_unaudited_hdwallet_features()


@lru_cache(maxsize=4096)
def derived_account(index: int) -> tuple[str, str]:
    """(address, private key hex) of the sandbox mnemonic's account ``index``. Sandbox only."""
    acct = EthAccount.from_mnemonic(SANDBOX_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return acct.address, acct.key.hex()


def send_tx(fn: Any, sender: str) -> None:
    """Send a contract call from an unlocked sandbox account; a revert is a SandboxError."""
    receipt = fn.transact({"from": sender})
    got = fn.w3.eth.wait_for_transaction_receipt(receipt)
    if got["status"] != 1:
        raise SandboxError(f"sandbox transaction {fn.fn_name} reverted")
