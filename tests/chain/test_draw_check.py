"""``primeguard loans draw-check`` on a sandbox: a fresh collection, the client revalued with the
draw and the policy's decision (a draw past the tier's financing cap is refused with its reason)."""

from __future__ import annotations

import json

import pytest

from tests.clitools import run_cli
from tests.conftest import REPO
from tests.json_schemas import check

pytestmark = pytest.mark.chain

# firm-a (policy default tier "new": 1:1, no stressed shortfall): 150,000 USDC in one wallet against a
# 50,000 loan, so 100,000 of its own money and loan / own collateral 0.5.
WORLD = {
    "name": "draws",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": "firm-a", "loan": {"principal": "50000"}, "wallets": [{"tokens": {"USDC": "150000"}}]}],
}


def _check(sb, amount: str) -> tuple[int, dict]:
    out = run_cli("loans", "draw-check", "firm-a", "--amount", amount, "--config", str(sb.config_path), "--json",
                  cwd=REPO)
    assert out.returncode in (0, 1), out.stdout + out.stderr
    data = json.loads(out.stdout)
    check("draw_check", data)
    return out.returncode, data


def test_draws_past_the_financing_cap_are_refused(sandbox_factory):
    sb = sandbox_factory(WORLD)
    code, within = _check(sb, "50000")
    assert within["numbers"]["post_loan_to_collateral"] == "1"
    assert "financing_cap" not in within["decision"]["reasons"]
    # one wallet: the venue-dark scenario leaves the whole loan uncovered, and tier new allows no shortfall
    assert code == 1 and "stress_limit" in within["decision"]["reasons"]
    code, over = _check(sb, "60000")
    assert code == 1 and over["decision"]["outcome"] == "deny"
    assert over["decision"]["reasons"][0] == "financing_cap" and over["decision"]["rules"][0] == "financing-cap-holds"
    assert over["numbers"]["post_loan_to_collateral"] == "1.1"
    bad = run_cli("loans", "draw-check", "firm-a", "--amount", "-5", "--config", str(sb.config_path), cwd=REPO)
    assert bad.returncode == 2 and "amount" in bad.stderr
