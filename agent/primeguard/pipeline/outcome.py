"""Outcome: what one sweep leaves behind in the store (snapshots, per-client metrics, findings).

The daemon records a sweep after alerts went out: :func:`prepare_sweep` (checking and serialising
the rows: CPU, no transaction) in a worker thread, then :func:`write_sweep` on the event loop; the
writes happen in one transaction, so a sweep is recorded whole or not at all.
:func:`persist_sweep` is both in one call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from primeguard.domain.findings import JOB_VENUES, NOT_SWEPT_CODES, Finding
from primeguard.domain.observation import AccountSnapshot, Observation
from primeguard.pipeline.evaluate import Evaluation
from primeguard.risk.portfolio import gc_paused
from primeguard.store import repos
from primeguard.store.codec import Memo, decimal_json, prerendered
from primeguard.store.db import Store


@dataclass
class SweepOutcome:
    """One finished sweep: its id, duration in seconds, evaluation, observation, the number of
    alert deliveries made and the seconds per stage (``collect``, ``collect:<venue>``, ``policy``,
    ``evaluate``, ``alerts``, ``persist``, ``playbooks``)."""

    sweep_id: str
    seconds: float
    evaluation: Evaluation
    observation: Observation
    deliveries: int
    stages: dict[str, float] = field(default_factory=dict)


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
    infinite LTV is stored as ``None`` with ``ltv_infinite``), each client's ladder rung with its
    clocks (entered_at, margin-call deadline, cooldowns: restored exactly after a restart), the open
    findings, and closes every open finding this sweep did not see again (except those other jobs
    own: ``JOB_VENUES``, ``NOT_SWEPT_CODES``); and the day's closing prices (the last fresh reference
    price per quoted asset), the history volatility haircuts are computed from.

    ``peaks`` (peak equity per client, USD) is updated in place; a blind client keeps its peak.
    Raises whatever the store raises; then nothing of this sweep is written. The same as
    :func:`prepare_sweep` then :func:`write_sweep` (the daemon runs the first in a worker thread).
    """
    prepared = prepare_sweep(sweep_id=sweep_id, obs=obs, ev=ev, clients=clients, peaks=peaks)
    write_sweep(store, prepared, obs=obs, ev=ev, findings=findings, clients=clients)
    peaks.update(prepared.peaks)


@dataclass
class PreparedSweep:
    """A sweep's snapshot and metric rows, checked and serialised as the store writes them (the
    CPU-heavy part of recording a sweep, which needs no transaction), and the peaks they used.

    ``metrics`` maps each valued client to its row, in valuation order; ``peaks`` holds the peak
    equity of every client with one after this sweep (a blind client keeps the one it had)."""

    sweep_id: str
    snapshots: list[dict[str, Any]]
    metrics: dict[str, dict[str, Any]]
    peaks: dict[str, Decimal]

    def redo(self, *, obs: Observation, ev: Evaluation, clients: set[str] | None, peaks: Mapping[str, Decimal],
             only: set[str]) -> None:
        """Prepare again the metric rows of the ``only`` clients (their rung changed in ``ev``
        since: a newer oracle fast path); the other rows and the snapshots stay."""
        again = prepare_sweep(sweep_id=self.sweep_id, obs=obs, ev=ev, clients=clients, peaks=peaks, only=only)
        self.metrics.update(again.metrics)
        self.peaks.update(again.peaks)


def prepare_sweep(*, sweep_id: str, obs: Observation, ev: Evaluation, clients: set[str] | None,
                  peaks: Mapping[str, Decimal], only: set[str] | None = None) -> PreparedSweep:
    """The rows :func:`write_sweep` stores for this sweep (see :func:`persist_sweep`), checked and
    serialised; with ``only``, just those clients' metric rows (no snapshots). Reads ``obs`` and
    ``ev``, writes nothing (``peaks`` is not changed: the new peaks are in the result), so it may
    run in a worker thread while the event loop goes on. Raises ``StoreError`` for a value the
    store refuses (a non-finite number, a float)."""
    with gc_paused():
        snapshots = [] if only is not None else [
            _rendered(repos.snapshot_values(
                sweep_id=sweep_id, account_id=snap.account.id, venue=snap.account.venue.value, ok=snap.ok,
                observed_at=snap.observed_at, payload=snapshot_payload(snap),
                error=None if snap.ok else "; ".join(f.message for f in snap.findings)[:500]), "payload")
            for snap in obs.snapshots if clients is None or snap.account.client_id in clients]
        memo: Memo = {}  # a price's JSON is in every client's valuation: walked once
        metrics: dict[str, dict[str, Any]] = {}
        new_peaks: dict[str, Decimal] = {}
        for cid, val in ev.valuations.items():
            if only is not None and cid not in only:
                continue
            peak = max(peaks.get(cid, val.equity), val.equity) if not val.blind else peaks.get(cid)
            if peak is not None:
                new_peaks[cid] = peak
            params = ev.params[cid].ladder
            metrics[cid] = _rendered(repos.metric_values(
                client_id=cid, at=obs.taken_at, equity=val.equity, loan=val.loan,
                ltv=None if val.ltv is None or not val.ltv.is_finite() else val.ltv,
                ladder_state=ev.ladder[cid].state.label, sweep_id=sweep_id, extra={
                    "valuation": val.to_store_json(), "stress": ev.stress.get(cid, []),
                    "ladder": ev.ladder[cid].to_json(),
                    "bands": {"warn": str(params.warn), "margin_call": str(params.margin_call),
                              "halt": str(params.halt), "liquidate": str(params.liquidate)},
                    "peak_equity": None if peak is None else str(peak),
                    "ltv_infinite": val.ltv is not None and not val.ltv.is_finite(),
                    **_stress_method(ev, cid)}, memo=memo), "extra")
    return PreparedSweep(sweep_id, snapshots, metrics, new_peaks)


def _rendered(values: dict[str, Any], column: str) -> dict[str, Any]:
    """``values`` with its JSON ``column`` rendered to its stored text now (checked values, as
    the engine's serialiser would write them at the INSERT), so the transaction only binds text."""
    values[column] = prerendered(values[column])
    return values


def write_sweep(store: Store, prepared: PreparedSweep, *, obs: Observation, ev: Evaluation,
                findings: list[Finding], clients: set[str] | None) -> None:
    """Write a :class:`PreparedSweep` and the rest of the sweep's records (ladder rungs from
    ``ev.ladder``, closing prices, findings opened and closed) in one transaction: whole or not at
    all. Raises whatever the store raises."""
    with gc_paused(), store.session() as s:
        repos.insert_snapshot_values(s, prepared.snapshots)
        repos.insert_metric_values(s, list(prepared.metrics.values()))
        repos.save_ladder_states(s, [repos.LadderSave(cid, status.state.label, status.entered_at, status.deadline,
                                                      status.below)
                                     for cid, status in ev.ladder.items() if clients is None or cid in clients],
                                 now=obs.taken_at)
        repos.record_price_closes(s, at=obs.taken_at, prices=ev.reference_prices)
        keys = {f.key for f in findings}
        keys |= {f.key for f in repos.open_findings(s) if f.code in NOT_SWEPT_CODES}  # owned by their raiser
        repos.upsert_findings(s, dedupe(findings), now=obs.taken_at)
        repos.close_findings(s, now=obs.taken_at, except_keys=keys, keep_venues=JOB_VENUES)


def _stress_method(ev: Evaluation, cid: str) -> dict[str, Any]:
    """How the client's stress in the row was computed: ``exact`` or ``float_screen`` with the
    margin it cleared (USD, an analytics float written as text); nothing when stress did not run."""
    method = ev.stress_method.get(cid)
    if method is None:
        return {}
    if method == "float_screen":
        return {"stress_method": method, "stress_margin_usd": f"{ev.stress_tolerance_usd.get(cid, 0.0):.3g}"}
    return {"stress_method": method}


def snapshot_payload(snap: AccountSnapshot) -> dict[str, Any]:
    """The stored JSON of one account snapshot. Quantities and prices are written as the store's
    codec writes a ``Decimal`` (exact positional text, :func:`~primeguard.store.codec.decimal_json`:
    a non-finite one raises :class:`~primeguard.domain.errors.StoreError`), so the codec finds the
    document plain; anything else is left for the codec to check."""
    d = decimal_json
    return {
        "balances": [{"asset": b.asset, "quantity": d(b.quantity), "source": b.source} for b in snap.balances],
        "positions": [{"instrument": p.instrument, "underlying": p.underlying, "size": d(p.size),
                       "entry_price": d(p.entry_price), "mark_price": d(p.mark_price),
                       "liquidation_price": d(p.liquidation_price)} for p in snap.positions],
        "credentials": [{"id": c.id, "kind": c.kind, "holder": c.holder.value,
                         "capabilities": sorted(x.value for x in c.capabilities), "ip_restricted": c.ip_restricted}
                        for c in snap.credentials],
        "venue": snap.account.venue.value, "chain": snap.account.chain, "client": snap.account.client_id,
    }
