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
from primeguard.custody.vault import VaultExecutor
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
            ex = VaultExecutor(chain.rpc_url, vault.address, signer, gas_limit=custody.gas_limit)
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
