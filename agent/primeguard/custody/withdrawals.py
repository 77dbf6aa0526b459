"""The withdrawal lifecycle: requested → approved | denied → signed → broadcast → confirmed | failed.

Every step goes through the store (with its audit entry) and the policy is asked twice: when the
request is made and again right before signing, because prices and LTV move in between. Bad input
is rejected before anything is written; a denial is recorded as a decision, never raised.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from primeguard.config.schema import CexAccountConfig, PrimeguardConfig, VaultConfig
from primeguard.custody.signer import KeystoreSigner
from primeguard.custody.vault import NATIVE, VaultExecutor
from primeguard.domain.decision import Decision, Outcome
from primeguard.domain.errors import CustodyError, InputError
from primeguard.domain.model import VenueKind
from primeguard.domain.money import parse_address, parse_amount, parse_base_units
from primeguard.policy.inputs import ApprovalGiven, WithdrawalContext, WithdrawalRequest
from primeguard.store import repos
from primeguard.store.db import Store

CEX_ASSETS = frozenset({"USDT", "USDC", "BTC", "ETH"})
CEX_DECIMALS = 8  # the venues' withdrawal precision for these assets
CEX_NETWORK = {"ethereum": "ETH"}

Decide = Callable[[WithdrawalRequest, WithdrawalContext], Decision]
ContextFor = Callable[[WithdrawalRequest, list[ApprovalGiven], list[tuple[datetime, Decimal]]], WithdrawalContext]


@dataclass(frozen=True)
class Result:
    withdrawal_id: str
    state: str
    decision: Decision | None = None
    tx_hash: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = self.decision
        return {"id": self.withdrawal_id, "state": self.state, "tx_hash": self.tx_hash, "error": self.error,
                "decision": None if d is None else {
                    "outcome": d.outcome.value, "reasons": [r.value for r in d.reasons], "rules": list(d.rule_ids),
                    "explanation": d.explanation, "policy_hash": d.policy_hash,
                    "approvals_required": d.approvals_required}}


class WithdrawalService:
    """On-chain withdrawals out of CollateralVaults, checked by policy, approved by a second person."""

    def __init__(self, cfg: PrimeguardConfig, store: Store, decide: Decide, context_for: ContextFor, *,
                 config_dir: Path | None = None, velocity_window_s: int = 86400) -> None:
        self.cfg = cfg
        self.store = store
        self.decide = decide
        self.context_for = context_for
        self.config_dir = config_dir
        self.velocity_window = timedelta(seconds=velocity_window_s)
        self._signer: KeystoreSigner | None = None

    # --- input -----------------------------------------------------------------------------------

    def _vault(self, account_id: str) -> VaultConfig:
        for v in self.cfg.vaults:
            if v.id == account_id:
                return v
        raise InputError(f"unknown account {account_id!r}: withdrawals leave only from a configured vault")

    def _asset(self, chain: str, symbol: str) -> tuple[str, int, str]:
        """(address, decimals, priced asset) of ``symbol`` on ``chain``."""
        if symbol == "ETH":
            return NATIVE, 18, "ETH"
        for t in self.cfg.tokens_on(chain):
            if t.symbol == symbol:
                return t.address, t.decimals, t.asset
        raise InputError(f"unknown asset {symbol!r} on {chain}")

    def _cex(self, account_id: str) -> CexAccountConfig | None:
        return next((a for a in self.cfg.cex_accounts if a.id == account_id), None)

    def validate(self, account_id: str, asset: str, amount: object, destination: object
                 ) -> tuple[VaultConfig | CexAccountConfig, str, Decimal, int, str]:
        """Check a request before anything is written: a configured account, a known asset, a
        plain positive amount within the asset's precision (:func:`parse_amount`: no exponent,
        ASCII digits, never rounded), a checksummed destination. Raises InputError."""
        cex = self._cex(account_id)
        if cex is not None:
            if asset not in CEX_ASSETS:
                raise InputError(f"unknown asset {asset!r} for {cex.venue} withdrawals")
            dest = parse_address(destination, what="destination")
            qty, units = parse_amount(amount, CEX_DECIMALS, what="amount")
            return cex, asset, qty, units, dest
        vault = self._vault(account_id)
        _addr, decimals, _ = self._asset(vault.chain, asset)
        dest = parse_address(destination, what="destination")
        if dest == vault.address:
            raise InputError("destination: a vault cannot withdraw to itself")
        qty, units = parse_amount(amount, decimals, what="amount")
        return vault, asset, qty, units, dest

    # --- lifecycle ---------------------------------------------------------------------------------

    def _request_value(self, row: Any) -> WithdrawalRequest:
        return WithdrawalRequest(id=row.id, client_id=row.client_id, account_id=row.account_id,
                                 venue=VenueKind(row.venue),
                                 chain=row.chain or "", asset=row.asset, amount=Decimal(row.amount),
                                 destination=row.destination, requested_by=row.requested_by,
                                 requested_at=row.requested_at)

    def _evaluate(self, session: Any, row: Any, now: datetime) -> tuple[Decision, str]:
        req = self._request_value(row)
        approvals = [ApprovalGiven(a.approver, a.role) for a in repos.list_approvals(session, row.id)]
        since = now - self.velocity_window
        recent = [(w.updated_at, Decimal(w.amount)) for w in repos.list_withdrawals(session, client_id=row.client_id)
                  if w.id != row.id and w.state in ("approved", "signed", "broadcast", "confirmed")
                  and w.updated_at >= since and w.asset == row.asset]
        decision = self.decide(req, self.context_for(req, approvals, recent))
        rec = repos.record_decision(session, kind="withdrawal", subject=row.id, decision=decision,
                                    input={"request": _request_json(req), "approvals": [a.approver for a in approvals]},
                                    now=now)
        return decision, rec.id

    def request(self, *, account_id: str, asset: str, amount: object, destination: object, requested_by: str,
                now: datetime | None = None) -> Result:
        """Validate, record and decide. Raises InputError on bad input (nothing written)."""
        acct, asset, qty, _units, dest = self.validate(account_id, asset, amount, destination)
        now = now or datetime.now(UTC)
        venue, chain = ("evm", acct.chain) if isinstance(acct, VaultConfig) else (acct.venue, "ethereum")
        with self.store.session() as s:
            row = repos.create_withdrawal(s, client_id=acct.client, account_id=acct.id, venue=venue,
                                          chain=chain, asset=asset, amount=qty, destination=dest,
                                          requested_by=requested_by, now=now)
            decision, did = self._evaluate(s, row, now)
            state = self._apply(s, row.id, decision, did, actor=requested_by, now=now)
            return Result(row.id, state, decision)

    def _apply(self, s: Any, wid: str, decision: Decision, did: str, *, actor: str, now: datetime) -> str:
        if decision.outcome is Outcome.DENY:
            return repos.transition_withdrawal(s, wid, "denied", actor=actor, decision_id=did, now=now).state
        if decision.outcome is Outcome.ALLOW:
            return repos.transition_withdrawal(s, wid, "approved", actor=actor, decision_id=did, now=now).state
        return "requested"  # needs approval: stays requested

    def approve(self, withdrawal_id: str, *, approver: str, role: str, now: datetime | None = None) -> Result:
        """Add an approval (requester ≠ approver, enforced by the store) and decide again."""
        now = now or datetime.now(UTC)
        with self.store.session() as s:
            repos.add_approval(s, withdrawal_id, approver=approver, role=role, now=now)
            row = repos.get_withdrawal(s, withdrawal_id)
            assert row is not None
            decision, did = self._evaluate(s, row, now)
            state = self._apply(s, withdrawal_id, decision, did, actor=approver, now=now)
            return Result(withdrawal_id, state, decision)

    # --- execution --------------------------------------------------------------------------------

    def signer(self) -> KeystoreSigner:
        if self._signer is None:
            if self.cfg.custody is None:
                raise CustodyError("no custody section in the config: no signer for on-chain withdrawals")
            self._signer = KeystoreSigner.open(self.cfg.custody.treasury_keystore, self.cfg.custody.password,
                                               base_dir=self.config_dir)
        return self._signer

    def executor(self, vault: VaultConfig) -> VaultExecutor:
        chain = next(c for c in self.cfg.chains if c.id == vault.chain)
        gas = self.cfg.custody.gas_limit if self.cfg.custody else 250_000
        return VaultExecutor(chain.rpc_url, vault.address, self.signer(), chain_id=chain.chain_id, gas_limit=gas)

    def execute(self, withdrawal_id: str, *, actor: str = "custody", now: datetime | None = None,
                crash_after_sign: bool = False) -> Result:
        """Sign and send an approved withdrawal, or resume one that was signed/broadcast before a crash.

        ``crash_after_sign`` exists for the crash test only: it stops right after the signed state
        is committed, as a kill -9 between signing and broadcast would.
        """
        now = now or datetime.now(UTC)
        with self.store.session() as s:
            row = repos.get_withdrawal(s, withdrawal_id)
            if row is None:
                raise InputError(f"withdrawal {withdrawal_id} not found")
            state = row.state
        if state in ("denied", "confirmed", "failed", "requested"):
            return Result(withdrawal_id, state, error=None if state != "requested" else "needs approval")
        cex = self._cex(row.account_id)
        if cex is not None:
            return self._execute_cex(cex, row, state, actor=actor, now=now)
        vault = self._vault(row.account_id)
        ex = self.executor(vault)
        asset_addr, decimals, _ = self._asset(vault.chain, row.asset)
        units = parse_base_units(row.amount, decimals)
        ref = hashlib.sha256(row.id.encode()).digest()
        if state == "approved":
            with self.store.session() as s:
                row = repos.get_withdrawal(s, withdrawal_id)
                assert row is not None
                decision, did = self._evaluate(s, row, now)  # prices and LTV moved since approval
                if decision.outcome is not Outcome.ALLOW:
                    repos.transition_withdrawal(s, withdrawal_id, "denied", actor=actor, decision_id=did, now=now)
                    return Result(withdrawal_id, "denied", decision)
            nonce = ex.next_nonce()
            signed = ex.sign_withdraw(asset_addr, row.destination, units, ref, nonce)
            with self.store.session() as s:
                repos.transition_withdrawal(s, withdrawal_id, "signed", actor=actor, nonce=nonce,
                                            signed_tx_hash=signed.tx_hash, now=now, expected="approved")
            if crash_after_sign:
                return Result(withdrawal_id, "signed")
            state, tx_hash = "signed", signed.tx_hash
        else:
            tx_hash = row.tx_hash or row.signed_tx_hash
        if state == "signed":
            assert tx_hash is not None
            if not ex.tx_exists(tx_hash):
                # Never broadcast (crash between signing and sending): re-sign with the SAME nonce, so
                # at most one transaction for this withdrawal can ever be mined.
                with self.store.session() as s:
                    nonce = repos.get_withdrawal(s, withdrawal_id).nonce  # type: ignore[union-attr]
                signed = ex.sign_withdraw(asset_addr, row.destination, units, ref, int(nonce))  # type: ignore[arg-type]
                try:
                    tx_hash = ex.broadcast(signed)
                except CustodyError as exc:
                    with self.store.session() as s:
                        repos.transition_withdrawal(s, withdrawal_id, "failed", actor=actor, now=now,
                                                    error=f"{exc}; needs manual review")
                    return Result(withdrawal_id, "failed", error=str(exc))
            with self.store.session() as s:
                repos.transition_withdrawal(s, withdrawal_id, "broadcast", actor=actor, tx_hash=tx_hash, now=now)
        timeout = self.cfg.custody.receipt_timeout_s if self.cfg.custody else 60
        out = ex.wait(tx_hash, timeout)
        if out.status == "pending":
            return Result(withdrawal_id, "broadcast", tx_hash=tx_hash)
        with self.store.session() as s:
            if out.status == "confirmed":
                repos.transition_withdrawal(s, withdrawal_id, "confirmed", actor=actor, tx_hash=tx_hash, now=now)
            else:
                repos.transition_withdrawal(s, withdrawal_id, "failed", actor=actor, error=out.error, now=now)
        return Result(withdrawal_id, out.status, tx_hash=tx_hash, error=out.error)


    def _execute_cex(self, acct: CexAccountConfig, row: Any, state: str, *, actor: str, now: datetime) -> Result:
        """Re-check, then one venue withdrawal with the withdrawal id as the venue's client id.

        Only ``approved`` is sent; a row already ``broadcast`` was accepted by the venue (its id is
        stored) and is never sent again. The venue's whitelist is checked by policy (the fresh
        context) and again by the venue itself (-4035 / 58203 / 131093 fail the withdrawal).
        """
        from primeguard.domain.errors import VenueError
        from primeguard.venues.cex.withdraw import submit_withdrawal

        if state != "approved":
            return Result(row.id, state, tx_hash=row.external_id)
        with self.store.session() as s:
            fresh = repos.get_withdrawal(s, row.id)
            decision, did = self._evaluate(s, fresh, now)
            if decision.outcome is not Outcome.ALLOW:
                repos.transition_withdrawal(s, row.id, "denied", actor=actor, decision_id=did, now=now)
                return Result(row.id, "denied", decision)
        key = acct.operator or acct.monitor
        try:
            wid = asyncio.run(submit_withdrawal(acct, key, asset=row.asset, amount=Decimal(row.amount),
                                                address=row.destination, network=CEX_NETWORK.get(row.chain, "ETH"),
                                                request_id=row.id.replace("-", "")[:32], base_dir=self.config_dir))
        except VenueError as exc:
            with self.store.session() as s:
                repos.transition_withdrawal(s, row.id, "failed", actor=actor, error=str(exc)[:500], now=now)
            return Result(row.id, "failed", error=str(exc))
        with self.store.session() as s:
            repos.transition_withdrawal(s, row.id, "broadcast", actor=actor, external_id=wid, now=now)
        return Result(row.id, "broadcast", tx_hash=wid)


def _request_json(r: WithdrawalRequest) -> dict[str, Any]:
    return {"id": r.id, "client": r.client_id, "account": r.account_id, "chain": r.chain, "asset": r.asset,
            "amount": str(r.amount), "destination": r.destination, "requested_by": r.requested_by}
