"""``policy lint`` finds what loads but is still wrong: expired entries, dead rules, contradictions."""

from __future__ import annotations

from typing import Any

from primeguard.policy import lint_files
from primeguard.policy.lint import LintIssue
from tests.unit.policy.helpers import NOW, small_docs, to_files


def _codes(docs: dict[str, Any]) -> dict[str, list[LintIssue]]:
    out: dict[str, list[LintIssue]] = {}
    for issue in lint_files(to_files(docs), root="p", now=NOW):
        out.setdefault(issue.code, []).append(issue)
    return out


def test_small_policy_is_clean_except_shadow_note() -> None:
    assert set(_codes(small_docs())) == {"L601"}


def test_load_errors_are_L000_with_file_and_line() -> None:
    docs = small_docs()
    docs["appr.yaml"]["rules"][0]["roles"] = ["intern"]
    (issue,) = _codes(docs)["L000"]
    assert issue.file == "p/appr.yaml" and issue.line == 9 and issue.severity == "error"
    assert str(issue).startswith("p/appr.yaml:9: error L000: rules.0.roles.0")


def test_expired_never_active_and_unchecksummed_entries() -> None:
    docs = small_docs()
    e0, e1 = docs["allow.yaml"]["entries"]
    e0["expires_at"] = "2026-10-01T00:00:00Z"
    e1["expires_at"] = "2025-12-31T00:00:00Z"  # before added_at
    e1["address"] = e1["address"].lower()
    codes = _codes(docs)
    assert [i.message.split(" ")[1] for i in codes["L101"]] == ["e-alpha"]
    assert codes["L102"][0].severity == "error" and "e-gamma" in codes["L102"][0].message
    assert "has no EIP-55 checksum" in codes["L104"][0].message


def test_timelock_longer_than_validity_can_never_be_active() -> None:
    docs = small_docs()
    docs["allow.yaml"]["timelock_s"] = 600 * 86400
    assert len(_codes(docs)["L102"]) == 2


def test_ladder_contradictions() -> None:
    docs = small_docs()
    docs["risk.yaml"]["tiers"][1]["max_loan_to_collateral"] = 4  # fully drawn LTV 0.8 >= warn 0.75
    docs["risk.yaml"]["tiers"][0]["ladder"]["liquidate"] = "1.05"
    docs["risk.yaml"]["tiers"][0]["ladder"]["hysteresis"] = "0.1"
    docs["risk.yaml"]["tiers"][0]["min_track_record_days"] = 60  # new needs more history than pro
    codes = _codes(docs)
    assert "fully drawn 4:1 loan" in codes["L201"][0].message and codes["L201"][0].severity == "error"
    assert "L202" in codes and "L203" in codes
    assert codes["L205"][0].message.startswith("tier pro finances more (4:1) than tier new")


def test_dead_and_shadowed_limits() -> None:
    docs = small_docs()
    limits = docs["limits.yaml"]["limits"]
    limits[0]["per_tx_usd"] = 3_000_000  # above its 2m velocity
    limits.append({"id": "l-dead", "scope": {"assets": ["DOGE"]}, "per_tx_usd": 10})
    limits.append({"id": "l-loose-velocity", "velocity": {"window_s": 3600, "max_usd": 5_000_000}})
    codes = _codes(docs)
    assert codes["L301"][0].message.startswith("limit l-all")
    assert [i.message.split(" ")[1] for i in codes["L302"]] == ["l-dead"]
    assert "l-loose-velocity" in codes["L303"][0].message and "l-all" in codes["L303"][0].message


def test_withdrawals_in_margin_call_and_fixed_ltv_cap() -> None:
    docs = small_docs()
    docs["limits.yaml"]["guards"]["ladder"]["allow_states"] = ["normal", "margin_call"]
    docs["limits.yaml"]["guards"]["ltv"]["max_post_ltv"] = "0.82"
    codes = _codes(docs)
    assert "margin_call" in codes["L304"][0].message
    assert "tier new's halt band" in codes["L305"][0].message


def test_approval_rules_that_cannot_fire_or_cannot_be_met() -> None:
    docs = small_docs()
    docs["limits.yaml"]["limits"][0]["per_tx_usd"] = 400_000  # every allowlisted withdrawal <= 400k
    docs["appr.yaml"]["rules"][1]["approvers"] = ["carol"]
    docs["appr.yaml"]["rules"][0]["roles"] = ["viewer"]
    codes = _codes(docs)
    assert [i.message.split(" ")[2] for i in codes["L401"]] == ["a-500k"]
    assert codes["L402"][0].severity == "error"
    assert "L403" in codes


def test_capability_rules_that_can_never_fire() -> None:
    docs = small_docs()
    docs["keys.yaml"] = {"version": 1, "kind": "capability_rules", "id": "keys", "rules": [
        {"id": "c-evm-on-cex", "applies_to": {"kinds": ["erc20_approval"], "venues": ["binance"]},
         "unlimited_approvals_only_to_known_spenders": True},
        {"id": "c-threshold-wrong-kind", "applies_to": {"kinds": ["cex_api_key"]}, "safe_min_threshold": 2},
        {"id": "c-ok", "applies_to": {"holders": ["client"]}, "forbid": ["withdraw"]},
    ]}
    codes = _codes(docs)
    assert sorted(i.message.split(" ")[2].rstrip(":") for i in codes["L501"]) == [
        "c-evm-on-cex", "c-threshold-wrong-kind"]


def test_unused_files_and_missing_limits() -> None:
    docs = small_docs()
    docs["hair2.yaml"] = {**docs["hair.yaml"], "id": "hair2"}
    docs["allow2.yaml"] = {"version": 1, "kind": "withdrawal_allowlist", "id": "allow2", "entries": []}
    codes = _codes(docs)
    assert "L207" in codes and "L106" in codes
    docs = small_docs()
    del docs["limits.yaml"], docs["appr.yaml"]
    assert "L602" in _codes(docs)
