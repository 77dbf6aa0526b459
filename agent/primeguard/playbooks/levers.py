"""Levers the playbooks pull. Each is idempotent: running it again after success changes nothing.

CEX levers (cancel orders, close positions, disable keys) live with the CEX adapter; here are the
on-chain ones and the margin-call notice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from primeguard.config.schema import PrimeguardConfig
from primeguard.custody.signer import KeystoreSigner
from primeguard.custody.vault import VaultExecutor, fee_fields
from primeguard.domain.errors import CustodyError
from primeguard.playbooks.engine import Lever
from primeguard.store.tables import ActionRow
from primeguard.venues.checkpoints import checkpoint, step_name


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
            out[vault.id] = await asyncio.to_thread(_pause_once, ex, custody.receipt_timeout_s,
                                                    step_name(action, vault.id, "pause-sent"))
            checkpoint(step_name(action, vault.id, "pause"))
        return {"vaults": out}

    return run


def _pause_once(ex: VaultExecutor, timeout_s: float, sent_step: str = "") -> str:
    if ex.paused():
        return "already_paused"
    signed = ex.sign_pause(ex.next_nonce())
    tx_hash = ex.broadcast(signed)
    if sent_step:
        checkpoint(sent_step)  # sent, not yet confirmed
    outcome = ex.wait(tx_hash, timeout_s)
    if outcome.status != "confirmed":
        raise CustodyError(f"pause transaction {outcome.tx_hash} {outcome.status}")
    return "paused"


Tell = Callable[[ActionRow], Awaitable[list[dict[str, Any]]]]
"""Sends an action's margin-call notice on the client's routes; one delivery record per route
(``route``, ``to``, ``ok``, ``attempts``, ``error``: redacted). Raises when the client has no route."""


def margin_call_lever(tell: Tell | None = None) -> Lever:
    """Tell the client: the notice (LTV now, bands, what to post or repay, the deadline) goes out on
    its own routes through ``tell``; the result records every delivery (stored with the action and
    audited). Fails (the action is ``failed``, the reason recorded) when no route took the notice.
    Without ``tell`` it only records the notice. A resumed action sends again: at least once."""

    async def run(action: ActionRow) -> Mapping[str, Any]:
        p = action.params
        out: dict[str, Any] = {"notice": "margin call", "deadline": p.get("deadline"), "ltv": p.get("ltv"),
                               "post_usd": p.get("post_usd"), "repay_usd": p.get("repay_usd")}
        if tell is None:
            return out
        deliveries = await tell(action)
        if not any(d.get("ok") for d in deliveries):
            reasons = "; ".join(f"{d.get('route')} {d.get('to')}: {d.get('error')}" for d in deliveries)
            raise CustodyError(f"the margin-call notice reached no route of {action.client_id}: {reasons}")
        return {**out, "deliveries": deliveries}

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


# --- Permit2, NFT operators, EIP-7702 delegations (issue M) -------------------------------------------


def _custody_signer(cfg: PrimeguardConfig, owner: str, config_dir: Path | None) -> KeystoreSigner:
    if cfg.custody is None:
        raise CustodyError("no custody section: no key to act for the wallet with")
    signer = KeystoreSigner.open(cfg.custody.treasury_keystore, cfg.custody.password, base_dir=config_dir)
    if signer.address != owner:
        raise CustodyError(f"wallet {owner} is not controlled by the custody key: the PB cannot act for it, "
                           f"alert the client")
    return signer


def _send_fn(w3: Any, signer: KeystoreSigner, fn: Any, gas: int, timeout_s: float) -> str:
    tx = fn.build_transaction({"from": signer.address, "nonce": w3.eth.get_transaction_count(signer.address, "pending"),
                               "gas": gas, "chainId": w3.eth.chain_id, **fee_fields(w3)})
    signed = signer.sign(tx)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw), timeout=timeout_s)
    if receipt["status"] != 1:
        raise CustodyError(f"transaction {signed.tx_hash} reverted")
    return signed.tx_hash


def revoke_permit2_once(rpc_url: str, signer: KeystoreSigner, token: str, spender: str, gas: int,
                        timeout_s: float) -> Mapping[str, Any]:
    """Permit2 ``lockdown([(token, spender)])`` (amount to 0) from the signer's wallet. Idempotent:
    an allowance already at 0 is reported as already revoked and nothing is sent."""
    from web3 import Web3

    from primeguard.venues.evm.grants import PERMIT2, PERMIT2_ABI

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
    permit2 = w3.eth.contract(address=PERMIT2, abi=PERMIT2_ABI)
    token, spender = Web3.to_checksum_address(token), Web3.to_checksum_address(spender)
    if permit2.functions.allowance(signer.address, token, spender).call()[0] == 0:
        return {"result": "already_revoked", "token": token, "spender": spender, "via": "permit2"}
    tx_hash = _send_fn(w3, signer, permit2.functions.lockdown([(token, spender)]), gas, timeout_s)
    return {"result": "revoked", "token": token, "spender": spender, "via": "permit2", "tx_hash": tx_hash}


def revoke_operator_once(rpc_url: str, signer: KeystoreSigner, collection: str, operator: str, gas: int,
                         timeout_s: float) -> Mapping[str, Any]:
    """``setApprovalForAll(operator, false)`` on an ERC-721 / ERC-1155 collection. Idempotent."""
    from web3 import Web3

    from primeguard.venues.evm.grants import OPERATOR_ABI

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
    c = w3.eth.contract(address=Web3.to_checksum_address(collection), abi=OPERATOR_ABI)
    operator = Web3.to_checksum_address(operator)
    if not c.functions.isApprovedForAll(signer.address, operator).call():
        return {"result": "already_revoked", "collection": c.address, "operator": operator}
    tx_hash = _send_fn(w3, signer, c.functions.setApprovalForAll(operator, False), gas, timeout_s)
    return {"result": "revoked", "collection": c.address, "operator": operator, "tx_hash": tx_hash}


def clear_delegation_once(rpc_url: str, signer: KeystoreSigner, gas: int, timeout_s: float) -> Mapping[str, Any]:
    """Clear the signer's EIP-7702 delegation: a type-4 transaction carrying an authorization to the
    zero address signed by the wallet's own key. Idempotent: no delegation → nothing is sent."""
    from web3 import Web3

    from primeguard.venues.evm.grants import delegate_of

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
    if delegate_of(bytes(w3.eth.get_code(signer.address))) is None:  # type: ignore[arg-type]
        return {"result": "not_delegated", "wallet": signer.address}
    nonce = w3.eth.get_transaction_count(signer.address, "pending")
    chain_id = w3.eth.chain_id
    # Self-sponsored: the authorization's nonce is the one after the transaction's own.
    auth = signer.sign_authorization(chain_id, "0x0000000000000000000000000000000000000000", nonce + 1)
    tx = {"type": 4, "from": signer.address, "to": signer.address, "value": 0, "data": b"", "nonce": nonce,
          "gas": gas, "chainId": chain_id, "authorizationList": [auth], **fee_fields(w3)}
    signed = signer.sign(tx)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw), timeout=timeout_s)
    if receipt["status"] != 1 or delegate_of(bytes(w3.eth.get_code(signer.address))) is not None:  # type: ignore[arg-type]
        raise CustodyError(f"clearing the delegation of {signer.address} failed ({signed.tx_hash})")
    return {"result": "cleared", "wallet": signer.address, "tx_hash": signed.tx_hash}


def revoke_grant_lever(cfg: PrimeguardConfig, *, config_dir: Path | None = None) -> Lever:
    """Revoke a Permit2 allowance (``grant: permit2``, params token_address + spender), an NFT
    operator (``grant: operator``, params collection + operator) or clear an EIP-7702 delegation
    (``grant: delegation``) with the custody key. The wallet must be the custody key's own; if it is
    not, the lever fails with a CustodyError saying the PB cannot act (the critical finding stands)."""

    async def run(action: ActionRow) -> Mapping[str, Any]:
        p = action.params
        signer = await asyncio.to_thread(_custody_signer, cfg, p["owner"], config_dir)
        assert cfg.custody is not None
        gas, wait = cfg.custody.gas_limit, cfg.custody.receipt_timeout_s
        chain = next(c for c in cfg.chains if c.id == p["chain"])
        if p["grant"] == "permit2":
            return await asyncio.to_thread(revoke_permit2_once, chain.rpc_url, signer, p["token_address"],
                                           p["spender"], gas, wait)
        if p["grant"] == "operator":
            return await asyncio.to_thread(revoke_operator_once, chain.rpc_url, signer, p["collection"],
                                           p["operator"], gas, wait)
        if p["grant"] == "delegation":
            return await asyncio.to_thread(clear_delegation_once, chain.rpc_url, signer, gas, wait)
        raise CustodyError(f"unknown grant kind {p['grant']!r}")

    return run
