"""Sweep and capability reports: one JSON schema for ``--json``, the API and the dashboard (the CLI
renders the same data for people). Decimals are strings in JSON; never floats."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from primeguard.config.schema import PrimeguardConfig
from primeguard.domain.findings import Finding
from primeguard.domain.model import LEVER_POWERS, Credential
from primeguard.domain.money import decimal_str
from primeguard.pipeline.collateral import oracle_collateral
from primeguard.pipeline.collect import collect
from primeguard.policy.policyset import PolicySet

REPORT_SCHEMA = "primeguard.sweep/1"


def finding_json(f: Finding) -> dict[str, Any]:
    """A finding in the reports' JSON: :meth:`Finding.to_json` (``primeguard.finding/1``). Pure."""
    return f.to_json()


async def sweep_report(cfg: PrimeguardConfig, *, config_dir: Path | None = None,
                       progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """One sweep: collateral per holding and client, plus each client's risk view (metrics, ladder
    rung from this observation alone, prices used and their age) under the policy in force.
    ``progress``, when given, is told a line for people per venue read and per stage."""

    from primeguard.pipeline.evaluate import evaluate
    from primeguard.policy.loader import load

    obs, stats = await collect(cfg, progress=progress)
    if progress is not None:
        progress(f"collected {stats.accounts} accounts in {stats.seconds:.1f} s; evaluating")
    table = oracle_collateral(obs)
    findings = list(obs.findings)
    for s in obs.snapshots:
        findings.extend(f for f in s.findings if f not in findings)
    pdir = Path(cfg.policy_dir)
    if not pdir.is_absolute() and config_dir is not None:
        pdir = config_dir / pdir
    try:
        policy = load(pdir) if pdir.is_dir() else None
    except Exception:  # a broken policy means no policy: the evaluation fails closed and says so
        policy = None
    ev = evaluate(cfg, obs, policy=policy, ladder={}, peaks={}, screen_stress_first=False)  # every figure
    if progress is not None:
        progress(f"evaluated {len(ev.valuations)} clients")
    findings.extend(f for f in ev.findings if f not in findings)
    return {
        "schema": REPORT_SCHEMA,
        "taken_at": obs.taken_at.isoformat(),
        "stats": {"seconds": round(stats.seconds, 4), "accounts": stats.accounts,
                  "blind_accounts": stats.blind_accounts, **stats.counters()},
        "prices": [
            {"asset": q.asset, "price": decimal_str(q.price), "source": q.source.value, "source_id": q.source_id,
             "updated_at": q.updated_at.isoformat(), "age_s": int((obs.taken_at - q.updated_at).total_seconds()),
             "round_id": q.round_id}
            for q in obs.prices
        ],
        "collateral": [r.to_json() for r in table.rows],
        "clients": [
            {"client": cid, "collateral_usd": None if total is None else decimal_str(total), "blind": total is None}
            for cid, total in sorted(table.per_client.items())
        ],
        "risk": [{**v.to_json(), "ladder": ev.ladder[cid].to_json(), "stress": ev.stress.get(cid, [])}
                 for cid, v in sorted(ev.valuations.items())],
        "book_exposure": None if ev.book_exposure is None else ev.book_exposure.to_json_dict(),
        "volatility_haircuts": [v.to_json_dict() for _, v in sorted(ev.volatility.items())],
        "policy_hash": None if policy is None else policy.hash,
        "findings": [finding_json(f) for f in findings],
    }


CAPABILITIES_SCHEMA = "primeguard.capabilities/1"


def known_delegates_of(policy: PolicySet | None) -> list[tuple[str, str | None, str]]:
    """The policy's known EIP-7702 delegates as (address, chain or None, label); none without a policy. Pure."""
    return [] if policy is None else [(d.address, d.chain, d.label) for d in policy.known_delegates]


def credential_json(c: Credential, client_of: dict[str, str]) -> dict[str, Any]:
    """A credential in the capability report's JSON, with the client that owns its account. Pure."""
    return {
        "id": c.id, "account": c.account_id, "client": client_of.get(c.account_id), "venue": c.venue.value,
        "chain": c.chain, "kind": c.kind, "holder": c.holder.value,
        "capabilities": sorted(x.value for x in c.capabilities), "moves_funds": c.moves_funds,
        "levers": list(LEVER_POWERS.get(c.holder, ())) if c.venue.is_cex else [],
        "ip_restricted": c.ip_restricted, "expires_at": None if c.expires_at is None else c.expires_at.isoformat(),
        "details": {k: v for k, v in c.details.items()},
    }


async def capabilities_report(cfg: PrimeguardConfig, *, cursor_path: Path | None = None,
                              policy: PolicySet | None = None,
                              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Who can move what, on every venue, in one vocabulary; findings (violations) first. The
    known EIP-7702 delegates are the ``policy``'s (plus the config's deprecated list).
    ``progress``, when given, is told a line for people per chain scanned and per venue read."""
    from primeguard.venues.evm.scan import JsonCursorStore, MemoryCursorStore, capabilities_from_scan, scan_all

    store = JsonCursorStore(cursor_path) if cursor_path is not None else MemoryCursorStore()
    scans = await scan_all(cfg, store, progress=progress)
    creds, findings = capabilities_from_scan(cfg, scans, known_delegates_of(policy))
    obs, _ = await collect(cfg, progress=progress)
    for snap in obs.snapshots:
        if snap.account.venue.value != "evm":
            creds.extend(snap.credentials)
            findings.extend(f for f in snap.findings if f not in findings)
    client_of = {a.id: a.client for a in (*cfg.wallets, *cfg.cex_accounts, *cfg.dydx_accounts)}
    findings.sort(key=lambda f: (-f.severity, f.code.value, f.subject))
    return {
        "schema": CAPABILITIES_SCHEMA,
        "taken_at": obs.taken_at.isoformat(),
        "findings": [finding_json(f) for f in findings],
        "credentials": [credential_json(c, client_of) for c in sorted(creds, key=lambda c: (c.account_id, c.id))],
        "scans": [{"chain": s.chain, "from_block": s.scanned_from, "to_block": s.scanned_to,
                   "approvals": len(s.approvals), "round_trips": s.round_trips} for s in scans],
    }
