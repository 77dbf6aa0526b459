"""The contingency plan is policy (``kind: ladder_plan``): compiled with file:line origins, checked
for integrity, linted, diffed, explained, covered by plan cases; the daemon reads its modes from it
and fails closed without a policy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from primeguard.daemon.guardian import LADDER_ACTIONS, Planned, planned
from primeguard.domain.errors import PolicyLoadError
from primeguard.policy import commands, diff, load_bundle
from primeguard.policy.cases import run_test_texts
from primeguard.policy.lint import lint_policy
from primeguard.policy.loader import load
from tests.json_schemas import check
from tests.unit.policy.helpers import POLICIES, small_docs, to_files


def plan_doc() -> dict[str, Any]:
    return {"version": 1, "kind": "ladder_plan", "id": "plan", "rungs": {
        "margin_call": [{"id": "p-mc", "lever": "margin_call", "mode": "automatic"}],
        "halt": [{"id": "p-vault", "lever": "halt_vault", "mode": "needs_approval"},
                 {"id": "p-cex-pro", "lever": "halt_cex", "mode": "automatic", "tiers": ["pro"]}],
        "liquidate": [{"id": "p-liq", "lever": "liquidate_cex", "mode": "shadow"}]},
        "capability": [{"id": "p-revoke", "lever": "revoke_approval", "mode": "needs_approval"}]}


def _load(edit: Any = None):
    docs = small_docs()
    docs["plan.yaml"] = plan_doc()
    if edit is not None:
        edit(docs)
    return load_bundle(to_files(docs))


def test_shipped_plan_is_what_the_daemon_did_before_it_was_policy() -> None:
    """The built-in ladder actions with the example deployment's former config modes (dry_run otherwise)."""
    policy = load(POLICIES)
    former = {"margin_call": "automatic", "halt_vault": "needs_approval", "halt_cex": "needs_approval"}
    for state, kinds in LADDER_ACTIONS.items():
        got = [(s.lever, s.mode) for s in policy.plan_for("gamma", state.label)]
        assert got == [(k, former.get(k, "dry_run")) for k in kinds], state
    capability = [(s.lever, s.mode) for s in policy.plan_for("gamma", "capability")]
    assert capability == [("revoke_approval", "needs_approval"), ("revoke_grant", "needs_approval")]
    rule = policy.rules["halt-cex"]
    assert rule.kind == "plan_step" and str(rule.origin).endswith("plan.yaml:17")


def test_steps_are_scoped_by_tier_and_client() -> None:
    policy = _load()
    assert [s.id for s in policy.plan_for("alpha", "halt")] == ["p-vault", "p-cex-pro"]  # alpha is pro
    assert [s.id for s in policy.plan_for("gamma", "halt")] == ["p-vault"]
    assert policy.plan_for("gamma", "warn") == ()
    assert policy.rules["p-liq"].shadow


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["plan.yaml"]["rungs"]["halt"].append({"id": "p-x", "lever": "halt_vault", "mode": "automatic"}),
     r"plan\.yaml:\d+: rungs\.halt\.2\.lever: lever 'halt_vault' is already planned at halt"),
    (lambda d: d["plan.yaml"]["rungs"]["halt"][1].update(tiers=["gold"]), "unknown tier 'gold'"),
    (lambda d: d["plan.yaml"]["rungs"]["halt"][0].update(clients=["zeta"]), "unknown client 'zeta'"),
    (lambda d: d["plan.yaml"]["rungs"]["halt"][0].update(id="l-all"), "rule id 'l-all' is already used"),
    (lambda d: d["plan.yaml"]["rungs"]["halt"][0].update(mode="sometimes"),
     r"plan\.yaml:\d+: rungs\.halt\.0\.mode: Input should be 'dry_run'"),
    (lambda d: d["plan.yaml"]["rungs"].update(normal=[]), "rungs.normal"),
    (lambda d: d.update({"plan2.yaml": {**plan_doc(), "id": "plan2", "rungs": {}, "capability": []}}),
     "a second ladder_plan file"),
])
def test_integrity_errors_name_file_and_line(edit: Any, message: str) -> None:
    with pytest.raises(PolicyLoadError) as exc:
        _load(edit)
    assert re.search(message, str(exc.value)), str(exc.value)


def test_lint_unknown_lever_empty_rung_and_automatic_liquidation() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["plan.yaml"]["rungs"]["halt"] = [{"id": "p-x", "lever": "halt_mystery", "mode": "dry_run"}]
        d["plan.yaml"]["rungs"]["liquidate"] = [{"id": "p-liq", "lever": "liquidate_cex", "mode": "automatic"}]
    issues = {i.code: i for i in lint_policy(_load(edit))}
    assert "halt_mystery" in issues["L801"].message and issues["L801"].file.endswith("plan.yaml")
    assert issues["L803"].line is not None and "p-liq" in issues["L803"].message
    codes = {i.code for i in lint_policy(_load(lambda d: d["plan.yaml"]["rungs"].pop("liquidate")))}
    assert "L802" in codes
    assert not {"L801", "L802", "L803"} & {i.code for i in lint_policy(load(POLICIES))}


def test_diff_says_which_lever_now_acts_more_or_less_on_its_own() -> None:
    old = _load()

    def edit(d: dict[str, Any]) -> None:
        halt = d["plan.yaml"]["rungs"]["halt"]
        halt[0]["mode"] = "automatic"
        halt.pop(1)
        d["plan.yaml"]["rungs"]["liquidate"].append({"id": "p-new", "lever": "halt_cex", "mode": "automatic"})
    changes = {c.subject: c for c in diff(old, _load(edit)) if c.area == "plan"}
    vault = changes["p-vault"]
    assert vault.effect == "stricter" and "now runs automatic (was needs_approval)" in vault.text
    assert changes["p-cex-pro"].effect == "looser" and "removed" in changes["p-cex-pro"].text
    assert changes["p-new"].effect == "stricter"
    assert diff(old, _load()) == []


def test_explain_shows_the_plan_with_origins(tmp_path: Path) -> None:
    (tmp_path / "in.yaml").write_text("plan: {client: alpha, rung: halt}\n")
    out = commands.explain_command(POLICIES, tmp_path / "in.yaml")
    assert out.exit_code == 0
    assert "halt_cex         needs_approval  halt-cex (" in out.text and "plan.yaml:17)" in out.text
    check("policy_explain", out.data)
    assert [s["lever"] for s in out.data["plan"]["rungs"]["halt"]] == ["halt_vault", "halt_cex", "halt_dydx"]
    (tmp_path / "bad.yaml").write_text("plan: {client: alpha, rung: panic}\n")
    bad = commands.explain_command(POLICIES, tmp_path / "bad.yaml")
    assert bad.exit_code == 2 and "panic" in bad.text


def test_plan_cases_pass_fail_and_cover_steps() -> None:
    policy = _load()
    cases = {"plan_test.yaml": yaml.safe_dump({"version": 1, "kind": "policy_test", "policy": "plan", "cases": [
        {"name": "alpha halt", "plan": {"client": "alpha", "rung": "halt"},
         "expect": {"plan": {"halt_vault": "needs_approval", "halt_cex": "automatic"}}},
        {"name": "gamma halt is not automatic", "plan": {"client": "gamma", "rung": "halt"},
         "expect": {"plan": {"halt_vault": "automatic"}}},
    ]})}
    report = run_test_texts(policy, cases)
    ok, failed = report.files[0].cases
    assert ok.ok and not failed.ok and "expected plan {'halt_vault': 'automatic'}" in failed.message
    assert report.evaluated["p-cex-pro"] == 1 and "p-liq" in report.uncovered
    wrong = {"plan_test.yaml": yaml.safe_dump({"version": 1, "kind": "policy_test", "policy": "plan", "cases": [
        {"name": "x", "plan": {"client": "alpha", "rung": "halt"}, "expect": {"outcome": "allow"}}]})}
    assert "plan case expects plan" in (run_test_texts(policy, wrong).files[0].error or "")


def test_daemon_modes_come_from_the_plan_and_fail_closed_without_a_policy() -> None:
    policy = _load()
    legacy = load_bundle(to_files(small_docs()))  # no ladder_plan
    config_modes = {"halt_vault": "automatic"}
    assert planned(policy, "alpha", "halt", config_modes=config_modes) == [
        Planned("halt_vault", "needs_approval", "p-vault"), Planned("halt_cex", "automatic", "p-cex-pro")]
    assert planned(None, "alpha", "halt", config_modes=config_modes) == [
        Planned("halt_vault", "dry_run"), Planned("halt_cex", "dry_run"), Planned("halt_dydx", "dry_run")]
    assert planned(legacy, "alpha", "halt", config_modes=config_modes)[0] == Planned("halt_vault", "automatic")
    assert planned(None, "alpha", "capability", config_modes={}) == [Planned("revoke_approval", "needs_approval"),
                                                                     Planned("revoke_grant", "needs_approval")]
