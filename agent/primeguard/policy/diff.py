"""``policy diff OLD NEW``: the change in *effect*, in words, not a text diff.

Each change says what becomes allowed or denied, or which threshold moves which way, and is
classified ``looser`` (more is allowed / escalation comes later), ``stricter`` or ``changed``
(neither, e.g. a label or a scope rewrite). Reviewers read the looser ones first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from primeguard.domain.money import decimal_str
from primeguard.policy.policyset import (
    AllowEntry,
    AllowKey,
    ApprovalRuleC,
    CapabilityRuleC,
    GuardsC,
    LimitRuleC,
    PlanStepC,
    PolicySet,
)
from primeguard.policy.schema import HaircutsFile, TierSpec
from primeguard.risk.params import DEFAULT_NEAR_LIQUIDATION

Effect = Literal["looser", "stricter", "changed"]
_BAND_ORDER = {"warn": 0, "margin_call": 1, "halt": 2}


@dataclass(frozen=True, slots=True)
class Change:
    # allowlist | guards | limits | approvals | capabilities | tiers | clients | oracle | haircuts | venues | liquidity
    # | plan
    area: str
    subject: str  # the rule, entry, tier or asset concerned
    effect: Effect
    text: str

    def json(self) -> dict[str, str]:
        return {"area": self.area, "subject": self.subject, "effect": self.effect, "text": self.text}


def diff(old: PolicySet, new: PolicySet) -> list[Change]:
    """Semantic differences from ``old`` to ``new`` (empty when they decide identically)."""
    out: list[Change] = []
    _allowlist(old, new, out)
    _guards(old, new, out)
    _limits(old, new, out)
    _approvals(old, new, out)
    _capabilities(old, new, out)
    _risk(old, new, out)
    _plan(old, new, out)
    return out


def diff_text(old: PolicySet, new: PolicySet, changes: list[Change], *, limit: int = 200) -> str:
    if not changes:
        return f"No change in effect between {old.short_hash} and {new.short_hash}."
    counts = {e: sum(1 for c in changes if c.effect == e) for e in ("looser", "stricter", "changed")}
    lines = [f"Policy {old.short_hash} -> {new.short_hash}: {len(changes)} change(s) in effect "
             f"({counts['looser']} looser, {counts['stricter']} stricter, {counts['changed']} other)"]
    order = {"looser": 0, "stricter": 1, "changed": 2}
    for c in sorted(changes, key=lambda c: order[c.effect])[:limit]:
        lines.append(f"  [{c.effect}] {c.text}")
    if len(changes) > limit:
        lines.append(f"  ... and {len(changes) - limit} more (see --json)")
    return "\n".join(lines)


def _d(value: Decimal | None) -> str:
    return "none" if value is None else decimal_str(value)


def _usd(value: Decimal | None) -> str:
    return "no limit" if value is None else f"${value:,}"


def _num(out: list[Change], area: str, subject: str, what: str, old: Decimal | int | None,
         new: Decimal | int | None, higher: Effect, fmt: Callable[[Any], str] = str) -> None:
    """Record a moved threshold. ``higher`` is the effect of the value going up; None = no limit."""
    if old == new:
        return
    lower: Effect = "stricter" if higher == "looser" else "looser"
    if old is None:
        effect = lower  # a limit appears where there was none: behaves like a move down from infinity
    elif new is None:
        effect = higher
    else:
        effect = higher if new > old else lower
    out.append(Change(area, subject, effect, f"{what} moves from {fmt(old)} to {fmt(new)} ({effect})"))


def _shadow(out: list[Change], area: str, subject: str, what: str, old: bool, new: bool) -> None:
    if old == new:
        return
    if new:
        out.append(Change(area, subject, "looser", f"{what} moves to shadow mode: logged, no longer enforced"))
    else:
        out.append(Change(area, subject, "stricter", f"{what} leaves shadow mode: now enforced"))


def _entry_words(key: AllowKey, e: AllowEntry) -> str:
    client, venue, chain, asset, address = key
    return f"{asset} withdrawals by client {client} from {venue} on {chain} to {address} ({e.label})"


def _allowlist(old: PolicySet, new: PolicySet, out: list[Change]) -> None:
    for key in sorted(set(old.allowlist) | set(new.allowlist), key=str):
        a = old.allowlist.get(key)
        b = new.allowlist.get(key)
        if a is None and b is not None:
            out.append(Change("allowlist", b.id, "looser", f"{_entry_words(key, b)} become allowed (entry {b.id}, "
                              f"from {b.active_from.isoformat()} until {b.expires_at.isoformat()})"))
        elif b is None and a is not None:
            out.append(Change("allowlist", a.id, "stricter", f"{_entry_words(key, a)} become denied "
                              f"(entry {a.id} removed)"))
        elif a is not None and b is not None:
            if a.expires_at != b.expires_at:
                effect: Effect = "looser" if b.expires_at > a.expires_at else "stricter"
                out.append(Change("allowlist", b.id, effect, f"{_entry_words(key, b)} stay allowed until "
                                  f"{b.expires_at.isoformat()} instead of {a.expires_at.isoformat()} ({effect})"))
            if a.active_from != b.active_from:
                effect = "looser" if b.active_from < a.active_from else "stricter"
                out.append(Change("allowlist", b.id, effect, f"{_entry_words(key, b)} become allowed from "
                                  f"{b.active_from.isoformat()} instead of {a.active_from.isoformat()} ({effect})"))
            if (a.label, a.id, a.memo) != (b.label, b.id, b.memo):
                out.append(Change("allowlist", b.id, "changed", f"entry for {_entry_words(key, b)}: id/label/memo "
                                  f"changed from {a.id}/{a.label!r}/{a.memo!r}"))


def _screening(a: GuardsC, b: GuardsC, out: list[Change]) -> None:
    """Screening sources moving between advisory and authoritative (or the split moving between
    the config and the policy)."""
    rid = b.screening_id or a.screening_id or "screening"
    if (a.screening_id is None) != (b.screening_id is None):
        where = "the policy" if b.screening_id is not None else "the config"
        out.append(Change("guards", rid, "changed", f"which screening sources only advise now comes from {where}"))
    for src in sorted(b.screening_advisory - a.screening_advisory):
        out.append(Change("guards", rid, "looser", f"screening source {src} becomes advisory: when it cannot answer, "
                          "destinations are no longer refused"))
    for src in sorted(a.screening_advisory - b.screening_advisory):
        out.append(Change("guards", rid, "stricter", f"screening source {src} becomes authoritative: when it cannot "
                          "answer, destinations are refused"))


def _guards(old: PolicySet, new: PolicySet, out: list[Change]) -> None:
    a, b = old.guards, new.guards
    if a is None and b is None:
        return
    if a is None or b is None:
        effect: Effect = "looser" if a is None else "stricter"
        verb = "can now be allowed" if a is None else "are all denied (no withdrawal_limits file)"
        out.append(Change("guards", "withdrawal_limits", effect, f"withdrawals {verb}"))
        return
    _num(out, "guards", b.price_id, f"maximum price age ({b.price_id})", a.price_max_age_s, b.price_max_age_s,
         "looser", lambda s: f"{s}s")
    for state in sorted(b.allow_states - a.allow_states):
        out.append(Change("guards", b.ladder_id, "looser", f"withdrawals become allowed in ladder state {state}"))
    for state in sorted(a.allow_states - b.allow_states):
        out.append(Change("guards", b.ladder_id, "stricter", f"withdrawals become denied in ladder state {state}"))
    _shadow(out, "guards", b.ladder_id, f"ladder guard {b.ladder_id}", a.ladder_shadow, b.ladder_shadow)
    if a.ltv_max != b.ltv_max:
        if isinstance(a.ltv_max, str) and isinstance(b.ltv_max, str):
            effect = "looser" if _BAND_ORDER[b.ltv_max] > _BAND_ORDER[a.ltv_max] else "stricter"
        elif isinstance(a.ltv_max, Decimal) and isinstance(b.ltv_max, Decimal):
            effect = "looser" if b.ltv_max > a.ltv_max else "stricter"
        else:
            effect = "changed"
        out.append(Change("guards", b.ltv_id, effect, f"post-withdrawal LTV cap moves from {a.ltv_max} to "
                          f"{b.ltv_max} ({effect})"))
    _shadow(out, "guards", b.ltv_id, f"LTV guard {b.ltv_id}", a.ltv_shadow, b.ltv_shadow)
    for v in sorted(b.unverifiable_venues - a.unverifiable_venues):
        out.append(Change("guards", b.whitelist_id, "looser", f"withdrawals from {v} no longer need a readable "
                          f"venue whitelist"))
    for v in sorted(a.unverifiable_venues - b.unverifiable_venues):
        out.append(Change("guards", b.whitelist_id, "stricter", f"withdrawals from {v} now need a readable venue "
                          f"whitelist containing the destination"))
    _shadow(out, "guards", b.whitelist_id, f"venue whitelist guard {b.whitelist_id}", a.whitelist_shadow,
            b.whitelist_shadow)
    _screening(a, b, out)
    for what, ida, idb, sha, shb, text in (
            ("financing", a.financing_id, b.financing_id, a.financing_shadow, b.financing_shadow,
             "loan / own collateral after a withdrawal is checked against the tier's financing cap"),
            ("stress", a.stress_id, b.stress_id, a.stress_shadow, b.stress_shadow,
             "the worst stressed shortfall after a withdrawal is checked against the tier's limit")):
        if ida is None and idb is not None:
            out.append(Change("guards", idb, "stricter", f"new {what} guard {idb}: {text}"))
        elif ida is not None and idb is None:
            out.append(Change("guards", ida, "looser", f"{what} guard {ida} removed: no longer {text.split(' is ')[0]} "
                              f"checked"))
        elif idb is not None:
            _shadow(out, "guards", idb, f"{what} guard {idb}", sha, shb)


def _by_id(items: Iterable[Any]) -> dict[str, Any]:
    return {i.id: i for i in items}


def _limits(old: PolicySet, new: PolicySet, out: list[Change]) -> None:
    a_rules: dict[str, LimitRuleC] = _by_id(old.limits)
    b_rules: dict[str, LimitRuleC] = _by_id(new.limits)
    for rid in sorted(set(a_rules) | set(b_rules)):
        a, b = a_rules.get(rid), b_rules.get(rid)
        if a is None and b is not None:
            effect: Effect = "changed" if b.shadow else "stricter"
            out.append(Change("limits", rid, effect, f"new limit {rid} for {b.scope.describe()}: per transaction "
                              f"{_usd(b.per_tx_usd)}, velocity {_velocity(b)}{' (shadow)' if b.shadow else ''}"))
        elif b is None and a is not None:
            effect = "changed" if a.shadow else "looser"
            out.append(Change("limits", rid, effect, f"limit {rid} for {a.scope.describe()} removed"))
        elif a is not None and b is not None:
            subject = f"limit {rid} ({b.scope.describe()})"
            _num(out, "limits", rid, f"per-transaction limit of {subject}", a.per_tx_usd, b.per_tx_usd, "looser", _usd)
            _num(out, "limits", rid, f"velocity limit of {subject}", a.velocity_max_usd, b.velocity_max_usd,
                 "looser", _usd)
            _num(out, "limits", rid, f"velocity window of {subject}", a.window_s, b.window_s, "stricter",
                 lambda s: f"{s}s")
            if a.scope != b.scope:
                out.append(Change("limits", rid, "changed", f"limit {rid} now covers {b.scope.describe()} "
                                  f"(was {a.scope.describe()})"))
            _shadow(out, "limits", rid, f"limit {rid}", a.shadow, b.shadow)


def _velocity(r: LimitRuleC) -> str:
    return f"{_usd(r.velocity_max_usd)} per {r.window_s}s" if r.window_s else "none"


def _approvals(old: PolicySet, new: PolicySet, out: list[Change]) -> None:
    a_rules: dict[str, ApprovalRuleC] = _by_id(old.approval_rules)
    b_rules: dict[str, ApprovalRuleC] = _by_id(new.approval_rules)
    for rid in sorted(set(a_rules) | set(b_rules)):
        a, b = a_rules.get(rid), b_rules.get(rid)
        if a is None and b is not None:
            out.append(Change("approvals", rid, "changed" if b.shadow else "stricter",
                              f"withdrawals above {_usd(b.above_usd)} ({b.scope.describe()}) now need {b.required} "
                              f"approval(s) from {'/'.join(sorted(b.roles))} (rule {rid})"))
        elif b is None and a is not None:
            out.append(Change("approvals", rid, "changed" if a.shadow else "looser",
                              f"withdrawals above {_usd(a.above_usd)} no longer need rule {rid}'s {a.required} "
                              f"approval(s)"))
        elif a is not None and b is not None:
            _num(out, "approvals", rid, f"approval threshold of {rid}", a.above_usd, b.above_usd, "looser", _usd)
            _num(out, "approvals", rid, f"approvals required by {rid}", a.required, b.required, "stricter")
            for role in sorted(b.roles - a.roles):
                out.append(Change("approvals", rid, "looser", f"{role} users may now approve under {rid}"))
            for role in sorted(a.roles - b.roles):
                out.append(Change("approvals", rid, "stricter", f"{role} users may no longer approve under {rid}"))
            if a.approvers != b.approvers:
                added = sorted((b.approvers or frozenset()) - (a.approvers or frozenset()))
                removed = sorted((a.approvers or frozenset()) - (b.approvers or frozenset()))
                effect: Effect = (
                    "looser" if added and not removed else "stricter" if removed and not added else "changed"
                )
                out.append(Change("approvals", rid, effect, f"named approvers of {rid}: added {added or 'none'}, "
                                  f"removed {removed or 'none'}"))
            if a.scope != b.scope:
                out.append(Change("approvals", rid, "changed", f"rule {rid} now covers {b.scope.describe()}"))
            _shadow(out, "approvals", rid, f"approval rule {rid}", a.shadow, b.shadow)


def _capabilities(old: PolicySet, new: PolicySet, out: list[Change]) -> None:
    a_rules: dict[str, CapabilityRuleC] = _by_id(old.capability_rules)
    b_rules: dict[str, CapabilityRuleC] = _by_id(new.capability_rules)
    for rid in sorted(set(a_rules) | set(b_rules)):
        a, b = a_rules.get(rid), b_rules.get(rid)
        if a is None and b is not None:
            out.append(Change("capabilities", rid, "changed" if b.spec.shadow else "stricter",
                              f"new capability rule {rid}: {b.spec.description or b.spec.check}"))
        elif b is None and a is not None:
            out.append(Change("capabilities", rid, "changed" if a.spec.shadow else "looser",
                              f"capability rule {rid} removed ({a.spec.description or a.spec.check})"))
        elif a is not None and b is not None:
            for cap in sorted(b.forbidden - a.forbidden):
                out.append(Change("capabilities", rid, "stricter", f"{rid}: credentials in scope may no longer "
                                  f"{cap.value}"))
            for cap in sorted(a.forbidden - b.forbidden):
                out.append(Change("capabilities", rid, "looser", f"{rid}: credentials in scope may now {cap.value}"))
            _num(out, "capabilities", rid, f"{rid}: minimum Safe threshold", a.spec.safe_min_threshold,
                 b.spec.safe_min_threshold, "stricter")
            for m in sorted(b.allowed_modules - a.allowed_modules):
                out.append(Change("capabilities", rid, "looser", f"Safe module {m} becomes acceptable ({rid})"))
            for m in sorted(a.allowed_modules - b.allowed_modules):
                out.append(Change("capabilities", rid, "stricter", f"Safe module {m} is no longer acceptable ({rid})"))
            if a.spec.applies_to != b.spec.applies_to:
                out.append(Change("capabilities", rid, "changed", f"{rid} now applies to "
                                  f"{b.spec.applies_to.model_dump(exclude_none=True, mode='json')}"))
            if a.spec.severity != b.spec.severity:
                out.append(Change("capabilities", rid, "changed", f"{rid} severity {a.spec.severity} -> "
                                  f"{b.spec.severity}"))
            if a.spec.check != b.spec.check:
                out.append(Change("capabilities", rid, "changed", f"{rid} now checks {b.spec.check} "
                                  f"(was {a.spec.check})"))
            _shadow(out, "capabilities", rid, f"capability rule {rid}", a.spec.shadow, b.spec.shadow)
    a_sp = {s for r in old.capability_rules for s in r.known_spenders}
    b_sp = {s for r in new.capability_rules for s in r.known_spenders}
    for addr, chain in sorted(b_sp - a_sp, key=str):
        out.append(Change("capabilities", addr, "looser", f"unlimited approvals to {addr} "
                          f"({chain or 'any chain'}) become acceptable (known spender added)"))
    for addr, chain in sorted(a_sp - b_sp, key=str):
        out.append(Change("capabilities", addr, "stricter", f"unlimited approvals to {addr} "
                          f"({chain or 'any chain'}) are flagged again (known spender removed)"))
    a_dl = {(d.address, d.chain) for d in old.known_delegates}
    b_dl = {(d.address, d.chain) for d in new.known_delegates}
    for addr, chain in sorted(b_dl - a_dl, key=str):
        out.append(Change("capabilities", addr, "looser", f"EOAs delegating their code to {addr} "
                          f"({chain or 'any chain'}) are no longer critical (known delegate added)"))
    for addr, chain in sorted(a_dl - b_dl, key=str):
        out.append(Change("capabilities", addr, "stricter", f"EOAs delegating their code to {addr} "
                          f"({chain or 'any chain'}) are critical again (known delegate removed)"))


def _tier(out: list[Change], a: TierSpec, b: TierSpec) -> None:
    t = f"tier {b.id}"
    _num(out, "tiers", b.id, f"{t}: financing (loan:collateral)", a.max_loan_to_collateral, b.max_loan_to_collateral,
         "looser", lambda v: f"{_d(v)}:1")
    _num(out, "tiers", b.id, f"{t}: track record required", a.min_track_record_days, b.min_track_record_days,
         "stricter", lambda v: f"{v} days")
    for name in ("max_leverage", "max_net_delta_ratio", "max_drawdown", "max_concentration", "max_gross_leverage",
                 "max_low_liquidity_share", "max_track_record_drawdown"):
        _num(out, "tiers", b.id, f"{t}: {name}", getattr(a, name), getattr(b, name), "looser", _d)
    _num(out, "tiers", b.id, f"{t}: max_stress_shortfall_usd", a.max_stress_shortfall_usd, b.max_stress_shortfall_usd,
         "looser", _usd)
    near_a = DEFAULT_NEAR_LIQUIDATION if a.near_liquidation is None else a.near_liquidation
    near_b = DEFAULT_NEAR_LIQUIDATION if b.near_liquidation is None else b.near_liquidation
    _num(out, "tiers", b.id, f"{t}: near-liquidation distance", near_a, near_b, "stricter", _d)
    pa, pb = a.min_realised_pnl_usd, b.min_realised_pnl_usd
    if pa != pb:  # a minimum: appearing or rising is stricter
        eff: Effect = "stricter" if pa is None or (pb is not None and pb > pa) else "looser"
        out.append(Change("tiers", b.id, eff, f"{t}: realised PnL required for the tier moves from {_usd(pa)} to "
                          f"{_usd(pb)} ({eff})"))
    for band in ("warn", "margin_call", "halt", "liquidate"):
        _num(out, "tiers", b.id, f"{t}: {band.replace('_', ' ')} band (LTV)", getattr(a.ladder, band),
             getattr(b.ladder, band), "looser", _d)
    _num(out, "tiers", b.id, f"{t}: margin call deadline", a.ladder.margin_call_deadline_s,
         b.ladder.margin_call_deadline_s, "looser", lambda s: f"{s}s")
    if (a.ladder.hysteresis, a.ladder.cooldown_s) != (b.ladder.hysteresis, b.ladder.cooldown_s):
        out.append(Change("tiers", b.id, "changed", f"{t}: hysteresis/cooldown {a.ladder.hysteresis}/"
                          f"{a.ladder.cooldown_s}s -> {b.ladder.hysteresis}/{b.ladder.cooldown_s}s"))


def _risk(old: PolicySet, new: PolicySet, out: list[Change]) -> None:
    for tid in sorted(set(old.tiers) | set(new.tiers)):
        a, b = old.tiers.get(tid), new.tiers.get(tid)
        if a is None and b is not None:
            out.append(Change("tiers", tid, "changed", f"new tier {tid}: {_d(b.max_loan_to_collateral)}:1 financing"))
        elif b is None and a is not None:
            out.append(Change("tiers", tid, "changed", f"tier {tid} removed"))
        elif a is not None and b is not None:
            _tier(out, a, b)
    if old.risk.default_tier != new.risk.default_tier:
        out.append(Change("tiers", "default_tier", "changed", f"unlisted clients move from tier "
                          f"{old.risk.default_tier} to {new.risk.default_tier}"))
    for cid in sorted(set(old.client_tiers) | set(new.client_tiers)):
        ta, tb = old.tier_of(cid), new.tier_of(cid)
        if ta == tb:
            continue
        ra = old.tiers[ta].max_loan_to_collateral if ta in old.tiers else Decimal(0)
        rb = new.tiers[tb].max_loan_to_collateral if tb in new.tiers else Decimal(0)
        effect: Effect = "looser" if rb > ra else "stricter" if rb < ra else "changed"
        out.append(Change("clients", cid, effect, f"client {cid} moves from tier {ta} to {tb} ({effect})"))
    _num(out, "oracle", "oracle", "maximum oracle price age", old.risk.oracle.max_age_s, new.risk.oracle.max_age_s,
         "looser", lambda s: f"{s}s")
    _num(out, "oracle", "oracle", "maximum price deviation between sources", old.risk.oracle.max_deviation,
         new.risk.oracle.max_deviation, "looser", _d)
    va = {v.venue: v for v in old.risk.venue_limits}
    vb = {v.venue: v for v in new.risk.venue_limits}
    for venue in sorted(set(va) | set(vb)):
        la, lb = va.get(venue), vb.get(venue)
        for field_name, label in (("max_client_share", "a client's"), ("max_book_share", "the book's")):
            _num(out, "venues", venue, f"venue {venue}: largest share of {label} collateral",
                 getattr(la, field_name) if la else None, getattr(lb, field_name) if lb else None, "looser", _d)
    if old.risk.liquidity != new.risk.liquidity:
        out.append(Change("liquidity", "liquidity", "changed", "liquidity classes or asset classes change: "
                          "liquidation cost and stress results move"))
    ha = old.models[old.risk.haircuts]
    hb = new.models[new.risk.haircuts]
    assert isinstance(ha, HaircutsFile) and isinstance(hb, HaircutsFile)
    _num(out, "haircuts", "default", "haircut for unlisted assets", ha.default, hb.default, "stricter", _d)
    if ha.volatility != hb.volatility:
        if hb.volatility is None:
            out.append(Change("haircuts", "volatility", "looser", "volatility haircuts removed: listed haircuts only"))
        elif ha.volatility is None:
            out.append(Change("haircuts", "volatility", "stricter", f"volatility haircuts: max(listed, "
                              f"{_d(hb.volatility.k)} × σ over {hb.volatility.window_days} days)"))
        else:
            _num(out, "haircuts", "volatility", "volatility multiplier k", ha.volatility.k, hb.volatility.k,
                 "stricter", _d)
            if (ha.volatility.window_days, ha.volatility.min_points, ha.volatility.assets) != (
                    hb.volatility.window_days, hb.volatility.min_points, hb.volatility.assets):
                out.append(Change("haircuts", "volatility", "changed", "volatility window, minimum history or "
                                  "assets change"))
            if ha.volatility.short_history != hb.volatility.short_history:
                full = hb.volatility.short_history == "full"
                out.append(Change("haircuts", "volatility", "stricter" if full else "looser",
                                  "too little price history now counts the asset at " +
                                  ("nothing (haircut 1)" if full else "its listed haircut")))
    for asset in sorted(set(old.haircuts) | set(new.haircuts)):
        ha_v, hb_v = old.haircuts.get(asset), new.haircuts.get(asset)
        if ha_v is None and hb_v is not None:
            out.append(Change("haircuts", asset, "looser", f"asset {asset} becomes known (haircut {_d(hb_v)}): it "
                              f"can be withdrawn where allowlisted"))
        elif hb_v is None and ha_v is not None:
            out.append(Change("haircuts", asset, "stricter", f"asset {asset} is no longer known: its withdrawals "
                              f"are denied and it counts at the default haircut"))
        else:
            _num(out, "haircuts", asset, f"haircut on {asset}", ha_v, hb_v, "stricter", _d)
    for asset in sorted(new.low_liquidity_assets - old.low_liquidity_assets):
        out.append(Change("haircuts", asset, "stricter", f"{asset} is now treated as a low-liquidity asset"))
    for asset in sorted(old.low_liquidity_assets - new.low_liquidity_assets):
        out.append(Change("haircuts", asset, "looser", f"{asset} is no longer treated as a low-liquidity asset"))
    _defi_classes(old, new, out)


def _defi_classes(old: PolicySet, new: PolicySet, out: list[Change]) -> None:
    """DeFi position haircut classes: a class added lets its positions count as collateral (looser),
    a class removed stops them counting (stricter), a haircut raised is stricter."""
    for name in sorted(set(old.defi_classes) | set(new.defi_classes)):
        a, b = old.defi_classes.get(name), new.defi_classes.get(name)
        if a is None and b is not None:
            out.append(Change("haircuts", f"defi:{name}", "looser", f"DeFi positions of class {name} become "
                              f"collateral (haircut {_d(b.haircut)})"))
        elif b is None and a is not None:
            out.append(Change("haircuts", f"defi:{name}", "stricter", f"DeFi positions of class {name} no longer "
                              f"count as collateral (class removed: fail closed)"))
        elif a is not None and b is not None:
            _num(out, "haircuts", f"defi:{name}", f"haircut on DeFi class {name}", a.haircut, b.haircut,
                 "stricter", _d)


__all__ = ["Change", "diff", "diff_text"]


# How strongly a mode acts: a step that acts more on its own is stricter on the client.
_MODE_FORCE = {"dry_run": 0, "shadow": 0, "needs_approval": 1, "automatic": 2}


def _plan(old: PolicySet, new: PolicySet, out: list[Change]) -> None:
    """Plan steps by id: added (stricter unless it only records), removed (looser unless it only
    recorded), mode, lever, rung or scope changed."""
    a_steps: dict[str, PlanStepC] = _by_id(old.plan.steps if old.plan else ())
    b_steps: dict[str, PlanStepC] = _by_id(new.plan.steps if new.plan else ())
    if (old.plan is None) != (new.plan is None):
        out.append(Change("plan", new.plan.file_id if new.plan else "builtin", "changed",
                          "the ladder plan now comes from the policy" if new.plan else
                          "the policy no longer has a ladder plan: the built-in plan and the config's deprecated "
                          "modes apply"))
    for sid in sorted(set(a_steps) | set(b_steps)):
        a, b = a_steps.get(sid), b_steps.get(sid)
        if a is None and b is not None:
            out.append(Change("plan", sid, "stricter" if _MODE_FORCE[b.mode] else "changed",
                              f"plan step {sid} added: {b.describe()}"))
        elif b is None and a is not None:
            out.append(Change("plan", sid, "looser" if _MODE_FORCE[a.mode] else "changed",
                              f"plan step {sid} removed: no more {a.describe()}"))
        elif a is not None and b is not None:
            if a.mode != b.mode:
                fa, fb = _MODE_FORCE[a.mode], _MODE_FORCE[b.mode]
                effect: Effect = "stricter" if fb > fa else "looser" if fb < fa else "changed"
                out.append(Change("plan", sid, effect, f"plan step {sid} ({b.lever} at {b.rung}) now runs "
                                  f"{b.mode} (was {a.mode})"))
            if (a.lever, a.rung) != (b.lever, b.rung):
                out.append(Change("plan", sid, "changed", f"plan step {sid} now pulls {b.lever} at {b.rung} "
                                  f"(was {a.lever} at {a.rung})"))
            if (a.tiers, a.clients) != (b.tiers, b.clients):
                out.append(Change("plan", sid, "changed", f"plan step {sid} now applies as: {b.describe()}"))
