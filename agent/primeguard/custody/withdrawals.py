"""The withdrawal lifecycle: requested → approved | denied → signed → broadcast → confirmed | failed.

A CEX withdrawal is ``broadcast`` once the venue accepted it; :meth:`WithdrawalService.follow` then
reads the venue's own record (ccxt ``fetch_withdrawals``) until it ends ``confirmed`` (with its
transaction hash) or ``failed`` (with the venue's reason). A venue status primeguard does not know
leaves the row ``broadcast``, answers ``unknown`` and raises a blind-spot finding: never a success.

Every step goes through the store (with its audit entry) and the policy is asked twice: when the
request is made and again right before signing, because prices and LTV move in between. Bad input
is rejected before anything is written; a denial is recorded as a decision, never raised.

Who acts is an :class:`~primeguard.domain.identity.Actor` (a stored user, resolved from a token);
four eyes compare user ids. Approvals are bound to :func:`approval_digest` of the request (account,
chain, asset, amount in base units, destination): the digest is stored on the request and on every
approval, and :meth:`WithdrawalService.execute` recomputes it from the row and from the
``withdrawal.requested`` audit entry and refuses to send anything on any difference.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
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
from primeguard.domain.errors import ApprovalDigestMismatch, CustodyError, InputError
from primeguard.domain.identity import Actor, Perm
from primeguard.domain.model import VenueKind
from primeguard.domain.money import parse_address, parse_amount, parse_base_units
from primeguard.policy.inputs import ApprovalGiven, WithdrawalContext, WithdrawalRequest
from primeguard.store import audit, repos
from primeguard.store.db import Store
from primeguard.store.errors import NotFound

CEX_ASSETS = frozenset({"USDT", "USDC", "BTC", "ETH"})
CEX_DECIMALS = 8  # the venues' withdrawal precision for these assets
CEX_NETWORK = {"ethereum": "ETH"}

Decide = Callable[[WithdrawalRequest, WithdrawalContext], Decision]
ContextFor = Callable[[WithdrawalRequest, list[ApprovalGiven], list[tuple[datetime, Decimal]]], WithdrawalContext]


def approval_digest(*, account_id: str, chain: int | str, asset: str, units: int, destination: str) -> str:
    """sha256 hex over the canonical JSON of what an approval releases: the account, the chain (EVM
    chain id, or the venue's network name), the asset (token contract, ``native``, or a venue
    symbol), the amount in base units and the checksummed destination."""
    body = {"account": account_id, "chain": chain, "asset": asset, "amount_units": str(int(units)),
            "destination": destination}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Result:
    """The state of one withdrawal after a call, with the decision that led there, its tx hash and any error text
    (never secrets)."""

    withdrawal_id: str
    state: str
    decision: Decision | None = None
    tx_hash: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The stable JSON of the CLI's ``--json`` and the API (no floats)."""
        d = self.decision
        return {"id": self.withdrawal_id, "state": self.state, "tx_hash": self.tx_hash, "error": self.error,
                "decision": None if d is None else {
                    "outcome": d.outcome.value, "reasons": [r.value for r in d.reasons], "rules": list(d.rule_ids),
                    "explanation": d.explanation, "policy_hash": d.policy_hash,
                    "approvals_required": d.approvals_required}}


class WithdrawalService:
    """On-chain withdrawals out of CollateralVaults, checked by policy, approved by a second person."""

    def __init__(self, cfg: PrimeguardConfig, store: Store, decide: Decide, context_for: ContextFor, *,
                 config_dir: Path | None = None, velocity_window_s: int = 86400, gate: Any = None) -> None:
        from primeguard.custody.destinations import DestinationGate

        self.cfg = cfg
        # Screening and the vault's own allowlist, beside the policy (fail closed; see destinations).
        self.gate = gate if gate is not None else DestinationGate(cfg)
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

    def digest_of(self, account_id: str, chain: str | None, asset: str, amount: object, destination: object) -> str:
        """The approval digest of a request as stored (row or ``withdrawal.requested`` payload).

        Raises:
            InputError: a field no longer parses (unknown account or asset, bad amount or address).
        """
        cex = self._cex(account_id)
        dest = parse_address(destination, what="destination")
        if cex is not None:
            network = CEX_NETWORK.get(chain or "", chain or "")
            units = parse_amount(amount, CEX_DECIMALS)[1]
            return approval_digest(account_id=cex.id, chain=f"{cex.venue}:{network}", asset=asset, units=units,
                                   destination=dest)
        vault = self._vault(account_id)
        if chain != vault.chain:
            raise InputError(f"chain {chain!r} is not the chain of vault {vault.id} ({vault.chain})")
        chain_cfg = next((c for c in self.cfg.chains if c.id == vault.chain), None)
        if chain_cfg is None:
            raise InputError(f"vault {vault.id}: chain {vault.chain} is not configured")
        addr, decimals, _ = self._asset(vault.chain, asset)
        units = parse_amount(amount, decimals)[1]
        return approval_digest(account_id=vault.id, chain=chain_cfg.chain_id,
                               asset="native" if addr == NATIVE else parse_address(addr, what="asset"),
                               units=units, destination=dest)

    def verify_binding(self, session: Any, row: Any) -> None:
        """What is about to be sent is what was requested and approved.

        Recomputes the digest from the row and from the hash-chained ``withdrawal.requested`` entry;
        both must equal the stored digest, every approval row's digest, and the digest in every
        ``withdrawal.approval_added`` entry; the approval rows and those entries must name the same
        user ids.

        Raises:
            ApprovalDigestMismatch: anything differs (the message says what).
        """
        def fail(why: str) -> ApprovalDigestMismatch:
            return ApprovalDigestMismatch(f"withdrawal {row.id}: {why}; nothing was sent")

        try:
            from_row = self.digest_of(row.account_id, row.chain, row.asset, row.amount, row.destination)
        except InputError as exc:
            raise fail(f"the stored request no longer parses ({exc})") from None
        requested = audit.entries(session, kind="withdrawal.requested", subject=row.id, limit=2)
        if len(requested) != 1:
            raise fail(f"{len(requested)} withdrawal.requested audit entries (expected exactly 1)")
        p = requested[0].payload
        try:
            from_audit = self.digest_of(str(p.get("account_id")), p.get("chain"), str(p.get("asset")), p.get("amount"),
                                        p.get("destination"))
        except InputError as exc:
            raise fail(f"the audited request does not parse ({exc})") from None
        if from_row != from_audit:
            raise fail("the request was changed after it was made (row and audit log differ)")
        if row.approval_digest != from_audit or p.get("digest") != from_audit:
            raise fail("the stored approval digest is not the request's")
        rows = repos.list_approvals(session, row.id)
        if any(a.digest != from_audit for a in rows):
            raise fail("an approval was given for a different request")
        entries = audit.entries(session, kind="withdrawal.approval_added", subject=row.id, limit=1000)
        if any(e.payload.get("digest") != from_audit for e in entries):
            raise fail("an audited approval was given for a different request")
        if sorted(a.approver_id or -1 for a in rows) != sorted(int(e.payload.get("approver_id") or -1)
                                                               for e in entries):
            raise fail("the approval rows do not match the audited approvals")

    def _refuse_changed(self, withdrawal_id: str, exc: ApprovalDigestMismatch, *, actor: str, now: datetime) -> None:
        """Fail the withdrawal (with its audit entry) and raise ``exc``."""
        with self.store.session() as s:
            repos.transition_withdrawal(s, withdrawal_id, "failed", actor=actor, now=now,
                                        error=f"approval digest mismatch: {exc}; needs manual review")
        raise exc

    # --- lifecycle ---------------------------------------------------------------------------------

    def _request_value(self, row: Any) -> WithdrawalRequest:
        return WithdrawalRequest(id=row.id, client_id=row.client_id, account_id=row.account_id,
                                 venue=VenueKind(row.venue),
                                 chain=row.chain or "", asset=row.asset, amount=Decimal(row.amount),
                                 destination=row.destination, requested_by=row.requested_by,
                                 requested_at=row.requested_at, requested_by_id=row.requested_by_id)

    def _evaluate(self, session: Any, row: Any, now: datetime, *, fresh: bool = False) -> tuple[Decision, str]:
        req = self._request_value(row)
        approvals = [ApprovalGiven(a.approver, a.role, a.approver_id) for a in repos.list_approvals(session, row.id)]
        since = now - self.velocity_window
        recent = [(w.updated_at, Decimal(w.amount)) for w in repos.list_withdrawals(session, client_id=row.client_id)
                  if w.id != row.id and w.state in ("approved", "signed", "broadcast", "confirmed")
                  and w.updated_at >= since and w.asset == row.asset]
        decision = self.decide(req, self.context_for(req, approvals, recent))
        decision = self.gate.apply(session, req, decision, now=now, fresh=fresh, actor=row.requested_by)
        rec = repos.record_decision(session, kind="withdrawal", subject=row.id, decision=decision,
                                    input={"request": _request_json(req), "approvals": [a.approver for a in approvals]},
                                    now=now)
        return decision, rec.id

    def request(self, *, account_id: str, asset: str, amount: object, destination: object, requested_by: Actor,
                now: datetime | None = None) -> Result:
        """Validate, record and decide, as ``requested_by`` (a treasury user).

        Raises:
            InputError: bad input; AuthorizationError: the role may not request (nothing written).
        """
        requested_by.require(Perm.REQUEST_WITHDRAWAL)
        acct, asset, qty, _units, dest = self.validate(account_id, asset, amount, destination)
        now = now or datetime.now(UTC)
        venue, chain = ("evm", acct.chain) if isinstance(acct, VaultConfig) else (acct.venue, "ethereum")
        digest = self.digest_of(acct.id, chain, asset, qty, dest)
        with self.store.session() as s:
            row = repos.create_withdrawal(s, client_id=acct.client, account_id=acct.id, venue=venue,
                                          chain=chain, asset=asset, amount=qty, destination=dest,
                                          requested_by_id=requested_by.user_id, approval_digest=digest, now=now)
            decision, did = self._evaluate(s, row, now)
            state = self._apply(s, row.id, decision, did, actor=row.requested_by, now=now)
            return Result(row.id, state, decision)

    def _apply(self, s: Any, wid: str, decision: Decision, did: str, *, actor: str, now: datetime) -> str:
        if decision.outcome is Outcome.DENY:
            return repos.transition_withdrawal(s, wid, "denied", actor=actor, decision_id=did, now=now).state
        if decision.outcome is Outcome.ALLOW:
            return repos.transition_withdrawal(s, wid, "approved", actor=actor, decision_id=did, now=now).state
        return "requested"  # needs approval: stays requested

    def approve(self, withdrawal_id: str, *, approver: Actor, now: datetime | None = None) -> Result:
        """Add ``approver``'s approval and decide again. The store enforces four eyes by user id
        (``SelfApprovalError``), one approval per user, and binds the approval to the request's
        digest as recomputed now (a request changed since it was made cannot be approved).

        Raises:
            AuthorizationError, SelfApprovalError, ApprovalError, NotFound.
        """
        approver.require(Perm.APPROVE_WITHDRAWAL)
        now = now or datetime.now(UTC)
        with self.store.session() as s:
            row = repos.get_withdrawal(s, withdrawal_id)
            if row is None:
                raise NotFound(f"withdrawal {withdrawal_id} not found")
            try:
                digest = self.digest_of(row.account_id, row.chain, row.asset, row.amount, row.destination)
            except InputError:
                digest = ""  # the store refuses it: the request no longer parses
            repos.add_approval(s, withdrawal_id, approver_id=approver.user_id, digest=digest, now=now)
            row = repos.get_withdrawal(s, withdrawal_id)
            assert row is not None
            decision, did = self._evaluate(s, row, now)
            state = self._apply(s, withdrawal_id, decision, did, actor=approver.name, now=now)
            return Result(withdrawal_id, state, decision)

    # --- execution --------------------------------------------------------------------------------

    def signer(self) -> KeystoreSigner:
        """The treasury keystore signer, opened once and kept. Raises :class:`CustodyError` without a custody
        section, :class:`SignerError` when it cannot be opened."""
        if self._signer is None:
            if self.cfg.custody is None:
                raise CustodyError("no custody section in the config: no signer for on-chain withdrawals")
            self._signer = KeystoreSigner.open(self.cfg.custody.treasury_keystore, self.cfg.custody.password,
                                               base_dir=self.config_dir)
        return self._signer

    def executor(self, vault: VaultConfig) -> VaultExecutor:
        """A :class:`VaultExecutor` for ``vault`` on its configured chain with the treasury signer (opens the
        signer; sends nothing)."""
        chain = next(c for c in self.cfg.chains if c.id == vault.chain)
        gas = self.cfg.custody.gas_limit if self.cfg.custody else 250_000
        return VaultExecutor(chain.rpc_url, vault.address, self.signer(), chain_id=chain.chain_id, gas_limit=gas)

    def execute(self, withdrawal_id: str, *, actor: Actor | str = "custody", now: datetime | None = None,
                crash_after_sign: bool = False) -> Result:
        """Sign and send an approved withdrawal, or resume one that was signed/broadcast before a crash.

        ``actor``: a user (CLI: needs a role that may execute) or the daemon's name. Before anything
        is signed or sent, :meth:`verify_binding` checks the request against its approvals and the
        audit log; on any difference the withdrawal fails (with its audit entry) and
        :class:`ApprovalDigestMismatch` is raised.

        ``crash_after_sign`` exists for the crash test only: it stops right after the signed state
        is committed, as a kill -9 between signing and broadcast would.
        """
        if isinstance(actor, Actor):
            actor.require(Perm.EXECUTE_WITHDRAWAL)
            actor = actor.name
        now = now or datetime.now(UTC)
        with self.store.session() as s:
            row = repos.get_withdrawal(s, withdrawal_id)
            if row is None:
                raise InputError(f"withdrawal {withdrawal_id} not found")
            state = row.state
        if state in ("denied", "confirmed", "failed", "requested"):
            return Result(withdrawal_id, state, error=None if state != "requested" else "needs approval")
        if state in ("approved", "signed"):  # about to sign or (re)send: is it still what was approved?
            with self.store.session(readonly=True) as s:
                try:
                    self.verify_binding(s, row)
                except ApprovalDigestMismatch as exc:
                    mismatch = exc
                else:
                    mismatch = None
            if mismatch is not None:
                self._refuse_changed(withdrawal_id, mismatch, actor=actor, now=now)
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
                fresh = repos.get_withdrawal(s, withdrawal_id)
                assert fresh is not None
                if (fresh.amount, fresh.destination, fresh.asset, fresh.account_id, fresh.chain) != (
                        row.amount, row.destination, row.asset, row.account_id, row.chain):
                    raise ApprovalDigestMismatch(f"withdrawal {withdrawal_id} changed while it was being checked; "
                                                 "nothing was sent")
                decision, did = self._evaluate(s, row, now, fresh=True)  # prices and LTV moved since approval
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

        if state == "broadcast":
            return self.follow(row.id, actor=actor, now=now)
        if state != "approved":
            return Result(row.id, state, tx_hash=row.tx_hash or row.external_id)
        with self.store.session() as s:
            fresh = repos.get_withdrawal(s, row.id)
            assert fresh is not None
            if (fresh.amount, fresh.destination, fresh.asset, fresh.account_id, fresh.chain) != (
                    row.amount, row.destination, row.asset, row.account_id, row.chain):
                raise ApprovalDigestMismatch(f"withdrawal {row.id} changed while it was being checked; "
                                             "nothing was sent")
            decision, did = self._evaluate(s, row, now, fresh=True)
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

    def follow(self, withdrawal_id: str, *, actor: Actor | str = "custody", now: datetime | None = None) -> Result:
        """Read a ``broadcast`` CEX withdrawal's record on its venue and record where it ended.

        The venue's own status (Binance withdraw-history ``status``, OKX ``state``, Bybit ``status``)
        is mapped by the exchange's table: ``confirmed`` moves the row to confirmed with the venue's
        transaction hash, ``failed`` to failed with the venue's status and reason, ``pending`` leaves
        it broadcast. Any other status, or a withdrawal the venue does not list, leaves the row
        broadcast, answers state ``unknown`` and upserts a ``withdrawal_status_unknown`` blind-spot
        finding with an audit entry: it is never taken for a success. A venue that cannot be read
        leaves everything as it was (the error is in the result). Rows in another state, or on-chain
        withdrawals, are returned as they are (on-chain ones are followed by :meth:`execute`).

        ``actor``: a user (the CLI: a role that may execute withdrawals) or the daemon's name.

        Raises:
            InputError: no such withdrawal; AuthorizationError: the user's role may not execute.
        """
        from primeguard.domain.errors import VenueError
        from primeguard.domain.findings import Finding, FindingCode, Severity
        from primeguard.venues.cex.withdraw import read_withdrawal

        if isinstance(actor, Actor):
            actor.require(Perm.EXECUTE_WITHDRAWAL)
            actor = actor.name
        now = now or datetime.now(UTC)
        with self.store.session(readonly=True) as s:
            row = repos.get_withdrawal(s, withdrawal_id)
        if row is None:
            raise InputError(f"withdrawal {withdrawal_id} not found")
        cex = self._cex(row.account_id)
        if cex is None or row.state != "broadcast" or not row.external_id:
            return Result(row.id, row.state, tx_hash=row.tx_hash or row.external_id, error=row.error)
        try:
            seen = asyncio.run(read_withdrawal(cex, cex.monitor, row.external_id, base_dir=self.config_dir))
        except VenueError as exc:
            return Result(row.id, "broadcast", tx_hash=row.external_id, error=f"venue unreadable: {exc}"[:500])
        what = f"{cex.venue} withdrawal {row.external_id} status {seen.status!r}"
        unknown = Finding(FindingCode.WITHDRAWAL_STATUS_UNKNOWN, Severity.HIGH, row.id,
                          f"{what} is unknown to primeguard ({seen.reason}); the withdrawal is not taken as done",
                          venue=cex.venue, client_id=row.client_id,
                          details={"venue_id": row.external_id, "status": seen.status})
        with self.store.session() as s:
            if seen.state in ("confirmed", "failed"):  # a status read before is no longer a blind spot
                repos.close_findings(s, keys=[unknown.key], now=now)
            if seen.state == "confirmed":
                repos.transition_withdrawal(s, row.id, "confirmed", actor=actor, tx_hash=seen.tx_hash, now=now,
                                            expected="broadcast")
                return Result(row.id, "confirmed", tx_hash=seen.tx_hash)
            if seen.state == "failed":
                error = f"{what}: {seen.reason}"[:500]
                repos.transition_withdrawal(s, row.id, "failed", actor=actor, error=error, now=now,
                                            expected="broadcast")
                return Result(row.id, "failed", tx_hash=row.external_id, error=error)
            if seen.state == "pending":
                return Result(row.id, "broadcast", tx_hash=row.external_id)
            repos.upsert_finding(s, unknown, now=now)
            audit.append(s, actor=actor, kind="withdrawal.venue_status_unknown", subject=row.id, now=now,
                         payload={"venue": cex.venue, "external_id": row.external_id, "status": seen.status})
            return Result(row.id, "unknown", tx_hash=row.external_id, error=unknown.message)

    def follow_all(self, *, actor: Actor | str = "custody", now: datetime | None = None) -> list[Result]:
        """:meth:`follow` every ``broadcast`` CEX withdrawal (oldest first)."""
        if isinstance(actor, Actor):
            actor.require(Perm.EXECUTE_WITHDRAWAL)
        with self.store.session(readonly=True) as s:
            ids = [w.id for w in reversed(repos.list_withdrawals(s, state="broadcast", limit=1000))
                   if self._cex(w.account_id) is not None]
        return [self.follow(wid, actor=actor, now=now) for wid in ids]


def _request_json(r: WithdrawalRequest) -> dict[str, Any]:
    return {"id": r.id, "client": r.client_id, "account": r.account_id, "chain": r.chain, "asset": r.asset,
            "amount": str(r.amount), "destination": r.destination, "requested_by": r.requested_by}
