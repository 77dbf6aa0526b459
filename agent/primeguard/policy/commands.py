"""The logic behind ``primeguard policy lint|test|diff|explain|propose|approve|versions``.

Each function returns a :class:`CommandResult`: text for people, a JSON-ready dict with a stable
shape for ``--json``, and an exit code (0 ok, 1 policy problem found, 2 could not run). The typer
CLI only parses arguments and prints. Files are read through :mod:`primeguard.policy.loader` first;
everything after that works on data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from primeguard.domain.errors import PolicyError, PolicyLoadError
from primeguard.policy.cases import build_case_inputs, build_draw_inputs
from primeguard.policy.diff import diff, diff_text
from primeguard.policy.engine import evaluate_defi_class, evaluate_draw, evaluate_withdrawal
from primeguard.policy.explain import (
    PLAN_ORDER,
    client_terms,
    decision_from_json,
    evaluation_json,
    explain_decision,
    explain_evaluation,
    explain_plan,
    plan_json,
)
from primeguard.policy.loader import PolicyLoadErrors, lint_dir, load, read_input_text, read_policy_dir, run_tests
from primeguard.policy.policyset import PolicySet
from primeguard.policy.versions import VersionStore, approve, propose
from primeguard.policy.yamlsrc import YamlSourceError, parse


@dataclass(frozen=True, slots=True)
class CommandResult:
    text: str
    data: dict[str, Any]
    exit_code: int = 0


def _load_error(exc: PolicyLoadError) -> CommandResult:
    errors = exc.errors if isinstance(exc, PolicyLoadErrors) else [exc]
    return CommandResult("\n".join(str(e) for e in errors),
                         {"ok": False, "errors": [{"file": e.file, "line": e.line, "message": e.reason}
                                                  for e in errors]}, 1)


def lint_command(policy_dir: str | PurePath, *, now: datetime | None = None) -> CommandResult:
    """``policy lint DIR``: file:line errors, warnings and infos; exit 1 when there are errors."""
    try:
        issues = lint_dir(policy_dir, now=now)
    except PolicyLoadError as exc:
        return _load_error(exc)
    errors = sum(1 for i in issues if i.severity == "error")
    warnings = sum(1 for i in issues if i.severity == "warning")
    lines = [str(i) for i in issues]
    lines.append(f"{errors} error(s), {warnings} warning(s), {len(issues) - errors - warnings} note(s)")
    return CommandResult("\n".join(lines), {"ok": errors == 0, "issues": [i.json() for i in issues]},
                         1 if errors else 0)


def run_tests_command(policy_dir: str | PurePath) -> CommandResult:
    """``policy test DIR``: run every ``*_test.yaml``; print results and rule coverage."""
    report = run_tests(policy_dir)
    return CommandResult(report.text(), report.json(), 0 if report.ok else 1)


def diff_command(old_dir: str | PurePath, new_dir: str | PurePath) -> CommandResult:
    """``policy diff OLD NEW``: what changes in effect, in words."""
    try:
        old, new = load(old_dir), load(new_dir)
    except PolicyLoadError as exc:
        return _load_error(exc)
    changes = diff(old, new)
    return CommandResult(diff_text(old, new, changes),
                         {"old": old.hash, "new": new.hash, "changes": [c.json() for c in changes]})


def explain_command(policy_dir: str | PurePath, input_path: str | PurePath) -> CommandResult:
    """``policy explain DIR INPUT``: why a decision comes out as it does.

    ``INPUT`` (YAML or JSON) holds ``withdrawal: {request, context}`` or ``draw: {request, context}``
    (a new loan draw), evaluated now with the full rule trace and the client's risk terms (tier,
    financing and stress caps, track record, venue limits, volatility haircuts, each with file:line),
    ``decision: {...}`` (a recorded decision, explained against DIR),
    ``defi_position: {haircut_class: NAME}`` (how DIR haircuts DeFi positions of that class) or
    ``plan: {client, rung?}`` (the ladder plan's levers and modes for that client, one rung or all).
    """
    try:
        policy = load(policy_dir)
    except PolicyLoadError as exc:
        return _load_error(exc)
    path = PurePath(input_path)
    try:
        text = read_input_text(path)  # size-capped, UTF-8 only (JSON too)
        data = json.loads(text) if path.suffix == ".json" else parse(str(path), text).data
    except (OSError, ValueError, YamlSourceError) as exc:
        return CommandResult(f"{path}: cannot read input: {exc}", {"ok": False, "error": str(exc)}, 2)
    if not isinstance(data, dict) or not ({"withdrawal", "draw", "decision", "defi_position", "plan"} & set(data)):
        return CommandResult(f"{path}: expected a mapping with 'withdrawal', 'draw', 'decision', 'defi_position' or "
                             "'plan'",
                             {"ok": False, "error": "bad input"}, 2)
    if "plan" in data:
        return _explain_plan(policy, data["plan"], path)
    if "defi_position" in data:
        pos = data["defi_position"]
        if not isinstance(pos, dict) or not isinstance(pos.get("haircut_class"), str):
            return CommandResult(f"{path}: defi_position needs a haircut_class (a string)",
                                 {"ok": False, "error": "bad input"}, 2)
        ev = evaluate_defi_class(policy, pos["haircut_class"], client_id=str(pos.get("client", "")),
                                 position_id=str(pos.get("position", "")))
        return CommandResult(explain_evaluation(policy, ev), {"ok": True, **evaluation_json(policy, ev)})
    try:
        if "decision" in data:
            decision = decision_from_json(data["decision"])
            return CommandResult(explain_decision(policy, decision),
                                 {"ok": True, "policy_hash": policy.hash, "decision": data["decision"],
                                  "rules": {r: str(policy.origin(r) or "") for r in decision.rule_ids}})
        if "draw" in data:
            dreq, dctx = build_draw_inputs(data["draw"])
            ev, client = evaluate_draw(policy, dreq, dctx), dreq.client_id
        else:
            req, ctx = build_case_inputs(data["withdrawal"])
            ev, client = evaluate_withdrawal(policy, req, ctx), req.client_id
    except (PolicyError, KeyError, ValueError, TypeError) as exc:
        return CommandResult(f"{path}: {exc}", {"ok": False, "error": str(exc)}, 2)
    terms = client_terms(policy, client)
    return CommandResult(explain_evaluation(policy, ev, terms),
                         {"ok": True, **evaluation_json(policy, ev), "terms": [t.to_json_dict() for t in terms]})


def _explain_plan(policy: PolicySet, spec: Any, path: PurePath) -> CommandResult:
    rungs = PLAN_ORDER
    if not isinstance(spec, dict) or not isinstance(spec.get("client"), str) or set(spec) - {"client", "rung"}:
        return CommandResult(f"{path}: plan: expected {{client: ID, rung: RUNG}} (rung optional)",
                             {"ok": False, "error": "bad input"}, 2)
    if "rung" in spec:
        if spec["rung"] not in PLAN_ORDER:
            return CommandResult(f"{path}: plan.rung: {spec['rung']!r} is not one of {', '.join(PLAN_ORDER)}",
                                 {"ok": False, "error": "bad input"}, 2)
        rungs = (spec["rung"],)
    return CommandResult(explain_plan(policy, spec["client"], rungs),
                         {"ok": True, "policy_hash": policy.hash, "plan": plan_json(policy, spec["client"], rungs)})


def propose_command(policy_dir: str | PurePath, store: VersionStore, *, proposer: str, role: str,
                    note: str = "", now: datetime | None = None) -> CommandResult:
    """``policy propose DIR``: validate, lint and record the directory as a proposed version in ``store``."""
    now = now or datetime.now(UTC)
    try:
        version = propose(store, read_policy_dir(policy_dir), proposer=proposer, role=role, now=now, note=note)
    except PolicyLoadError as exc:
        return _load_error(exc)
    except PolicyError as exc:
        return CommandResult(str(exc), {"ok": False, "error": str(exc)}, 1)
    return CommandResult(
        f"Proposed policy version {version.hash} by {version.proposed_by} ({version.state.value}); "
        f"a different compliance user must approve it: primeguard policy approve {version.hash[:12]}",
        {"ok": True, **version.meta()},
    )


def approve_command(store: VersionStore, ref: str, *, approver: str, role: str,
                    now: datetime | None = None) -> CommandResult:
    """``policy approve HASH``: four-eyes activation of a proposed version in ``store``."""
    now = now or datetime.now(UTC)
    try:
        version = approve(store, ref, approver=approver, role=role, now=now)
    except PolicyLoadError as exc:
        return _load_error(exc)
    except PolicyError as exc:
        return CommandResult(str(exc), {"ok": False, "error": str(exc)}, 1)
    return CommandResult(
        f"Policy version {version.hash} is active (proposed by {version.proposed_by}, approved by "
        f"{version.approved_by}).", {"ok": True, **version.meta()},
    )


def versions_command(store: VersionStore) -> CommandResult:
    """``policy versions``: every version in ``store`` with its state."""
    try:
        versions = store.all()
    except PolicyError as exc:
        return CommandResult(str(exc), {"ok": False, "error": str(exc)}, 2)
    lines = [f"{v.hash[:12]}  {v.state.value:<10}  proposed by {v.proposed_by} {v.proposed_at.isoformat()}"
             + (f", approved by {v.approved_by}" if v.approved_by else "") + (f"  {v.note}" if v.note else "")
             for v in versions] or ["no policy versions"]
    return CommandResult("\n".join(lines), {"versions": [v.meta() for v in versions]})


__all__ = [
    "CommandResult",
    "approve_command",
    "diff_command",
    "explain_command",
    "lint_command",
    "propose_command",
    "run_tests_command",
    "versions_command",
]
