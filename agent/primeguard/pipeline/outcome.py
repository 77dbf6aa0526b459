"""Outcome: what one sweep leaves behind in the store (snapshots, per-client metrics, findings).

The daemon calls :func:`persist_sweep` after alerts went out; the writes happen in one transaction,
so a sweep is recorded whole or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from primeguard.domain.findings import JOB_VENUES, Finding
from primeguard.domain.observation import AccountSnapshot, Observation
from primeguard.pipeline.evaluate import Evaluation
from primeguard.store import repos
from primeguard.store.db import Store


@dataclass
class SweepOutcome:
    """One finished sweep: its id, duration in seconds, evaluation, observation and the number of
    alert deliveries made."""

    sweep_id: str
    seconds: float
    evaluation: Evaluation
    observation: Observation
    deliveries: int


def sweep_findings(obs: Observation, ev: Evaluation, clients: set[str] | None) -> list[Finding]:
    """Every finding of a sweep (observation, snapshots, evaluation), in that order; with
    ``clients``, only those about these clients or about no client. Pure; never drops a finding
    otherwise (duplicates are kept: see :func:`dedupe`)."""
    findings = list(obs.findings) + [f for s in obs.snapshots for f in s.findings] + ev.findings
    if clients is not None:
        findings = [f for f in findings if f.client_id is None or f.client_id in clients]
    return findings


def dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per key, the most severe one kept (first seen on a tie). Pure."""
    seen: dict[str, Finding] = {}
    for f in findings:
        if f.key not in seen or f.severity > seen[f.key].severity:
            seen[f.key] = f
    return list(seen.values())


def persist_sweep(store: Store, *, sweep_id: str, obs: Observation, ev: Evaluation, findings: list[Finding],
                  clients: set[str] | None, peaks: dict[str, Decimal]) -> None:
    """Record one sweep in one transaction: a snapshot per account read (only ``clients``' when
    given), a metric row per valued client (exact ``Decimal`` equity, loan and LTV in USD; an
    infinite LTV is stored as ``None`` with ``ltv_infinite``), the open findings, and closes every
    open finding this sweep did not see again (except those other jobs own: ``JOB_VENUES``).

    ``peaks`` (peak equity per client, USD) is updated in place; a blind client keeps its peak.
    Raises whatever the store raises; then nothing of this sweep is written.
    """
    with store.session() as s:
        for snap in obs.snapshots:
            if clients is not None and snap.account.client_id not in clients:
                continue
            repos.save_snapshot(s, sweep_id=sweep_id, account_id=snap.account.id, venue=snap.account.venue.value,
                                ok=snap.ok, observed_at=snap.observed_at, payload=snapshot_payload(snap),
                                error=None if snap.ok else "; ".join(f.message for f in snap.findings)[:500])
        for cid, val in ev.valuations.items():
            peak = max(peaks.get(cid, val.equity), val.equity) if not val.blind else peaks.get(cid)
            if peak is not None:
                peaks[cid] = peak
            params = ev.params[cid].ladder
            repos.record_metric(s, client_id=cid, at=obs.taken_at, equity=val.equity, loan=val.loan,
                                ltv=None if val.ltv is None or not val.ltv.is_finite() else val.ltv,
                                ladder_state=ev.ladder[cid].state.label, sweep_id=sweep_id, extra={
                                    "valuation": val.to_json(), "stress": ev.stress.get(cid, []),
                                    "ladder": ev.ladder[cid].to_json(),
                                    "bands": {"warn": str(params.warn), "margin_call": str(params.margin_call),
                                              "halt": str(params.halt), "liquidate": str(params.liquidate)},
                                    "peak_equity": None if peak is None else str(peak),
                                    "ltv_infinite": val.ltv is not None and not val.ltv.is_finite()})
        keys = {f.key for f in findings}
        repos.upsert_findings(s, dedupe(findings), now=obs.taken_at)
        repos.close_findings(s, now=obs.taken_at, except_keys=keys, keep_venues=JOB_VENUES)


def snapshot_payload(snap: AccountSnapshot) -> dict[str, Any]:
    """The stored JSON of one account snapshot (quantities stay ``Decimal``; the store's codec
    writes them as strings)."""
    return {
        "balances": [{"asset": b.asset, "quantity": b.quantity, "source": b.source} for b in snap.balances],
        "positions": [{"instrument": p.instrument, "underlying": p.underlying, "size": p.size,
                       "entry_price": p.entry_price, "mark_price": p.mark_price,
                       "liquidation_price": p.liquidation_price} for p in snap.positions],
        "credentials": [{"id": c.id, "kind": c.kind, "holder": c.holder.value,
                         "capabilities": sorted(x.value for x in c.capabilities), "ip_restricted": c.ip_restricted}
                        for c in snap.credentials],
        "venue": snap.account.venue.value, "chain": snap.account.chain, "client": snap.account.client_id,
    }
