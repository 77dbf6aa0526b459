"""Levers the playbooks pull. Each is idempotent: running it again after success changes nothing.

CEX levers (cancel orders, close positions, disable keys) live with the CEX adapter; here are the
on-chain ones and the margin-call notice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from primeguard.config.schema import PrimeguardConfig
from primeguard.custody.signer import KeystoreSigner
from primeguard.custody.vault import VaultExecutor, fee_fields
from primeguard.domain.errors import CustodyError
from primeguard.playbooks.engine import Lever
from primeguard.store.tables import ActionRow


def vault_pause_lever(cfg: PrimeguardConfig, *, config_dir: Path | None = None) -> Lever:
    """Pause every CollateralVault of the action's client with the guardian key (pause only)."""

    async def run(action: ActionRow) -> Mapping[str, Any]:
        if cfg.custody is None or cfg.custody.guardian_keystore is None:
            raise CustodyError("no guardian keystore configured: cannot pause vaults")
        custody = cfg.custody
        signer = await asyncio.to_thread(KeystoreSigner.open, custody.guardian_keystore, custody.password,
                                         base_dir=config_dir)
        out: dict[str, str] = {}
        for vault in (v for v in cfg.vaults if v.client == action.client_id):
            chain = next(c for c in cfg.chains if c.id == vault.chain)
            ex = VaultExecutor(chain.rpc_url, vault.address, signer, chain_id=chain.chain_id,
                               gas_limit=custody.gas_limit)
            out[vault.id] = await asyncio.to_thread(_pause_once, ex, custody.receipt_timeout_s)
        return {"vaults": out}

    return run


def _pause_once(ex: VaultExecutor, timeout_s: float) -> str:
    if ex.paused():
        return "already_paused"
    signed = ex.sign_pause(ex.next_nonce())
    outcome = ex.wait(ex.broadcast(signed), timeout_s)
    if outcome.status != "confirmed":
        raise CustodyError(f"pause transaction {outcome.tx_hash} {outcome.status}")
    return "paused"


def margin_call_lever() -> Lever:
    """Record the margin call and its deadline; the notifier delivers it to the client's channel."""

    async def run(action: ActionRow) -> Mapping[str, Any]:
        return {"notice": "margin call", "deadline": action.params.get("deadline"),
                "ltv": action.params.get("ltv")}

    return run


ERC20_APPROVE_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "approve", "stateMutability": "nonpayable",
     "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "allowance", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
]


def revoke_approval_lever(cfg: PrimeguardConfig, *, config_dir: Path | None = None) -> Lever:
    """``approve(spender, 0)`` from a wallet the PB's treasury keystore controls. Idempotent: an
    allowance already at zero is reported as already revoked and nothing is sent."""

    async def run(action: ActionRow) -> Mapping[str, Any]:
        if cfg.custody is None:
            raise CustodyError("no custody section: no key to revoke approvals with")
        custody = cfg.custody
        p = action.params
        signer = await asyncio.to_thread(KeystoreSigner.open, custody.treasury_keystore, custody.password,
                                         base_dir=config_dir)
        if signer.address != p["owner"]:
            raise CustodyError(f"wallet {p['owner']} is not controlled by the custody key; revoke it by hand")
        chain = next(c for c in cfg.chains if c.id == p["chain"])
        # "token_address", not "token": the store masks keys that look like secrets.
        return await asyncio.to_thread(_revoke_once, chain.rpc_url, signer, p["token_address"], p["spender"],
                                       custody.gas_limit, custody.receipt_timeout_s)

    return run


def _revoke_once(rpc_url: str, signer: KeystoreSigner, token: str, spender: str, gas: int,
                 timeout_s: float) -> Mapping[str, Any]:
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
    contract = w3.eth.contract(address=Web3.to_checksum_address(token), abi=ERC20_APPROVE_ABI)
    if contract.functions.allowance(signer.address, spender).call() == 0:
        return {"result": "already_revoked", "token": token, "spender": spender}
    tx = contract.functions.approve(spender, 0).build_transaction({
        "from": signer.address, "nonce": w3.eth.get_transaction_count(signer.address, "pending"), "gas": gas,
        "chainId": w3.eth.chain_id, **fee_fields(w3)})
    signed = signer.sign(tx)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw), timeout=timeout_s)
    if receipt["status"] != 1:
        raise CustodyError(f"revoke transaction {signed.tx_hash} reverted")
    return {"result": "revoked", "token": token, "spender": spender, "tx_hash": signed.tx_hash}
