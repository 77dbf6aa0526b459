"""CEX withdrawals through the real ccxt client against the Binance simulator: only to an address
both our allowlist and the venue's whitelist contain; a second execute never sends twice."""

from __future__ import annotations

import pytest

from primeguard.custody.context import LiveContext, policy_decider
from primeguard.custody.withdrawals import WithdrawalService
from primeguard.domain.decision import ReasonCode
from primeguard.policy.loader import load
from primeguard.store import identity, repos
from primeguard.store.db import open_store

pytestmark = pytest.mark.chain

LISTED = "0x4b280EdCc946EAA52913262F098391Af6aA31751"  # on alpha's allowlist (policies/allowlist.yaml)
WORLD = {
    "name": "cex-custody",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400},
              {"asset": "USDT", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": "alpha", "cex": [{
        "venue": "binance", "spot": {"USDT": "500000"},
        "keys": [{"id": "alpha-trading", "holder": "client", "spot": True, "ip_whitelist": ["127.0.0.1"]},
                 {"id": "pb-ops", "holder": "operator", "spot": True, "withdraw": True,
                  "ip_whitelist": ["127.0.0.1"]}],
        "whitelist": [{"coin": "USDT", "address": LISTED, "label": "Alpha cold"}]}]}],
}


def test_cex_withdrawal_needs_both_lists_and_is_sent_once(sandbox_factory, repo, tmp_path):
    sb = sandbox_factory(WORLD)
    cfg = sb.config()
    policy = load(repo / "policies")
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}", migrate=True)
    with store.session() as s:
        tom = identity.actor_of(repos.create_user(s, "tom", "treasury")[0])
    svc = WithdrawalService(cfg, store, policy_decider(policy), LiveContext(cfg, store, policy),
                            config_dir=sb.workdir)
    acct = cfg.cex_accounts[0].id
    ok = svc.request(account_id=acct, asset="USDT", amount="1000", destination=LISTED, requested_by=tom)
    assert ok.state == "approved", ok.decision.explanation
    sent = svc.execute(ok.withdrawal_id)
    assert sent.state == "broadcast" and sent.tx_hash
    assert svc.execute(ok.withdrawal_id).state == "broadcast"  # never sent twice
    sim = sb.cex.state("binance")
    withdrawals = [w for a in sim.accounts.values() for w in a.withdrawals]
    assert [(w["address"], w["amount"]) for w in withdrawals] == [(LISTED, "1000")]
    # Not on the venue's whitelist (the venue cannot see it): denied by policy before anything is sent.
    sim_acct = next(a for a in sim.accounts.values() if a.withdrawals)
    sim_acct.whitelist.clear()
    no = svc.request(account_id=acct, asset="USDT", amount="1000", destination=LISTED, requested_by=tom)
    assert no.state == "denied" and ReasonCode.VENUE_WHITELIST_MISSING in no.decision.reasons
    assert len([w for a in sim.accounts.values() for w in a.withdrawals]) == 1
