"""The example policies in policies/ load, lint clean, and their *_test.yaml cases pass."""

from __future__ import annotations

from decimal import Decimal

from primeguard.policy import lint_dir, load
from primeguard.policy.loader import run_tests
from primeguard.risk.params import RiskParameters
from tests.unit.policy.helpers import NOW, POLICIES


def test_examples_load() -> None:
    policy = load(POLICIES)
    assert set(policy.kinds.values()) == {"risk_limits", "haircuts", "withdrawal_allowlist", "withdrawal_limits",
                                          "approvals", "capability_rules", "ladder_plan"}
    assert len(policy.hash) == 64


def test_examples_lint_clean() -> None:
    issues = lint_dir(POLICIES, now=NOW)
    assert [i for i in issues if i.severity != "info"] == [], "\n".join(map(str, issues))


def test_every_example_policy_has_a_test_file_and_all_cases_pass() -> None:
    report = run_tests(POLICIES)
    assert report.ok, report.text()
    tested = {f.policy_id for f in report.files}
    assert tested == set(load(POLICIES).file_ids)  # one *_test.yaml per policy file
    assert report.uncovered == [], report.text()


def test_financing_tiers_match_the_seed_notes() -> None:
    policy = load(POLICIES)
    ratios = {t: policy.tiers[t].max_loan_to_collateral for t in ("new", "standard", "proven")}
    assert ratios == {"new": Decimal(1), "standard": Decimal(2), "proven": Decimal(9)}  # 2x, 3x, 10x gross
    for tier, ratio in ratios.items():
        params = policy.risk_parameters(tier)
        assert isinstance(params, RiskParameters)
        drawn = ratio / (1 + ratio)
        assert params.ladder.warn > drawn  # a fully drawn client starts below warn
        assert params.max_net_delta_ratio is not None and params.max_net_delta_ratio <= Decimal("0.1")
    assert {"PEPE", "WIF"} <= policy.low_liquidity_assets
    assert policy.risk_parameters("new").haircut("PEPE") > policy.risk_parameters("new").haircut("BTC")
