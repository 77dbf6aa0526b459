"""Read models: what the API returns and the pages render, built from the store alone.

Every function opens one read-only session (one consistent snapshot) and returns JSON-ready
dicts: Decimals as exact strings, times as ISO 8601 UTC. Nothing here writes.

Most reads go through ``store.repos``; the three the repositories do not offer yet (distinct
clients with metrics, the latest snapshot of every account, alerts newest first) are ORM selects
in :func:`client_ids`, :func:`latest_snapshots` and :func:`recent_alerts`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.findings import BLIND_SPOT_CODES, FindingCode
from primeguard.domain.model import FUND_MOVING
from primeguard.domain.money import MAX_AMOUNT_CHARS, display_amount
from primeguard.playbooks.engine import LEVER_WORDS
from primeguard.playbooks.words import params_text, plain, result_lines
from primeguard.store import audit, repos
from primeguard.store.db import Store
from primeguard.store.tables import AlertRow, FindingRow, MetricRow, SnapshotRow

log = logging.getLogger(__name__)

LADDER_RANK: dict[str, int] = {"normal": 0, "warn": 1, "margin_call": 2, "halt": 3, "liquidate": 4}
UNKNOWN_RANK = 5  # an unknown state sorts first: unknown means look at it
BLIND_CODES: frozenset[str] = frozenset(c.value for c in BLIND_SPOT_CODES)
CAPABILITY_CODES: frozenset[str] = frozenset(c.value for c in (
    FindingCode.KEY_CAN_WITHDRAW, FindingCode.KEY_UNIVERSAL_TRANSFER, FindingCode.KEY_NOT_IP_BOUND,
    FindingCode.KEY_EXPIRED, FindingCode.MASTER_KEY_IN_USE, FindingCode.WHITELIST_OFF,
    FindingCode.WHITELIST_UNVERIFIABLE, FindingCode.DYDX_KEY_CAN_MOVE_FUNDS, FindingCode.DYDX_KEY_UNSIGNED_PATH,
    FindingCode.DYDX_KEY_CAN_GRANT, FindingCode.DYDX_V3_FAST_WITHDRAW, FindingCode.AUTHENTICATOR_UNKNOWN,
    FindingCode.UNLIMITED_APPROVAL, FindingCode.APPROVAL_EXCEEDS_BALANCE, FindingCode.UNKNOWN_SPENDER,
    FindingCode.SAFE_MODULE_ENABLED, FindingCode.SAFE_GUARD_SET, FindingCode.SAFE_LOW_THRESHOLD,
    FindingCode.WALLET_KIND_MISMATCH, FindingCode.POLICY_VIOLATION, FindingCode.EOA_DELEGATED_CODE,
    FindingCode.NFT_OPERATOR,
))
FUND_MOVING_CAPS: frozenset[str] = frozenset(c.value for c in FUND_MOVING)
BAND_NAMES = ("warn", "margin_call", "halt", "liquidate")
MAX_PAGE = 200
EXACT_CHARS = 2 * MAX_AMOUNT_CHARS  # every valid amount written out fits; a tampered one is cut
MAX_WINDOW = 5000  # offset + limit: how deep the timeline can be paged


def iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def dec(value: Any) -> str | None:
    """A Decimal (or numeric string) as an exact string; None stays None. A value too large to
    write out (a tampered row) comes back as bounded text (:func:`display_amount`), never huge."""
    if value is None:
        return None
    return display_amount(value, max_chars=EXACT_CHARS)


def to_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


# --- the three reads the repositories do not offer -----------------------------------------------


def client_ids(s: Session) -> list[str]:
    """Every client with metric history or a finding, sorted."""
    m = sa.select(MetricRow.__table__.c.client_id).distinct()  # type: ignore[attr-defined]
    f = sa.select(FindingRow.__table__.c.client_id).where(  # type: ignore[attr-defined]
        FindingRow.__table__.c.client_id.is_not(None)).distinct()  # type: ignore[attr-defined]
    ids = {r[0] for r in s.execute(m)} | {r[0] for r in s.execute(f)}
    return sorted(i for i in ids if i)


def latest_snapshots(s: Session, *, client_id: str | None = None) -> list[SnapshotRow]:
    """The newest snapshot of every account (optionally only the client's), by account id."""
    t = SnapshotRow.__table__  # type: ignore[attr-defined]
    newest = sa.select(t.c.account_id, sa.func.max(t.c.observed_at).label("at")).group_by(t.c.account_id).subquery()
    stmt = sa.select(SnapshotRow).join(
        newest, sa.and_(t.c.account_id == newest.c.account_id, t.c.observed_at == newest.c.at)
    ).order_by(t.c.account_id, t.c.id.desc())
    out: dict[str, SnapshotRow] = {}
    for row in s.execute(stmt).scalars():
        out.setdefault(row.account_id, row)  # same time twice: the later insert wins
    rows = list(out.values())
    if client_id is not None:
        rows = [r for r in rows if (r.payload or {}).get("client") == client_id]
    return rows


def recent_alerts(s: Session, *, limit: int) -> list[AlertRow]:
    t = AlertRow.__table__  # type: ignore[attr-defined]
    stmt = sa.select(AlertRow).order_by(t.c.updated_at.desc(), t.c.id.desc()).limit(limit)
    return list(s.execute(stmt).scalars())


# --- shapes ------------------------------------------------------------------------------------------


def finding_json(f: FindingRow) -> dict[str, Any]:
    details = dict(f.details or {})
    return {
        "key": f.key, "code": f.code, "severity": f.severity, "severity_name": severity_name(f.severity),
        "subject": f.subject, "venue": f.venue, "chain": f.chain, "client_id": f.client_id, "rule_id": f.rule_id,
        "message": f.message, "details": details, "first_seen": iso(f.first_seen), "last_seen": iso(f.last_seen),
        "occurrences": f.occurrences, "blind_spot": f.code in BLIND_CODES,
        "violation": f.rule_id is not None and not details.get("shadow", False),
    }


def severity_name(value: int) -> str:
    for name, floor in (("critical", 40), ("high", 30), ("warning", 20)):
        if value >= floor:
            return name
    return "info"


def bands_of(extra: Mapping[str, Any]) -> dict[str, str] | None:
    raw = extra.get("bands")
    if not isinstance(raw, Mapping):
        return None
    out = {k: str(raw[k]) for k in BAND_NAMES if to_decimal(raw.get(k)) is not None}
    return out or None


def metric_json(m: MetricRow) -> dict[str, Any]:
    extra = dict(m.extra or {})
    raw = extra.get("valuation")
    valuation: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    return {
        "client_id": m.client_id, "at": iso(m.at), "sweep_id": m.sweep_id, "ltv": dec(m.ltv),
        "ltv_infinite": bool(extra.get("ltv_infinite", False)), "equity": dec(m.equity), "loan": dec(m.loan),
        "ladder_state": m.ladder_state, "bands": bands_of(extra), "tier": valuation.get("tier"),
        "valuation_blind": bool(valuation.get("blind", False)),
    }


def snapshot_json(r: SnapshotRow) -> dict[str, Any]:
    p = dict(r.payload or {})
    return {
        "account_id": r.account_id, "venue": r.venue, "chain": p.get("chain"), "client_id": p.get("client"),
        "sweep_id": r.sweep_id, "ok": r.ok, "observed_at": iso(r.observed_at), "error": r.error,
        "balances": list(p.get("balances") or []), "positions": list(p.get("positions") or []),
        "credentials": list(p.get("credentials") or []),
    }


def action_json(a: Any) -> dict[str, Any]:
    return {
        "id": a.id, "client_id": a.client_id, "kind": a.kind, "mode": a.mode, "state": a.state,
        "params": dict(a.params or {}), "result": a.result, "error": a.error, "approved_by": a.approved_by,
        "created_at": iso(a.created_at), "updated_at": iso(a.updated_at),
        "awaiting_approval": a.state == "proposed" and a.mode == "needs_approval",
        # for people: the figures (LTV as a percentage) and what the lever did, per venue account
        "figures": params_text(dict(a.params or {})), "did": result_lines(a.kind, a.result, a.error),
    }


def _rank(state: str) -> int:
    return LADDER_RANK.get(state, UNKNOWN_RANK)


def audit_words(kind: str, payload: Any) -> str:
    """An audit entry's payload for people: what an action did, or plain ``key: value`` pairs."""
    p = dict(payload or {}) if isinstance(payload, dict) else {}
    if kind.startswith("action.") and (p.get("result") or p.get("error")):
        return "; ".join(result_lines("", p.get("result"), p.get("error")))
    return plain(p)


# --- overview -----------------------------------------------------------------------------------------


def overview(store: Store) -> dict[str, Any]:
    """Per client: latest LTV, ladder state, equity, loan, bands, blind flag; plus open blind spots.

    Clients are ordered blind first, then by ladder state (worst first), then by LTV (highest first).
    """
    with store.session(readonly=True) as s:
        findings = repos.open_findings(s)
        clients = client_ids(s)
        latest = {cid: repos.latest_metric(s, cid) for cid in clients}
        pending = [a for a in repos.list_actions(s, state="proposed", limit=500) if a.mode == "needs_approval"]
        waiting = repos.list_withdrawals(s, state="requested", limit=500)
    blind_findings = [f for f in findings if f.code in BLIND_CODES]
    rows = []
    for cid in clients:
        m = latest[cid]
        mine = [f for f in findings if f.client_id == cid]
        blind_codes = sorted({f.code for f in mine if f.code in BLIND_CODES})
        row: dict[str, Any] = metric_json(m) if m is not None else {
            "client_id": cid, "at": None, "sweep_id": None, "ltv": None, "ltv_infinite": False, "equity": None,
            "loan": None, "ladder_state": "unknown", "bands": None, "tier": None, "valuation_blind": True,
        }
        row["blind"] = bool(row.pop("valuation_blind")) or bool(blind_codes)
        row["blind_reasons"] = blind_codes
        row["open_findings"] = len(mine)
        row["max_severity"] = severity_name(max((f.severity for f in mine), default=0)) if mine else None
        rows.append(row)
    rows.sort(key=lambda r: (not r["blind"], -_rank(r["ladder_state"]),
                             -(to_decimal(r["ltv"]) or (Decimal("Infinity") if r["ltv_infinite"] else Decimal(0))),
                             r["client_id"]))
    return {
        "clients": rows,
        "book_exposure": book_exposure_of(latest.values()),
        "blind_spots": [finding_json(f) for f in blind_findings],
        "counts": {
            "clients": len(rows), "blind": sum(1 for r in rows if r["blind"]),
            "escalated": sum(1 for r in rows if _rank(r["ladder_state"]) >= LADDER_RANK["margin_call"]),
            "open_findings": len(findings), "actions_awaiting_approval": len(pending),
            "withdrawals_awaiting_approval": len(waiting),
        },
    }


def book_exposure_of(latest: Iterable[MetricRow | None]) -> dict[str, Any]:
    """The whole book's collateral per venue from each client's latest valuation (negative venue
    values count as zero); blind clients are listed, not summed (as ``risk.limits.book_exposure``)."""
    by: dict[str, Decimal] = {}
    blind: list[str] = []
    for m in latest:
        if m is None:
            continue
        raw = (m.extra or {}).get("valuation")
        val: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        venues = val.get("by_venue")
        if val.get("blind", True) or not isinstance(venues, Mapping):
            blind.append(m.client_id)
            continue
        for venue, x in venues.items():
            v = to_decimal(x.get("value")) if isinstance(x, Mapping) else None
            by[str(venue)] = by.get(str(venue), Decimal(0)) + max(Decimal(0), v or Decimal(0))
    total = sum(by.values(), Decimal(0))
    return {"total_usd": dec(total), "blind_clients": sorted(blind),
            "venues": [{"venue": v, "usd": dec(x), "share": dec(x / total) if total > 0 else None}
                       for v, x in sorted(by.items(), key=lambda kv: (-kv[1], kv[0]))]}


# --- one client -----------------------------------------------------------------------------------------


def client_detail(store: Store, client_id: str, *, days: int = 3, max_points: int = 1000, policy: Any = None,
                  now: datetime | None = None) -> dict[str, Any] | None:
    """Metric history (the last ``days`` before the latest point, thinned to ``max_points``), latest
    snapshots per account, valuation breakdown, the loan with its interest apart, stress, findings,
    actions, and (with the ``policy`` in force) the client's tier eligibility from its track record
    at ``now``. None when the store knows nothing about the client."""
    eligibility = None
    if policy is not None:
        from primeguard.app.tiers import review_tiers

        review = review_tiers(None, store, policy, now or datetime.now(UTC), clients=[client_id]).review_of(client_id)
        eligibility = None if review is None else review.to_json_dict()
    with store.session(readonly=True) as s:
        newest = repos.latest_metric(s, client_id)
        since = newest.at - timedelta(days=days) if newest is not None else None
        history = thin(repos.metric_history(s, client_id, since=since, limit=200_000), max_points)
        snaps = latest_snapshots(s, client_id=client_id)
        findings = repos.open_findings(s, client_id=client_id)
        actions = repos.list_actions(s, client_id=client_id, limit=50)
        withdrawals = repos.list_withdrawals(s, client_id=client_id, limit=20)
    if not history and not snaps and not findings and not actions:
        return None
    latest = history[-1] if history else None
    extra = dict(latest.extra or {}) if latest is not None else {}
    raw = extra.get("valuation")
    valuation: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    stress = [x for x in (extra.get("stress") or []) if isinstance(x, Mapping)]
    blind_codes = sorted({f.code for f in findings if f.code in BLIND_CODES})
    summary = metric_json(latest) if latest is not None else None
    return {
        "client_id": client_id,
        "latest": summary,
        "blind": bool(valuation.get("blind", latest is None)) or bool(blind_codes),
        "blind_reasons": blind_codes,
        "history": [{"at": iso(m.at), "ltv": dec(m.ltv), "equity": dec(m.equity), "loan": dec(m.loan),
                     "ladder_state": m.ladder_state} for m in history],
        "accounts": [snapshot_json(r) for r in snaps],
        "valuation": dict(valuation),
        "loan": _loan_json(valuation.get("loan")),
        "eligibility": eligibility,
        "ladder": extra.get("ladder") if isinstance(extra.get("ladder"), Mapping) else None,
        "stress": [dict(x) for x in stress],
        "findings": [finding_json(f) for f in findings],
        "actions": [action_json(a) for a in actions],
        "withdrawals": [withdrawal_json(w, [], None) for w in withdrawals],
    }


def _loan_json(raw: Any) -> dict[str, Any] | None:
    """The stored loan view: principal outstanding and accrued interest apart, the total owed (USD)
    and the rate in force; None without a loan."""
    if not isinstance(raw, Mapping):
        return None
    return {"asset": raw.get("asset"), "principal": dec(raw.get("principal")),
            "accrued_interest": dec(raw.get("accrued_interest")), "owed_usd": dec(raw.get("owed_usd")),
            "rate": dec(raw.get("rate"))}


def thin(rows: list[Any], max_points: int) -> list[Any]:
    """At most ``max_points`` rows, evenly spaced, always keeping the newest."""
    if len(rows) <= max_points or max_points < 2:
        return rows
    step = (len(rows) - 1) / (max_points - 1)
    return [rows[round(i * step)] for i in range(max_points)]


# --- capabilities -------------------------------------------------------------------------------------------


def capabilities(store: Store) -> dict[str, Any]:
    """Open capability findings (enforced violations first) and every credential the latest
    snapshots saw, fund-moving ones first."""
    with store.session(readonly=True) as s:
        findings = [f for f in repos.open_findings(s) if f.code in CAPABILITY_CODES]
        snaps = latest_snapshots(s)
    items = [finding_json(f) for f in findings]
    items.sort(key=lambda f: (not f["violation"], -f["severity"], f["subject"], f["code"]))
    flagged: dict[str, list[str]] = {}
    violating: dict[str, list[str]] = {}
    for f in items:
        flagged.setdefault(f["subject"], []).append(f["code"])
        if f["violation"]:
            violating.setdefault(f["subject"], []).append(f["code"])
    creds = []
    for snap in snaps:
        p = snap.payload or {}
        for c in p.get("credentials") or []:
            if not isinstance(c, Mapping):
                continue
            caps = sorted(str(x) for x in (c.get("capabilities") or []))
            cid = str(c.get("id", ""))
            creds.append({
                "account_id": snap.account_id, "venue": snap.venue, "chain": p.get("chain"),
                "client_id": p.get("client"), "credential_id": cid, "kind": c.get("kind"), "holder": c.get("holder"),
                "capabilities": caps, "fund_moving": [x for x in caps if x in FUND_MOVING_CAPS],
                "ip_restricted": c.get("ip_restricted"), "observed_at": iso(snap.observed_at),
                "findings": flagged.get(cid, []), "violations": violating.get(cid, []),
            })
    creds.sort(key=lambda c: (not c["violations"], not c["fund_moving"], not c["findings"], c["client_id"] or "",
                              c["account_id"], c["credential_id"]))
    return {"findings": items, "credentials": creds,
            "counts": {"violations": sum(1 for f in items if f["violation"]), "findings": len(items),
                       "credentials": len(creds), "fund_moving": sum(1 for c in creds if c["fund_moving"])}}


# --- timeline ---------------------------------------------------------------------------------------------------


def timeline(store: Store, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """Alerts, playbook actions and audit entries, newest first, ``limit`` items from ``offset``."""
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, min(offset, MAX_WINDOW - limit))
    window = offset + limit
    with store.session(readonly=True) as s:
        alerts = recent_alerts(s, limit=window)
        actions = repos.list_actions(s, limit=window)
        head_seq, _ = audit.head(s)
        entries = audit.entries(s, after_seq=max(0, head_seq - window), limit=window)
        pending = [a for a in repos.list_actions(s, state="proposed", limit=500) if a.mode == "needs_approval"]
    items: list[dict[str, Any]] = []
    for al in alerts:
        items.append({"type": "alert", "at": iso(al.updated_at), "id": str(al.id), "subject": al.finding_key,
                      "state": al.state, "channel": al.channel, "level": al.level, "attempts": al.attempts,
                      "error": al.last_error, "actor": None,
                      "summary": f"{al.level} alert on {al.channel}: {al.state}"})
    for a in actions:
        row = action_json(a)
        items.append({"type": "action", "at": row["updated_at"], "id": a.id, "subject": a.client_id,
                      "state": a.state, "actor": a.approved_by, "action": row,
                      "summary": f"{LEVER_WORDS.get(a.kind, a.kind)} for {a.client_id} "
                                 f"({a.mode.replace('_', ' ')}): {a.state}"})
    for e in entries:
        items.append({"type": "audit", "at": iso(e.at), "id": str(e.seq), "subject": e.subject, "state": None,
                      "actor": e.actor, "kind": e.kind, "payload": e.payload, "summary": e.kind,
                      "words": audit_words(e.kind, e.payload)})
    items.sort(key=lambda i: (i["at"] or "", i["type"], int(i["id"]) if i["type"] != "action" else 0, i["id"]),
               reverse=True)
    page = items[offset:offset + limit]
    more = len(items) > offset + limit
    return {"items": page, "limit": limit, "offset": offset, "next_offset": offset + limit if more else None,
            "pending_actions": [action_json(a) for a in pending]}


# --- withdrawals ---------------------------------------------------------------------------------------------------


def withdrawal_json(w: Any, approvals: Iterable[Any], decision: Any | None) -> dict[str, Any]:
    return {
        "id": w.id, "client_id": w.client_id, "account_id": w.account_id, "venue": w.venue, "chain": w.chain,
        "asset": w.asset, "amount": dec(w.amount), "destination": w.destination, "memo": w.memo, "state": w.state,
        "requested_by": w.requested_by, "requested_at": iso(w.requested_at), "updated_at": iso(w.updated_at),
        "tx_hash": w.tx_hash, "error": w.error,
        "approvals": [{"approver": a.approver, "role": a.role, "approved_at": iso(a.approved_at)} for a in approvals],
        "decision": None if decision is None else {
            "id": decision.id, "outcome": decision.outcome, "reasons": list(decision.reasons),
            "rule_ids": list(decision.rule_ids), "explanation": decision.explanation,
            "approvals_required": decision.approvals_required, "policy_hash": decision.policy_hash,
            "decided_at": iso(decision.decided_at)},
    }


def withdrawals(store: Store, *, limit: int = 100, state: str | None = None) -> list[dict[str, Any]]:
    limit = max(1, min(limit, MAX_PAGE))
    with store.session(readonly=True) as s:
        rows = repos.list_withdrawals(s, state=state, limit=limit)
        out = []
        for w in rows:
            decisions = repos.list_decisions(s, subject=w.id, kind="withdrawal", limit=1)
            out.append(withdrawal_json(w, repos.list_approvals(s, w.id), decisions[0] if decisions else None))
    return out


def withdrawal(store: Store, withdrawal_id: str) -> dict[str, Any] | None:
    with store.session(readonly=True) as s:
        w = repos.get_withdrawal(s, withdrawal_id)
        if w is None:
            return None
        decisions = repos.list_decisions(s, subject=w.id, kind="withdrawal", limit=1)
        return withdrawal_json(w, repos.list_approvals(s, w.id), decisions[0] if decisions else None)


# --- policy -------------------------------------------------------------------------------------------------------


class PolicyCache:
    """Loaded policy versions by content hash (content-addressed, so never stale)."""

    def __init__(self, max_entries: int = 32) -> None:
        self._items: dict[str, tuple[Any | None, str | None]] = {}
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def load(self, key: str, loader: Any) -> tuple[Any | None, str | None]:
        """``(PolicySet, None)`` or ``(None, error message)``."""
        with self._lock:
            if key in self._items:
                return self._items[key]
        try:
            result: tuple[Any | None, str | None] = (loader(), None)
        except Exception as exc:  # a broken version is shown as broken, never as "no rules"
            result = (None, f"{type(exc).__name__}: {exc}")
        with self._lock:
            if len(self._items) >= self.max_entries:
                self._items.pop(next(iter(self._items)))
            self._items[key] = result
        return result


def _load_version(content: str) -> Any:
    from primeguard.policy.loader import files_from_canonical, load_bundle

    return load_bundle(files_from_canonical(content))


def _files_of(content: str) -> list[str]:
    from primeguard.policy.loader import files_from_canonical

    try:
        return sorted(files_from_canonical(content))
    except Exception:
        return []


def version_json(v: Any) -> dict[str, Any]:
    return {"hash": v.hash, "state": v.state, "note": v.note, "format": v.format, "proposed_by": v.proposed_by,
            "proposed_at": iso(v.proposed_at), "approved_by": v.approved_by, "approved_at": iso(v.approved_at),
            "activated_at": iso(v.activated_at), "retired_at": iso(v.retired_at), "files": _files_of(v.content)}


def policy_in_force(store: Store, *, policy_dir: Path | None, cache: PolicyCache
                    ) -> tuple[Any | None, dict[str, Any] | None, str | None]:
    """``(PolicySet or None, its version view, "store" | "directory" | None)``: the store's active
    version, else the policy directory (as the daemon decides)."""
    with store.session(readonly=True) as s:
        active_row = repos.get_active_policy(s)
    if active_row is not None:
        active = version_json(active_row)
        active_policy, err = cache.load(active_row.hash, lambda: _load_version(active_row.content))
        active["load_error"] = err
        return active_policy, active, "store"
    if policy_dir is not None and Path(policy_dir).is_dir():
        from primeguard.policy.loader import load

        active_policy, err = cache.load(f"dir:{Path(policy_dir).resolve()}:{_dir_stamp(Path(policy_dir))}",
                                        lambda: load(policy_dir))
        return active_policy, {
            "hash": getattr(active_policy, "hash", None), "state": "directory", "directory": str(policy_dir),
            "load_error": err, "note": "no approved version in the store: the policy directory is in force",
        }, "directory"
    return None, None, None


def policy_view(store: Store, *, policy_dir: Path | None, cache: PolicyCache) -> dict[str, Any]:
    """The policy in force and the proposals waiting for approval, each with its effect in words
    against the policy in force (``policy.diff``)."""
    from primeguard.policy.diff import diff, diff_text

    active_policy, active, source = policy_in_force(store, policy_dir=policy_dir, cache=cache)
    with store.session(readonly=True) as s:
        versions = repos.list_policy_versions(s, limit=100)
    pending = []
    for v in versions:
        if v.state not in ("proposed", "approved"):
            continue
        item = version_json(v)
        proposed, err = cache.load(v.hash, lambda v=v: _load_version(v.content))
        item["load_error"] = err
        item["diff"] = None
        if proposed is not None and active_policy is not None:
            try:
                changes = diff(active_policy, proposed)
                item["diff"] = {"against": active_policy.hash, "text": diff_text(active_policy, proposed, changes),
                                "changes": [c.json() for c in changes]}
            except Exception as exc:  # show the proposal even if the diff cannot be computed
                item["diff"] = {"against": getattr(active_policy, "hash", None), "text": f"diff failed: {exc}",
                                "changes": []}
        pending.append(item)
    history = [version_json(v) for v in versions if v.state not in ("proposed", "approved", "active")][:20]
    return {"active": active, "active_source": source, "pending": pending, "history": history}


def _dir_stamp(directory: Path) -> str:
    try:
        return str(max((p.stat().st_mtime_ns for p in directory.rglob("*.y*ml")), default=0))
    except OSError:
        return "0"


def destinations(service: Any | None, *, venues: bool = False) -> dict[str, Any]:
    """The destinations view (``primeguard.allowlist/1``, as ``allowlist status --json``) plus the
    proposals waiting for a second compliance user. Reads each vault (and, with ``venues``, each
    venue's address book) now; screening answers come from its cache within their TTL.

    Raises:
        WebError: 503 ``destinations_unavailable`` without a destination service.
    """
    from primeguard.web.errors import destinations_unavailable

    if service is None:
        raise destinations_unavailable()
    return {"schema": "primeguard.allowlist/1", "destinations": service.status(venues=venues),
            "proposals": service.proposals()}
