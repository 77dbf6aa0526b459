"""The CLI-facing command functions: printable text, stable JSON, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from primeguard.policy import commands
from tests.unit.policy.helpers import ALPHA_COLD, NOW, POLICIES
from tests.unit.policy.version_stores import FileVersionStore


def _copy(tmp: Path, name: str) -> Path:
    dest = tmp / name
    shutil.copytree(POLICIES, dest)
    return dest


def test_lint_and_test_commands_on_examples() -> None:
    lint = commands.lint_command(POLICIES, now=NOW)
    assert lint.exit_code == 0 and lint.data["ok"] is True
    assert lint.text.endswith("0 error(s), 0 warning(s), 2 note(s)")
    tests = commands.run_tests_command(POLICIES)
    assert tests.exit_code == 0 and "Coverage: " in tests.text and tests.data["uncovered"] == []
    json.dumps(lint.data), json.dumps(tests.data)


def test_lint_reports_load_errors_with_file_and_line(tmp_path: Path) -> None:
    d = _copy(tmp_path, "p")
    (d / "approvals.yaml").write_text((d / "approvals.yaml").read_text().replace("required: 2", "required: two"))
    res = commands.lint_command(d, now=NOW)
    assert res.exit_code == 1
    assert res.text.startswith(f"{d}/approvals.yaml:15: error L000: rules.1.required")


def test_failing_case_is_reported_with_its_line(tmp_path: Path) -> None:
    d = _copy(tmp_path, "p")
    text = (d / "approvals_test.yaml").read_text().replace("expect: {outcome: allow}", "expect: {outcome: deny}", 1)
    (d / "approvals_test.yaml").write_text(text)
    res = commands.run_tests_command(d)
    assert res.exit_code == 1
    assert f"FAIL {d}/approvals_test.yaml:12: below $100k needs nobody: expected deny, got allow" in res.text


def test_malformed_test_file_is_reported_with_its_line(tmp_path: Path) -> None:
    d = _copy(tmp_path, "p")
    text = (d / "risk_test.yaml").read_text().replace("    risk: {client: gamma, ltv: 0.81}",
                                                      "    risk: {client: gamma, ltv: 0.81}\n    expct: {}")
    (d / "risk_test.yaml").write_text(text)
    res = commands.run_tests_command(d)
    assert res.exit_code == 1
    assert f"ERROR {d}/risk_test.yaml:20: cases.3.expct: unknown key 'expct'; did you mean 'expect'?" in res.text


def test_diff_command(tmp_path: Path) -> None:
    new = _copy(tmp_path, "new")
    (new / "withdrawals.yaml").write_text((new / "withdrawals.yaml").read_text().replace(
        "per_tx_usd: 250000", "per_tx_usd: 500000"))
    res = commands.diff_command(POLICIES, new)
    assert res.data["changes"] == [{
        "area": "limits", "subject": "new-tier-limits", "effect": "looser",
        "text": "per-transaction limit of limit new-tier-limits (tiers new) moves from $250,000 to $500,000 (looser)"}]
    assert "[looser]" in res.text


def test_explain_command_for_a_request_and_a_recorded_decision(tmp_path: Path) -> None:
    inp = tmp_path / "w.yaml"
    inp.write_text(yaml.safe_dump({"withdrawal": {
        "request": {"id": "w9", "client": "alpha", "venue": "binance", "chain": "ethereum", "asset": "USDC",
                    "amount": "250000", "destination": ALPHA_COLD, "requested_by": "bob",
                    "requested_at": NOW.isoformat()},
        "context": {"usd_price": "1", "price_age_s": 3, "ltv": "0.5", "post_ltv": "0.52", "ladder_state": "normal",
                    "venue_whitelisted": True, "post_loan_to_collateral": "0.5", "post_stress_shortfall": "0"}}}))
    res = commands.explain_command(POLICIES, inp)
    assert res.exit_code == 0 and res.data["decision"]["outcome"] == "needs_approval"
    assert "treasury-above-100k" in res.text and "approvals.yaml:" in res.text
    rec = tmp_path / "d.json"
    rec.write_text(json.dumps({"decision": res.data["decision"]}))
    again = commands.explain_command(POLICIES, rec)
    assert again.exit_code == 0 and "approval_required: More approvals are needed" in again.text
    bad = tmp_path / "bad.yaml"
    bad.write_text("withdrawal: {request: {client: alpha}}\n")
    assert commands.explain_command(POLICIES, bad).exit_code == 2


def test_propose_and_approve_commands(tmp_path: Path) -> None:
    store = FileVersionStore(tmp_path / "store")
    p = commands.propose_command(POLICIES, store, proposer="carol", role="compliance", now=NOW)
    assert p.exit_code == 0 and p.data["state"] == "proposed"
    short = p.data["hash"][:12]
    selfie = commands.approve_command(store, short, approver="carol", role="compliance", now=NOW)
    assert selfie.exit_code == 1 and "cannot approve" in selfie.text
    ok = commands.approve_command(store, short, approver="dave", role="compliance", now=NOW)
    assert ok.exit_code == 0 and ok.data["state"] == "active" and ok.data["approved_by"] == "dave"
    listing = commands.versions_command(store)
    assert listing.data["versions"][0]["state"] == "active" and short in listing.text


def test_explain_command_for_a_defi_haircut_class(tmp_path: Path) -> None:
    """Issue M: how the policy haircuts a DeFi position class, with where it is written; an
    unlisted class is not collateral (fail closed)."""
    known = tmp_path / "k.yaml"
    known.write_text("defi_position: {haircut_class: aave_v3}\n")
    res = commands.explain_command(POLICIES, known)
    assert res.exit_code == 0 and res.data["decision"]["outcome"] == "allow"
    assert "haircut 0.2 (" in res.text and "haircuts.yaml:" in res.text and "count at 0.8" in res.text
    unknown = tmp_path / "u.yaml"
    unknown.write_text("defi_position: {haircut_class: morpho_blue, client: gamma, position: gamma-morpho}\n")
    res = commands.explain_command(POLICIES, unknown)
    assert res.data["decision"]["outcome"] == "deny" and res.data["decision"]["reasons"] == ["blind_spot"]
    assert [f["code"] for f in res.data["findings"]] == ["defi_haircut_class_unknown"]
    assert "not counted as collateral" in res.text
    bad = tmp_path / "b.yaml"
    bad.write_text("defi_position: {haircut_class: 3}\n")
    assert commands.explain_command(POLICIES, bad).exit_code == 2


def test_explain_a_draw_with_the_clients_risk_terms(tmp_path: Path) -> None:
    from tests.json_schemas import check

    inp = tmp_path / "d.yaml"
    inp.write_text(yaml.safe_dump({"draw": {
        "request": {"id": "d1", "client": "gamma", "amount": "50000.01", "requested_at": NOW.isoformat()},
        "context": {"ltv": "0.33", "post_ltv": "0.5", "post_loan_to_collateral": "1.0000002",
                    "post_stress_shortfall": "0", "ladder_state": "normal"}}}))
    res = commands.explain_command(POLICIES, inp)
    assert res.exit_code == 0, res.text
    check("policy_explain", res.data)
    assert res.data["decision"]["outcome"] == "deny" and res.data["decision"]["reasons"] == ["financing_cap"]
    assert "above tier new's financing cap 1:1" in res.text
    terms = {t["name"]: t for t in res.data["terms"]}
    assert terms["tier"]["value"].startswith("new since 2026-09-01")
    assert terms["max_loan_to_collateral"]["value"] == "1:1 loan / own collateral"
    assert terms["max_stress_shortfall_usd"]["at"].rsplit(":", 1)[0].endswith("risk.yaml")
    assert terms["venue_limit binance"]["value"] == "largest share: client 0.7, book 0.5"
    # the line given is the one that sets the term
    line = int(terms["max_loan_to_collateral"]["at"].rsplit(":", 1)[1])
    text = (POLICIES / "risk.yaml").read_text().splitlines()
    assert "max_loan_to_collateral: 1" in text[line - 1]
    assert "Client terms (risk limits):" in res.text and "min_track_record_days" not in terms  # new asks for none
    std = commands.explain_command(POLICIES, _draw_for(tmp_path, "beta"))
    std_terms = {t["name"]: t["value"] for t in std.data["terms"]}
    assert std_terms["min_track_record_days"] == "30 days without a margin call to earn it"
    assert std_terms["max_track_record_drawdown"] == "0.1 worst drawdown over the record"


def _draw_for(tmp_path: Path, client: str) -> Path:
    inp = tmp_path / f"{client}.yaml"
    inp.write_text(yaml.safe_dump({"draw": {"request": {"client": client, "amount": "1",
                                                        "requested_at": NOW.isoformat()}, "context": {}}}))
    return inp
