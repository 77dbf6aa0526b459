"""``policy lint``: load errors plus the problems a valid-looking policy can still have.

Each issue has a stable code, a severity and a ``file:line``. Errors block ``policy propose``;
warnings are for review; infos list what is in shadow mode.

Codes:
  L000 the file does not load (syntax, schema, unknown reference, bad checksum, duplicate id)
  L101 allowlist entry expired                       L102 entry can never be active
  L103 entry expires within 14 days                  L104 EVM address written without checksum
  L105 entry for an asset the policy does not know   L106 allowlist not used by withdrawal_limits
  L201 ladder warn band at/below the fully drawn LTV L202 liquidate band at or above LTV 1
  L203 hysteresis as wide as a gap between bands     L204 tier nobody is in
  L205 more financing with a shorter track record    L206 low-liquidity asset with a small haircut
  L207 haircuts file not used
  L301 per-tx limit above the same rule's velocity   L302 limit rule that matches no allowlist entry
  L303 velocity limit shadowed by a stricter one     L304 withdrawals allowed in margin call or worse
  L305 fixed LTV cap above a tier's halt band
  L401 approval rule that can never fire             L402 fewer named approvers than required
  L403 viewers may approve
  L501 capability rule that can never fire
  L601 rule in shadow mode                           L602 no withdrawal_limits: all withdrawals denied
  L701 policy file without a *_test.yaml beside it
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any, Literal

from primeguard.domain.model import Capability, VenueKind
from primeguard.policy.bundle import check_bundle, display_name
from primeguard.policy.policyset import AllowEntry, LimitRuleC, Origin, PolicySet
from primeguard.policy.schema import LEVER_KINDS, HaircutsFile, WithdrawalLimitsFile

LintSeverity = Literal["error", "warning", "info"]
_EVM_ONLY_KINDS = frozenset({"erc20_approval", "safe_owners", "safe_module", "evm_eoa"})
_KIND_OF_CHECK = {"unlimited_approvals_only_to_known_spenders": "erc20_approval",
                  "safe_min_threshold": "safe_owners", "safe_allowed_modules": "safe_module"}


@dataclass(frozen=True, slots=True)
class LintIssue:
    severity: LintSeverity
    code: str
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line if self.line is not None else '?'}: {self.severity} {self.code}: {self.message}"

    def json(self) -> dict[str, Any]:
        return {"severity": self.severity, "code": self.code, "file": self.file, "line": self.line,
                "message": self.message}


def lint_bundle(files: Mapping[str, str], test_files: Collection[str], *, root: str = "",
                now: datetime | None = None) -> list[LintIssue]:
    """Lint a policy bundle and note each policy file without a test beside it (L701).

    Args:
        files: policy files, relative path -> text (see :func:`primeguard.policy.loader.read_policy_dir`).
        test_files: relative paths of the ``*_test.yaml`` / ``*_test.yml`` files that exist.
        root: the directory's name, prefixed to file names in issues.
    """
    present = set(test_files)
    issues = lint_files(files, root=root, now=now)
    for rel in sorted(files):
        stem = rel.rsplit(".", 1)[0]
        if not any(f"{stem}_test{ext}" in present for ext in (".yaml", ".yml")):
            issues.append(LintIssue("warning", "L701", display_name(root, rel), 1,
                                    f"no {PurePosixPath(stem).name}_test.yaml beside this policy file"))
    return _sorted(issues)


def lint_files(files: Mapping[str, str], *, root: str = "", now: datetime | None = None) -> list[LintIssue]:
    policy, errors = check_bundle(files, root=root)
    if policy is None:
        return [LintIssue("error", "L000", e.file, e.line, e.reason) for e in errors]
    return lint_policy(policy, now=now)


def lint_policy(policy: PolicySet, *, now: datetime | None = None) -> list[LintIssue]:
    """Semantic checks on a policy that loads."""
    now = now or datetime.now(UTC)
    out: list[LintIssue] = []

    def issue(sev: LintSeverity, code: str, origin: Origin | None, message: str) -> None:
        out.append(LintIssue(sev, code, origin.file if origin else "<policy>", origin.line if origin else None,
                             message))

    def at(file_id: str, *path: str | int) -> Origin:
        rel = policy.file_ids[file_id]
        return Origin(display_name(policy.root, rel), policy.sources[rel].line_of(tuple(path)))

    _lint_allowlists(policy, now, issue, at)
    _lint_risk(policy, issue, at)
    _lint_limits(policy, issue)
    _lint_approvals(policy, issue)
    _lint_capabilities(policy, issue)
    _lint_plan(policy, issue, at)
    for info in policy.rules.values():
        if info.shadow:
            issue("info", "L601", info.origin, f"{info.kind} rule {info.id} is in shadow mode: evaluated and logged, "
                                               f"not enforced")
    if policy.guards is None:
        issue("warning", "L602", None, "no withdrawal_limits file: every withdrawal is denied (policy_missing)")
    return _sorted(out)


def _lint_plan(policy: PolicySet, issue: Any, at: Any) -> None:
    """L801 unknown lever kind; L802 halt or liquidate plans nothing; L803 a fund-moving lever runs
    without a person. (No ladder_plan at all: ``policy explain`` says the built-in plan applies.)"""
    if policy.plan is None:
        return
    for st in policy.plan.steps:
        if st.lever not in LEVER_KINDS:
            issue("warning", "L801", st.origin, f"plan step {st.id}: no lever of kind {st.lever!r} exists "
                                                f"(known: {', '.join(LEVER_KINDS)}); the daemon skips it")
        if st.mode == "automatic" and st.lever.startswith("liquidate"):
            issue("info", "L803", st.origin, f"plan step {st.id}: {st.lever} closes positions and sells collateral "
                                             f"automatically, with no person in the loop")
    for rung in ("halt", "liquidate"):
        if not any(st.rung == rung for st in policy.plan.steps):
            issue("warning", "L802", at(policy.plan.file_id, "id"), f"the plan does nothing at {rung}: a client "
                                                                    f"there is only alerted")


def _sorted(issues: list[LintIssue]) -> list[LintIssue]:
    rank = {"error": 0, "warning": 1, "info": 2}
    return sorted(issues, key=lambda i: (i.file, i.line or 0, rank[i.severity], i.code))


def _lint_allowlists(policy: PolicySet, now: datetime, issue: Any, at: Any) -> None:
    used: set[str] = set()
    if policy.guards is not None:
        limits = policy.models[policy.guards.file_id]
        assert isinstance(limits, WithdrawalLimitsFile)
        used = set(limits.allowlists)
    for fid, kind in policy.kinds.items():
        if kind == "withdrawal_allowlist" and fid not in used:
            issue("warning", "L106", at(fid, "id"), f"allowlist {fid} is not listed in withdrawal_limits.allowlists: "
                                                    f"its entries can never allow anything")
    seen: set[str] = set()
    for e in policy.entries:
        if e.id in seen:
            continue  # an entry with several assets is compiled once per asset; report it once
        seen.add(e.id)
        if e.expires_at <= e.active_from:
            issue("error", "L102", e.origin, f"entry {e.id} can never be active: it expires "
                  f"({e.expires_at.isoformat()}) before its timelock ends ({e.active_from.isoformat()})")
        elif e.expires_at <= now:
            issue("warning", "L101", e.origin, f"entry {e.id} ({e.label}) expired at {e.expires_at.isoformat()}: "
                  f"remove or renew it")
        elif e.expires_at <= now + timedelta(days=14):
            issue("info", "L103", e.origin, f"entry {e.id} expires soon ({e.expires_at.isoformat()})")
        body = e.written[2:] if e.written.lower().startswith("0x") else ""
        if body and body in (body.lower(), body.upper()) and any(c.isalpha() for c in body):
            issue("warning", "L104", e.origin, f"entry {e.id}: address {e.written} has no EIP-55 checksum; "
                  f"write {e.address}")
    for e in policy.entries:
        if e.asset not in policy.known_assets:
            issue("warning", "L105", e.origin, f"entry {e.id}: asset {e.asset} has no haircut entry, so withdrawals "
                  f"of it are always denied (asset_unknown): the entry can never fire")


def _lint_risk(policy: PolicySet, issue: Any, at: Any) -> None:
    risk = policy.risk
    tiers = list(risk.tiers)
    used_tiers = set(policy.client_tiers.values()) | {risk.default_tier}
    for i, t in enumerate(tiers):
        lad = t.ladder
        r = t.max_loan_to_collateral
        drawn = r / (1 + r)
        if lad.warn <= drawn:
            issue("error", "L201", at(risk.id, "tiers", i, "ladder"),
                  f"tier {t.id}: warn band {lad.warn} is at or below the LTV of a fully drawn {r}:1 loan "
                  f"({drawn:.4f}); every client at full financing would start in warning or worse")
        if lad.liquidate >= 1:
            issue("warning", "L202", at(risk.id, "tiers", i, "ladder"),
                  f"tier {t.id}: liquidate band {lad.liquidate} is at or above LTV 1: the loan is already "
                  f"under-collateralised before liquidation starts")
        gaps = [lad.margin_call - lad.warn, lad.halt - lad.margin_call, lad.liquidate - lad.halt]
        if lad.hysteresis >= min(gaps):
            issue("warning", "L203", at(risk.id, "tiers", i, "ladder"),
                  f"tier {t.id}: hysteresis {lad.hysteresis} is as wide as the narrowest gap between bands "
                  f"({min(gaps)}): a client could not step down one band without leaving two")
        if t.id not in used_tiers:
            issue("info", "L204", at(risk.id, "tiers", i), f"tier {t.id} has no clients and is not the default tier")
    for a in tiers:
        for b in tiers:
            more = a.max_loan_to_collateral > b.max_loan_to_collateral
            if more and a.min_track_record_days < b.min_track_record_days:
                issue("warning", "L205", at(risk.id, "tiers", tiers.index(a)),
                      f"tier {a.id} finances more ({a.max_loan_to_collateral}:1) than tier {b.id} "
                      f"({b.max_loan_to_collateral}:1) with a shorter track record ({a.min_track_record_days} < "
                      f"{b.min_track_record_days} days)")
    hair = policy.models[risk.haircuts]
    assert isinstance(hair, HaircutsFile)
    for i, h in enumerate(hair.assets):
        if h.low_liquidity and h.haircut < hair.default:
            issue("warning", "L206", at(risk.haircuts, "assets", i),
                  f"low-liquidity asset {h.asset} has a haircut ({h.haircut}) below the default for unknown "
                  f"assets ({hair.default})")
    for fid, kind in policy.kinds.items():
        if kind == "haircuts" and fid != risk.haircuts:
            issue("warning", "L207", at(fid, "id"), f"haircuts file {fid} is not the one risk_limits uses "
                                                    f"({risk.haircuts}): it has no effect")


def _entry_scopes(policy: PolicySet) -> list[tuple[AllowEntry, str]]:
    return [(e, policy.tier_of(e.client)) for e in policy.entries]


def _matches(rule_scope: Any, e: AllowEntry, tier: str) -> bool:
    matched: bool = rule_scope.matches(e.client, tier, e.venue, e.chain, e.asset)
    return matched


def _lint_limits(policy: PolicySet, issue: Any) -> None:
    g = policy.guards
    if g is None:
        return
    scoped = _entry_scopes(policy)
    for rule in policy.limits:
        if (rule.per_tx_usd is not None and rule.velocity_max_usd is not None
                and rule.per_tx_usd > rule.velocity_max_usd):
            issue("warning", "L301", rule.origin, f"limit {rule.id}: per-transaction limit ${rule.per_tx_usd:,} is "
                  f"above its velocity limit ${rule.velocity_max_usd:,}: the velocity limit always decides first")
        if not any(_matches(rule.scope, e, t) for e, t in scoped):
            issue("warning", "L302", rule.origin, f"limit {rule.id} ({rule.scope.describe()}) matches no allowlist "
                  f"entry: withdrawals it covers are already denied, it can never fire")
        for other in policy.limits:
            if other is rule or other.scope != rule.scope or other.shadow or rule.shadow:
                continue
            if _velocity_shadowed(rule, other):
                issue("warning", "L303", rule.origin, f"limit {rule.id}: its velocity limit (${rule.velocity_max_usd:,}"
                      f" per {rule.window_s}s) can never fire: {other.id} allows less (${other.velocity_max_usd:,}) "
                      f"over a window at least as long ({other.window_s}s)")
    risky = g.allow_states & {"margin_call", "halt", "liquidate"}
    if risky:
        issue("warning", "L304", policy.origin(g.ladder_id), f"ladder guard {g.ladder_id} allows withdrawals in "
              f"{', '.join(sorted(risky))}: collateral could leave a client that is already under-collateralised")
    if isinstance(g.ltv_max, Decimal):
        for t in policy.tiers.values():
            if g.ltv_max >= t.ladder.halt:
                issue("warning", "L305", policy.origin(g.ltv_id), f"LTV guard {g.ltv_id}: cap {g.ltv_max} is at or "
                      f"above tier {t.id}'s halt band {t.ladder.halt}")


def _velocity_shadowed(rule: LimitRuleC, other: LimitRuleC) -> bool:
    if None in (rule.window_s, rule.velocity_max_usd, other.window_s, other.velocity_max_usd):
        return False
    assert rule.window_s is not None and other.window_s is not None
    assert rule.velocity_max_usd is not None and other.velocity_max_usd is not None
    if rule.window_s == other.window_s and rule.velocity_max_usd == other.velocity_max_usd:
        return rule.id > other.id  # identical twins: report one of them
    return other.window_s >= rule.window_s and other.velocity_max_usd <= rule.velocity_max_usd


def _lint_approvals(policy: PolicySet, issue: Any) -> None:
    scoped = _entry_scopes(policy)
    for rule in policy.approval_rules:
        if rule.approvers is not None and len(rule.approvers) < rule.required:
            issue("error", "L402", rule.origin, f"approval rule {rule.id} needs {rule.required} approvers but names "
                  f"only {len(rule.approvers)}: withdrawals above ${rule.above_usd:,} could never be released")
        if "viewer" in rule.roles:
            issue("warning", "L403", rule.origin, f"approval rule {rule.id} lets viewers approve withdrawals")
        reachable = False
        for e, tier in scoped:
            if not _matches(rule.scope, e, tier):
                continue
            caps = [r.per_tx_usd for r in policy.limits
                    if not r.shadow and r.per_tx_usd is not None and _matches(r.scope, e, tier)]
            if not caps or min(caps) > rule.above_usd:
                reachable = True
                break
        if not reachable:
            issue("warning", "L401", rule.origin, f"approval rule {rule.id} (above ${rule.above_usd:,}) can never "
                  f"fire: every allowlisted withdrawal in its scope is capped at or below that amount per transaction")


def _lint_capabilities(policy: PolicySet, issue: Any) -> None:
    for rule in policy.capability_rules:
        spec = rule.spec
        a = spec.applies_to
        kinds = set(a.kinds or ())
        if kinds and kinds <= _EVM_ONLY_KINDS and a.venues is not None and VenueKind.EVM not in a.venues:
            issue("warning", "L501", rule.origin, f"capability rule {spec.id}: kinds {', '.join(sorted(kinds))} only "
                  f"exist on evm, but applies_to.venues excludes evm: it can never fire")
            continue
        needed = _KIND_OF_CHECK.get(spec.check)
        if needed is not None and a.kinds is not None and needed not in a.kinds:
            issue("warning", "L501", rule.origin, f"capability rule {spec.id}: {spec.check} only inspects "
                  f"{needed} credentials, which applies_to.kinds excludes: it can never fire")
        if spec.check == "allow_only" and not rule.forbidden - {Capability.UNKNOWN}:
            issue("warning", "L501", rule.origin, f"capability rule {spec.id}: allow_only lists every capability: "
                  f"it can only fire on unanalysable credentials")


__all__ = ["LintIssue", "lint_bundle", "lint_files", "lint_policy"]
