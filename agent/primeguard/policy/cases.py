"""``policy test``: run the ``*_test.yaml`` cases beside each policy file; report rule coverage.

A test file (OPA style: every policy has its tests beside it)::

    version: 1
    kind: policy_test
    policy: allowlist-main          # id of the policy file under test (for per-file coverage)
    defaults:                       # merged under every case's request / context / accounts
      request: {client: alpha, venue: binance, chain: ethereum, asset: USDC, ...}
      context: {usd_price: 1, price_age_s: 5, ltv: 0.5, post_ltv: 0.5, ladder_state: normal, ...}
    cases:
      - name: allowlisted USDC to alpha's cold wallet is allowed
        withdrawal:
          request: {amount: 1000, destination: "0x4b28..."}
          context: {}
        expect: {outcome: allow, rules: [alpha-cold-usdc]}
      - name: a client key that can withdraw is flagged
        capabilities:
          credentials: [{id: k1, account: alpha-binance, venue: binance, kind: cex_api_key,
                         holder: client, capabilities: [read, trade_spot, withdraw], ip_restricted: true}]
        expect: {outcome: deny, findings: [key_can_withdraw]}
      - name: LTV past margin call
        risk: {client: gamma, ltv: 0.72}
        expect: {outcome: deny, findings: [ltv_margin_call]}
      - name: a DeFi position of a class the policy does not list is not collateral
        defi_position: {haircut_class: morpho}
        expect: {outcome: deny, findings: [defi_haircut_class_unknown]}
      - name: at halt gamma's vaults are paused once a person approves
        plan: {client: gamma, rung: halt}
        expect: {plan: {halt_vault: needs_approval, halt_cex: needs_approval, halt_dydx: dry_run}}

``expect``: ``outcome`` (exact; every case but a plan case), ``plan`` (a plan case: exactly the
levers planned for the client at the rung, lever -> mode), ``reasons`` (exact set), ``rules`` (each must be among the
deciding rule ids), ``shadow`` (exact set of rule ids that objected in shadow), ``findings``
(exact multiset of finding codes), ``approvals_required``, ``explanation_contains``.

Context fields left out are *unknown* (``None``) and therefore fail closed, as in production.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, StrictBool, ValidationError, model_validator

from primeguard.domain.decision import Outcome, ReasonCode
from primeguard.domain.errors import PolicyError
from primeguard.domain.findings import FindingCode
from primeguard.domain.model import Account, Capability, Credential, Holder, VenueKind
from primeguard.policy.bundle import display_name, validation_message
from primeguard.policy.engine import (
    Evaluation,
    evaluate_capabilities,
    evaluate_defi_class,
    evaluate_risk,
    evaluate_withdrawal,
)
from primeguard.policy.inputs import (
    ApprovalGiven,
    CapabilityInput,
    DrawContext,
    DrawRequest,
    RiskSnapshot,
    WithdrawalContext,
    WithdrawalRequest,
)
from primeguard.policy.policyset import PolicySet
from primeguard.policy.schema import Identifier, Strict, field_vocabulary
from primeguard.policy.yamlsrc import Source, YamlSourceError, parse

# --- test file schema --------------------------------------------------------------------------


class RequestSpec(Strict):
    id: str = "case"
    client: str
    account: str = "account"
    venue: VenueKind
    chain: str
    asset: str
    amount: Decimal  # not range-checked here: invalid amounts are a case the engine must deny
    destination: str
    requested_by: str = "requester"
    requested_at: AwareDatetime


class RecentSpec(Strict):
    at: AwareDatetime
    usd: Decimal


class ApprovalSpec(Strict):
    by: str
    role: str


class ContextSpec(Strict):
    usd_price: Decimal | None = None
    price_age_s: Decimal | None = None
    recent: tuple[RecentSpec, ...] = ()
    ltv: Decimal | None = None
    post_ltv: Decimal | None = None
    ladder_state: str | None = None
    blind: StrictBool = False
    venue_whitelisted: StrictBool | None = None
    approvals: tuple[ApprovalSpec, ...] = ()
    post_loan_to_collateral: Decimal | None = None
    post_stress_shortfall: Decimal | None = None


class DrawRequestSpec(Strict):
    id: str = "draw"
    client: str
    amount: Decimal  # not range-checked here: the engine denies invalid amounts
    requested_by: str = "requester"
    requested_at: AwareDatetime


class DrawContextSpec(Strict):
    ltv: Decimal | None = None
    post_ltv: Decimal | None = None
    post_loan_to_collateral: Decimal | None = None
    post_stress_shortfall: Decimal | None = None
    ladder_state: str | None = None
    blind: StrictBool = False


class WithdrawalCase(Strict):
    request: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)


class CredentialSpec(Strict):
    id: str
    account: str
    venue: VenueKind
    kind: str
    holder: Holder
    capabilities: tuple[Capability, ...]
    ip_restricted: StrictBool | None = None
    chain: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class AccountSpec(Strict):
    id: str
    client: str
    venue: VenueKind
    chain: str | None = None
    address: str | None = None


class CapabilitiesCase(Strict):
    credentials: tuple[CredentialSpec, ...]
    accounts: tuple[AccountSpec, ...] = ()


class RiskCase(Strict):
    client: str
    ltv: Decimal | None = None
    leverage: Decimal | None = None
    net_delta_ratio: Decimal | None = None
    drawdown: Decimal | None = None
    concentration: Decimal | None = None
    blind: StrictBool = False
    loan_to_collateral: Decimal | None = None
    gross_leverage: Decimal | None = None
    stress_shortfall: Decimal | None = None


class DefiPositionCase(Strict):
    haircut_class: Identifier
    client: str = ""
    position: str = ""


class PlanCase(Strict):
    client: Identifier
    rung: Literal["warn", "margin_call", "halt", "liquidate", "capability"]


class Expect(Strict):
    outcome: Outcome | None = None
    plan: dict[str, str] | None = None  # lever kind -> mode
    reasons: tuple[ReasonCode, ...] | None = None
    rules: tuple[str, ...] | None = None
    shadow: tuple[str, ...] | None = None
    findings: tuple[FindingCode, ...] | None = None
    approvals_required: int | None = None
    explanation_contains: tuple[str, ...] | None = None


class Case(Strict):
    name: str = Field(min_length=1)
    withdrawal: WithdrawalCase | None = None
    capabilities: CapabilitiesCase | None = None
    risk: dict[str, Any] | None = None  # a RiskCase once merged with defaults.risk
    defi_position: DefiPositionCase | None = None
    plan: PlanCase | None = None
    expect: Expect

    @model_validator(mode="after")
    def _one_subject(self) -> Case:
        subjects = (self.withdrawal, self.capabilities, self.risk, self.defi_position, self.plan)
        if sum(x is not None for x in subjects) != 1:
            raise ValueError("a case needs exactly one of withdrawal, capabilities, risk, defi_position, plan")
        if self.plan is not None and (self.expect.plan is None or self.expect.outcome is not None):
            raise ValueError("a plan case expects plan (lever -> mode), not an outcome")
        if self.plan is None and self.expect.outcome is None:
            raise ValueError("expect.outcome is required (only a plan case does without)")
        return self


class Defaults(Strict):
    request: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    accounts: tuple[AccountSpec, ...] = ()
    risk: dict[str, Any] = Field(default_factory=dict)


class PolicyTestFile(Strict):
    version: Literal[1]
    kind: Literal["policy_test"]
    policy: Identifier
    description: str = ""
    defaults: Defaults = Defaults()
    cases: tuple[Case, ...] = Field(min_length=1)


_TEST_VOCABULARY = field_vocabulary((PolicyTestFile, RequestSpec, ContextSpec))


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseResult:
    file: str
    line: int
    name: str
    ok: bool
    message: str = ""
    outcome: str = ""


@dataclass
class FileResult:
    file: str
    policy_id: str
    cases: list[CaseResult] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(c.ok for c in self.cases)


@dataclass
class PolicyTestReport:
    policy_hash: str
    files: list[FileResult]
    evaluated: Counter[str]
    fired: Counter[str]
    coverable: dict[str, str]  # rule id -> origin file
    load_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.load_error is None and bool(self.files) and all(f.ok for f in self.files)

    @property
    def uncovered(self) -> list[str]:
        return sorted(r for r in self.coverable if self.evaluated[r] == 0)

    def text(self) -> str:
        if self.load_error:
            return f"policy does not load: {self.load_error}"
        lines: list[str] = []
        for f in self.files:
            if f.error:
                lines.append(f"ERROR {f.error}")
                continue
            passed = sum(c.ok for c in f.cases)
            lines.append(f"{f.file}: {passed}/{len(f.cases)} passed")
            for c in f.cases:
                if not c.ok:
                    lines.append(f"  FAIL {c.file}:{c.line}: {c.name}: {c.message}")
        if not self.files:
            lines.append("no *_test.yaml files found")
        lines.append("")
        lines.append("Rule coverage (evaluated / fired):")
        by_file: dict[str, list[str]] = {}
        for rid, file in self.coverable.items():
            by_file.setdefault(file, []).append(rid)
        for file in sorted(by_file):
            rids = sorted(by_file[file])
            hit = sum(1 for r in rids if self.evaluated[r])
            lines.append(f"  {file}: {hit}/{len(rids)} rules exercised")
            for r in rids:
                mark = " " if self.evaluated[r] else "!"
                lines.append(f"   {mark} {r}: {self.evaluated[r]} / {self.fired[r]}")
        total = len(self.coverable)
        hit = total - len(self.uncovered)
        pct = 100 * hit / total if total else 100.0
        lines.append(f"Coverage: {hit}/{total} rules ({pct:.0f}%)" +
                     (f"; never exercised: {', '.join(self.uncovered)}" if self.uncovered else ""))
        lines.append("OK" if self.ok else "FAILED")
        return "\n".join(lines)

    def json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "policy_hash": self.policy_hash,
            "load_error": self.load_error,
            "files": [{"file": f.file, "policy": f.policy_id, "error": f.error, "cases": [
                {"name": c.name, "line": c.line, "ok": c.ok, "message": c.message, "outcome": c.outcome}
                for c in f.cases]} for f in self.files],
            "coverage": {r: {"evaluated": self.evaluated[r], "fired": self.fired[r], "file": self.coverable[r]}
                         for r in sorted(self.coverable)},
            "uncovered": self.uncovered,
        }


# --- running -----------------------------------------------------------------------------------


def failed_report(load_error: str) -> PolicyTestReport:
    """The report when the policy under test does not load: no cases run."""
    return PolicyTestReport("", [], Counter(), Counter(), {}, load_error=load_error)


def run_test_files(policy: PolicySet, tests: Mapping[str, str],
                   unreadable: Mapping[str, YamlSourceError]) -> PolicyTestReport:
    """Run test files against ``policy`` (see :func:`run_test_texts`); each file that could not be read
    (relative path -> why, in directory order) is reported after them as a failed file."""
    report = run_test_texts(policy, tests)
    for rel, exc in unreadable.items():
        name = display_name(policy.root, rel)
        line = exc.line if exc.line is not None else "?"
        report.files.append(FileResult(name, "", error=f"{name}:{line}: {exc.message}"))
    return report


def run_test_texts(policy: PolicySet, tests: Mapping[str, str]) -> PolicyTestReport:
    """Run test files given as relative path -> text against ``policy``."""
    evaluated: Counter[str] = Counter()
    fired: Counter[str] = Counter()
    coverable = {r.id: r.origin.file for r in policy.rules.values() if r.kind not in ("builtin", "file")}
    files = [_run_file(policy, display_name(policy.root, rel), text, evaluated, fired)
             for rel, text in sorted(tests.items())]
    return PolicyTestReport(policy.hash, files, evaluated, fired, coverable)


def _run_file(policy: PolicySet, name: str, text: str, evaluated: Counter[str], fired: Counter[str]) -> FileResult:
    try:
        src = parse(name, text)
    except YamlSourceError as exc:
        return FileResult(name, "", error=f"{name}:{exc.line}: {exc.message}")
    try:
        spec = PolicyTestFile.model_validate(src.data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        return FileResult(name, "", error=f"{name}:{src.line_of_loc(loc)}: "
                                          f"{validation_message(err, loc, _TEST_VOCABULARY)}")
    result = FileResult(name, spec.policy)
    entry_kind = {r.id: True for r in policy.rules.values() if r.kind == "allowlist_entry"}
    if spec.policy not in policy.file_ids:
        result.error = (f"{name}:{src.line_of(('policy',))}: policy: unknown policy file id {spec.policy!r} "
                        f"(known: {', '.join(sorted(policy.file_ids))})")
        return result
    for i, case in enumerate(spec.cases):
        line = src.line_of(("cases", i))
        if case.plan is not None:
            result.cases.append(_plan_case(policy, case, name, line, evaluated, fired))
            continue
        try:
            ev = _evaluate_case(policy, spec, case, src, i)
        except _CaseInputError as exc:
            result.cases.append(CaseResult(name, exc.line or line, case.name, False, exc.message))
            continue
        for c in ev.checks:
            evaluated[c.rule_id] += 1
            # A rule "fires" when it objects; an allowlist entry fires when it decides at all.
            if c.status in ("deny", "approval") or entry_kind.get(c.rule_id):
                fired[c.rule_id] += 1
        problems = _compare(case.expect, ev)
        result.cases.append(CaseResult(name, line, case.name, not problems, "; ".join(problems),
                                       str(ev.decision.outcome)))
    return result


def _plan_case(policy: PolicySet, case: Case, name: str, line: int, evaluated: Counter[str],
               fired: Counter[str]) -> CaseResult:
    """A plan case: the steps planned for the client at the rung must be exactly the expected levers
    and modes; each step found counts as evaluated and fired (coverage)."""
    assert case.plan is not None and case.expect.plan is not None
    steps = policy.plan_for(case.plan.client, case.plan.rung)
    for st in steps:
        evaluated[st.id] += 1
        fired[st.id] += 1
    got = {st.lever: st.mode for st in steps}
    problem = "" if got == case.expect.plan else f"expected plan {case.expect.plan}, got {got or 'nothing'}"
    if policy.plan is None:
        problem = "the policy has no ladder_plan file"
    text = ", ".join(f"{k}: {v}" for k, v in got.items()) or "nothing"
    return CaseResult(name, line, case.name, not problem, problem, text)


class _CaseInputError(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _validate(model: type[BaseModel], data: Any, src: Source, base: tuple[str | int, ...]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        raise _CaseInputError(validation_message(err, (*base, *loc), _TEST_VOCABULARY),
                              src.line_of_loc((*base, *loc))) from None


def _evaluate_case(policy: PolicySet, spec: PolicyTestFile, case: Case, src: Source, i: int) -> Evaluation:
    base: tuple[str | int, ...] = ("cases", i)
    accounts = {a.id: a for a in spec.defaults.accounts}
    if case.withdrawal is not None:
        rq: RequestSpec = _validate(RequestSpec, {**spec.defaults.request, **case.withdrawal.request}, src,
                                    (*base, "withdrawal", "request"))
        cx: ContextSpec = _validate(ContextSpec, {**spec.defaults.context, **case.withdrawal.context}, src,
                                    (*base, "withdrawal", "context"))
        req = WithdrawalRequest(rq.id, rq.client, rq.account, rq.venue, rq.chain, rq.asset, rq.amount,
                                rq.destination, rq.requested_by, rq.requested_at)
        ctx = WithdrawalContext(
            cx.usd_price, cx.price_age_s, tuple((r.at, r.usd) for r in cx.recent), cx.ltv, cx.post_ltv,
            cx.ladder_state, cx.blind, cx.venue_whitelisted, tuple(ApprovalGiven(a.by, a.role) for a in cx.approvals),
            post_loan_to_collateral=cx.post_loan_to_collateral, post_stress_shortfall=cx.post_stress_shortfall,
        )
        return evaluate_withdrawal(policy, req, ctx)
    if case.capabilities is not None:
        for a in case.capabilities.accounts:
            accounts[a.id] = a
        creds = [
            Credential(c.id, c.account, c.venue, c.kind, c.holder, frozenset(c.capabilities), c.ip_restricted,
                       chain=c.chain, details=MappingProxyType(dict(c.details)))
            for c in case.capabilities.credentials
        ]
        accts = {a.id: Account(a.id, a.client, a.venue, a.chain, a.address) for a in accounts.values()}
        return evaluate_capabilities(policy, CapabilityInput(creds, MappingProxyType(accts)))
    if case.defi_position is not None:
        d = case.defi_position
        return evaluate_defi_class(policy, d.haircut_class, client_id=d.client, position_id=d.position)
    assert case.risk is not None
    r: RiskCase = _validate(RiskCase, {**spec.defaults.risk, **case.risk}, src, (*base, "risk"))
    return evaluate_risk(policy, RiskSnapshot(r.client, r.ltv, r.leverage, r.net_delta_ratio, r.drawdown,
                                              r.concentration, r.blind, r.loan_to_collateral, r.gross_leverage,
                                              r.stress_shortfall))


def _compare(expect: Expect, ev: Evaluation) -> list[str]:
    d = ev.decision
    problems: list[str] = []
    if expect.outcome is not None and d.outcome is not expect.outcome:
        problems.append(f"expected {expect.outcome.value}, got {d.outcome.value} ({', '.join(d.reasons)})")
    if expect.reasons is not None and set(expect.reasons) != set(d.reasons):
        problems.append(f"expected reasons {sorted(expect.reasons)}, got {sorted(d.reasons)}")
    if expect.rules is not None:
        missing = [r for r in expect.rules if r not in d.rule_ids]
        if missing:
            problems.append(f"expected deciding rules {missing} among {list(d.rule_ids)}")
    if expect.shadow is not None:
        got = {s.split(":", 1)[0] for s in d.shadow}
        if set(expect.shadow) != got:
            problems.append(f"expected shadow objections from {sorted(expect.shadow)}, got {sorted(got)}")
    if expect.findings is not None:
        want = Counter(str(f) for f in expect.findings)
        got_f = Counter(str(f.code) for f in ev.findings)
        if want != got_f:
            problems.append(f"expected findings {sorted(want.elements())}, got {sorted(got_f.elements())}")
    if expect.approvals_required is not None and d.approvals_required != expect.approvals_required:
        problems.append(f"expected approvals_required {expect.approvals_required}, got {d.approvals_required}")
    for text in expect.explanation_contains or ():
        if text not in d.explanation:
            problems.append(f"explanation lacks {text!r}: {d.explanation}")
    return problems


def build_case_inputs(data: Mapping[str, Any]) -> tuple[WithdrawalRequest, WithdrawalContext]:
    """A withdrawal ``{request: ..., context: ...}`` mapping (as in test cases) as engine inputs.

    Used by ``policy explain`` to read a request from a file.

    Raises:
        PolicyError: a field is missing or malformed.
    """
    src = Source("<input>", "", data, {})
    try:
        rq: RequestSpec = _validate(RequestSpec, data.get("request", {}), src, ("request",))
        cx: ContextSpec = _validate(ContextSpec, data.get("context", {}), src, ("context",))
    except _CaseInputError as exc:
        raise PolicyError(f"invalid withdrawal input: {exc.message}") from None
    req = WithdrawalRequest(rq.id, rq.client, rq.account, rq.venue, rq.chain, rq.asset, rq.amount, rq.destination,
                            rq.requested_by, rq.requested_at)
    ctx = WithdrawalContext(cx.usd_price, cx.price_age_s, tuple((r.at, r.usd) for r in cx.recent), cx.ltv,
                            cx.post_ltv, cx.ladder_state, cx.blind, cx.venue_whitelisted,
                            tuple(ApprovalGiven(a.by, a.role) for a in cx.approvals),
                            post_loan_to_collateral=cx.post_loan_to_collateral,
                            post_stress_shortfall=cx.post_stress_shortfall)
    return req, ctx


def build_draw_inputs(data: Mapping[str, Any]) -> tuple[DrawRequest, DrawContext]:
    """A loan draw ``{request: ..., context: ...}`` mapping as engine inputs (``policy explain``).

    Raises:
        PolicyError: a field is missing or malformed.
    """
    src = Source("<input>", "", data, {})
    try:
        rq: DrawRequestSpec = _validate(DrawRequestSpec, data.get("request", {}), src, ("request",))
        cx: DrawContextSpec = _validate(DrawContextSpec, data.get("context", {}), src, ("context",))
    except _CaseInputError as exc:
        raise PolicyError(f"invalid draw input: {exc.message}") from None
    return (DrawRequest(rq.id, rq.client, rq.amount, rq.requested_by, rq.requested_at),
            DrawContext(cx.ltv, cx.post_ltv, cx.post_loan_to_collateral, cx.post_stress_shortfall, cx.ladder_state,
                        cx.blind))


__all__ = ["CaseResult", "FileResult", "PolicyTestReport", "build_case_inputs", "build_draw_inputs", "failed_report",
           "run_test_files", "run_test_texts"]
