"""Answer "why was this decided?": reason-code documentation, traces with file:line, JSON forms.

Two entry points: :func:`explain_evaluation` renders a fresh evaluation with every rule's verdict
and where the rule is written; :func:`explain_decision` explains a *recorded* decision (from the
decision log) against a policy version, warning when that version is not the one that decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from primeguard.domain.decision import Decision, ReasonCode
from primeguard.domain.findings import Finding
from primeguard.domain.money import decimal_str
from primeguard.policy.bundle import display_name
from primeguard.policy.engine import Evaluation
from primeguard.policy.policyset import PolicySet

# One sentence per reason code: what it means and what to do. Mirrors domain/decision.py and
# docs/policy.md; tests check that every ReasonCode has an entry.
REASON_DOCS: Mapping[ReasonCode, str] = MappingProxyType({
    ReasonCode.ALLOWED: "Every applicable rule passed.",
    ReasonCode.NOT_ALLOWLISTED: "The destination is not on the allowlist for this client, venue, chain and asset; "
                                "withdrawals are denied unless an entry allows them. Add an entry (it waits out "
                                "the timelock) if the destination is legitimate.",
    ReasonCode.ALLOWLIST_EXPIRED: "The matching allowlist entry has expired; compliance must re-verify and renew it.",
    ReasonCode.ALLOWLIST_NOT_YET_ACTIVE: "The matching allowlist entry is still in its timelock.",
    ReasonCode.VENUE_WHITELIST_MISSING: "The venue's own withdrawal whitelist lacks the address, is off, or could "
                                        "not be read.",
    ReasonCode.AMOUNT_INVALID: "The amount is not a positive, finite number in range.",
    ReasonCode.ASSET_UNKNOWN: "The asset has no haircut entry, so the policy does not know it.",
    ReasonCode.ADDRESS_INVALID: "The destination is malformed or fails its EIP-55 checksum (or is the zero address).",
    ReasonCode.LIMIT_PER_TX: "The USD value is above a per-transaction limit.",
    ReasonCode.LIMIT_VELOCITY: "The client's withdrawals within the window, plus this one, exceed a velocity limit.",
    ReasonCode.LTV_IMPACT: "After the withdrawal the client's LTV would reach the configured band of its tier.",
    ReasonCode.LADDER_STATE: "The client is in a ladder state (margin call, halt, liquidate, or unknown) that "
                             "forbids withdrawals, or its risk numbers put it past margin call.",
    ReasonCode.PRICE_UNAVAILABLE: "No usable USD price: the amount cannot be valued, so the request fails closed.",
    ReasonCode.DATA_STALE: "An input (usually the price) is older than the policy allows, or its age is unknown.",
    ReasonCode.BLIND_SPOT: "Part of the client's collateral or LTV cannot be seen; decisions about it fail closed.",
    ReasonCode.CAPABILITY_FORBIDDEN: "A credential holds a capability the policy forbids for its holder.",
    ReasonCode.APPROVAL_REQUIRED: "More approvals are needed (N of M above an amount) before release.",
    ReasonCode.SELF_APPROVAL: "The requester approved their own request; that approval does not count.",
    ReasonCode.POLICY_MISSING: "No active, approved policy (or no withdrawal rules): everything is denied.",
    ReasonCode.SHADOW: "A shadow-mode rule would have objected; recorded, not enforced.",
    ReasonCode.LIMIT_EXCEEDED: "A risk limit (leverage, net delta, drawdown, concentration) is exceeded.",
    ReasonCode.FINANCING_CAP: "After the withdrawal or draw, loan ÷ the client's own collateral would exceed its "
                              "tier's max_loan_to_collateral.",
    ReasonCode.STRESS_LIMIT: "After the withdrawal or draw, the worst stress scenario's shortfall (loan − stressed "
                             "haircut collateral) would exceed the tier's max_stress_shortfall_usd.",
    ReasonCode.SANCTIONED: "A screening source (sanctions oracle or an imported list) lists the destination; "
                           "nothing may be sent there, whatever the allowlist says.",
    ReasonCode.SCREENING_UNAVAILABLE: "A screening source the policy relies on could not answer; withdrawals fail "
                                      "closed until it does.",
})


def decision_json(decision: Decision) -> dict[str, Any]:
    """A decision as a stable JSON object (the shape ``--json`` commands print)."""
    return {
        "outcome": str(decision.outcome),
        "reasons": [str(r) for r in decision.reasons],
        "rule_ids": list(decision.rule_ids),
        "explanation": decision.explanation,
        "policy_hash": decision.policy_hash,
        "shadow": list(decision.shadow),
        "approvals_required": decision.approvals_required,
    }


def finding_json(finding: Finding) -> dict[str, Any]:
    """A finding in an explanation's JSON: :meth:`Finding.to_json` (``primeguard.finding/1``). Pure."""
    return finding.to_json()



@dataclass(frozen=True, slots=True)
class Term:
    """One policy term that governs a client, with where it is written (``file:line``)."""

    name: str
    value: str
    at: str

    def to_json_dict(self) -> dict[str, str]:
        return {"name": self.name, "value": self.value, "at": self.at}


def client_terms(policy: PolicySet, client: str) -> list[Term]:
    """The terms that govern ``client`` besides the rules in the trace: its tier (and the line that
    assigns it), the tier's financing cap, gross leverage, stress limit, liquidity and
    near-liquidation settings, the track record the tier asks for, the venue limits, and the
    volatility haircut rule. Only what the policy sets is listed."""
    risk_rel = policy.file_ids.get(policy.risk.id)
    if risk_rel is None:
        return []
    src = policy.sources[risk_rel]
    name = display_name(policy.root, risk_rel)
    tier = policy.tier_of(client)
    out: list[Term] = []
    idx = next((i for i, c in enumerate(policy.risk.clients) if c.id == client), None)
    if idx is None:
        out.append(Term("tier", f"{tier} (default_tier: the client is not listed)",
                        f"{name}:{src.line_of(('default_tier',))}"))
    else:
        since = policy.risk.clients[idx].since
        out.append(Term("tier", tier + (f" since {since.isoformat()}" if since else ""),
                        f"{name}:{src.line_of(('clients', idx))}"))
    ti = next(i for i, t in enumerate(policy.risk.tiers) if t.id == tier)
    spec = policy.tiers[tier]
    fields = (("max_loan_to_collateral", spec.max_loan_to_collateral, ":1 loan / own collateral"),
              ("max_gross_leverage", spec.max_gross_leverage, "x gross exposure / own collateral"),
              ("max_stress_shortfall_usd", spec.max_stress_shortfall_usd, " USD worst stressed shortfall"),
              ("max_low_liquidity_share", spec.max_low_liquidity_share, " of equity in low-liquidity assets"),
              ("near_liquidation", spec.near_liquidation, " distance to liquidation warned"),
              ("min_track_record_days", spec.min_track_record_days or None, " days without a margin call to earn it"),
              ("max_track_record_drawdown", spec.max_track_record_drawdown, " worst drawdown over the record"),
              ("min_realised_pnl_usd", spec.min_realised_pnl_usd, " USD realised PnL over the record"))
    for field_name, value, unit in fields:
        if value is not None:
            out.append(Term(field_name, f"{decimal_str(Decimal(value))}{unit}",
                            f"{name}:{src.line_of(('tiers', ti, field_name))}"))
    for i, v in enumerate(policy.risk.venue_limits):
        parts = [f"client {decimal_str(v.max_client_share)}" if v.max_client_share is not None else "",
                 f"book {decimal_str(v.max_book_share)}" if v.max_book_share is not None else ""]
        out.append(Term(f"venue_limit {v.venue}", "largest share: " + ", ".join(p for p in parts if p),
                        f"{name}:{src.line_of(('venue_limits', i))}"))
    vol = policy.volatility
    hair_rel = policy.file_ids.get(policy.risk.haircuts)
    if vol is not None and hair_rel is not None:
        out.append(Term("volatility_haircuts", f"max(listed, {decimal_str(vol.k)} x sigma of daily returns over "
                                               f"{vol.window_days} days); short history: {vol.short_history}",
                        f"{display_name(policy.root, hair_rel)}:{policy.sources[hair_rel].line_of(('volatility',))}"))
    return out


def evaluation_json(policy: PolicySet, evaluation: Evaluation) -> dict[str, Any]:
    return {
        "decision": decision_json(evaluation.decision),
        "findings": [finding_json(f) for f in evaluation.findings],
        "trace": [
            {"rule_id": c.rule_id, "status": c.status, "reason": str(c.reason) if c.reason else None,
             "text": c.text, "shadow": c.shadow, "at": str(policy.origin(c.rule_id) or "")}
            for c in evaluation.checks
        ],
        "usd_amount": str(evaluation.usd_amount) if evaluation.usd_amount is not None else None,
    }


def explain_evaluation(policy: PolicySet, evaluation: Evaluation, terms: list[Term] | None = None) -> str:
    """Human text: outcome, the explanation paragraph, every rule's verdict with file:line, then
    the client's ``terms`` (see :func:`client_terms`) when given."""
    d = evaluation.decision
    lines = [f"Decision: {d.outcome.value.upper()}  (policy {policy.hash})", "", d.explanation, ""]
    if d.reasons:
        lines.append("Reasons:")
        for r in d.reasons:
            lines.append(f"  {r.value}: {REASON_DOCS.get(r, '')}")
        lines.append("")
    lines.append("Rules evaluated (in order):")
    for c in evaluation.checks:
        mark = {"pass": "pass", "deny": "DENY", "approval": "ASK "}[c.status]
        tag = " [shadow]" if c.shadow else ""
        where = policy.origin(c.rule_id)
        lines.append(f"  {mark}{tag} {c.rule_id}  ({where})" if where else f"  {mark}{tag} {c.rule_id}")
        lines.append(f"       {c.text}")
    if evaluation.findings:
        lines.append("")
        lines.append("Findings:")
        for f in evaluation.findings:
            lines.append(f"  {f.severity.name.lower()} {f.code.value} {f.subject}: {f.message}")
    if terms:
        lines.append("")
        lines.append("Client terms (risk limits):")
        for t in terms:
            lines.append(f"  {t.name}: {t.value}  ({t.at})")
    return "\n".join(lines)


def explain_decision(policy: PolicySet, decision: Decision) -> str:
    """Explain a recorded decision: its reasons, and each deciding rule's text and location."""
    lines = [f"Decision: {decision.outcome.value.upper()}", "", decision.explanation or "(no explanation recorded)", ""]
    if decision.policy_hash and decision.policy_hash != policy.hash:
        lines.append(f"Note: decided under policy {decision.policy_hash[:12]}, explained against {policy.short_hash};"
                     f" rule locations below are from the latter.")
        lines.append("")
    lines.append("Reasons:")
    for r in decision.reasons:
        lines.append(f"  {r.value}: {REASON_DOCS.get(r, '(undocumented)')}")
    lines.append("")
    lines.append("Deciding rules:")
    for rid in decision.rule_ids:
        info = policy.rules.get(rid)
        if info is None:
            lines.append(f"  {rid}: not in this policy version")
        else:
            desc = f" - {info.description}" if info.description else ""
            lines.append(f"  {rid} ({info.kind}, {info.origin}){desc}")
    if decision.shadow:
        lines.append("")
        lines.append("Shadow rules that objected (not enforced): " + ", ".join(decision.shadow))
    return "\n".join(lines)


PLAN_ORDER: tuple[str, ...] = ("warn", "margin_call", "halt", "liquidate", "capability")


def plan_json(policy: PolicySet, client_id: str, rungs: tuple[str, ...] = PLAN_ORDER) -> dict[str, Any]:
    """The plan for ``client_id`` per rung: each step's id, lever, mode and where it is written."""
    return {"client": client_id, "tier": policy.tier_of(client_id),
            "plan_file": policy.plan.file_id if policy.plan else None,
            "rungs": {r: [{"step": st.id, "lever": st.lever, "mode": st.mode, "at": str(st.origin)}
                          for st in policy.plan_for(client_id, r)] for r in rungs}}


def explain_plan(policy: PolicySet, client_id: str, rungs: tuple[str, ...] = PLAN_ORDER) -> str:
    """Human text: what the daemon does for ``client_id`` at each rung (lever, mode, file:line)."""
    if policy.plan is None:
        return (f"Policy {policy.short_hash} has no ladder_plan: the daemon uses its built-in plan with the "
                f"config's deprecated playbooks.modes (dry_run by default).")
    lines = [f"Ladder plan {policy.plan.file_id} for {client_id} (tier {policy.tier_of(client_id)}), "
             f"policy {policy.short_hash}:"]
    for rung in rungs:
        steps = policy.plan_for(client_id, rung)
        label = "on capability findings" if rung == "capability" else f"at {rung.replace('_', ' ')}"
        lines.append(f"  {label}: nothing planned" if not steps else f"  {label}:")
        for st in steps:
            desc = f" - {st.description}" if st.description else ""
            lines.append(f"    {st.lever:<16} {st.mode:<15} {st.id} ({st.origin}){desc}")
    return "\n".join(lines)


def decision_from_json(data: Mapping[str, Any]) -> Decision:
    """Rebuild a recorded decision (from the decision log or ``--json`` output)."""
    from primeguard.domain.decision import Outcome

    return Decision(
        Outcome(str(data["outcome"])), tuple(ReasonCode(str(r)) for r in data.get("reasons", ())),
        tuple(str(r) for r in data.get("rule_ids", ())), str(data.get("explanation", "")),
        str(data.get("policy_hash", "")), tuple(str(s) for s in data.get("shadow", ())),
        int(data.get("approvals_required", 0)),
    )
