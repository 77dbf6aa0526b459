"""CEX withdrawals through the real ccxt client against the Binance simulator: only to an address
both our allowlist and the venue's whitelist contain; a second execute never sends twice."""

from __future__ import annotations

import json

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


# One client per venue, each withdrawing to the address its allowlist entry names for that venue
# (policies/allowlist.yaml): alpha on Binance (USDT), beta on Bybit (USDC), gamma on OKX (USDT).
FOLLOWED = {"binance": ("alpha", "USDT", LISTED),
            "bybit": ("beta", "USDC", "0xA6243595f54e5C899F5246b256C0f4E585274735"),
            "okx": ("gamma", "USDT", "0xfAcf69eA7094E0BE786F09c893463559313Bc663")}
# A status each venue does not document (Bybit documents "Unknown" itself: primeguard cannot read it)
UNKNOWN_STATUS = {"binance": "9", "okx": "99", "bybit": "Unknown"}


def _follow_world() -> dict:
    clients = []
    for venue, (client, asset, address) in FOLLOWED.items():
        clients.append({"id": client, "cex": [{
            "venue": venue, "spot": {asset: "500000"},
            "keys": [{"id": "pb-ops", "holder": "operator", "spot": True, "withdraw": True,
                      "ip_whitelist": ["127.0.0.1"]}],
            "whitelist": [{"coin": asset, "address": address, "label": "listed"}]}]})
    return {**WORLD, "name": "cex-follow", "clients": clients}


def test_cex_withdrawals_are_followed_to_their_final_state(sandbox_factory, repo):
    """Each venue's withdrawal is read back through ccxt after submission: pending while the venue
    processes it, then confirmed with the venue's tx hash, or failed with the venue's status and
    reason; a status primeguard does not know stays unknown (blind-spot finding), never confirmed.
    The CLI's ``withdraw follow`` does the same for every broadcast CEX withdrawal."""
    from primeguard.domain.findings import FindingCode
    from primeguard.store import audit
    from tests.clitools import run_cli
    from tests.json_schemas import check

    sb = sandbox_factory(_follow_world())
    cfg = sb.config()
    store = open_store(cfg.store.url, migrate=True)
    with store.session() as s:
        tom_row, tom_token = repos.create_user(s, "tom", "treasury")
        tom = identity.actor_of(tom_row)
        viewer_token = repos.create_user(s, "vic", "viewer")[1]
    svc = WithdrawalService(cfg, store, policy_decider(load(repo / "policies")),
                            LiveContext(cfg, store, load(repo / "policies")), config_dir=sb.workdir)
    accounts = {a.venue: a for a in cfg.cex_accounts}

    def sent(venue: str) -> tuple[str, str]:
        _client, asset, address = FOLLOWED[venue]
        req = svc.request(account_id=accounts[venue].id, asset=asset, amount="1000", destination=address,
                          requested_by=tom)
        assert req.state == "approved", (venue, req.decision.explanation)
        out = svc.execute(req.withdrawal_id)
        assert out.state == "broadcast" and out.tx_hash, (venue, out)
        return req.withdrawal_id, out.tx_hash

    odd_ids = []
    for venue in FOLLOWED:
        ok_id, ok_venue_id = sent(venue)
        bad_id, bad_venue_id = sent(venue)
        odd_id, odd_venue_id = sent(venue)
        # still processing at the venue: nothing changes
        assert svc.follow(ok_id).state == "broadcast"
        assert svc.execute(ok_id).state == "broadcast"  # execute resumes by following, never sends again

        rec = sb.cex.settle_withdrawal(venue, ok_venue_id, "confirmed")
        done = svc.follow(ok_id)
        assert (done.state, done.tx_hash) == ("confirmed", rec["tx_id"]), (venue, done)

        failed = sb.cex.settle_withdrawal(venue, bad_venue_id, "failed")
        lost = svc.follow(bad_id)
        assert lost.state == "failed" and str(failed["status"]) in lost.error, (venue, lost)
        if venue == "binance":  # Binance gives its reason; the others only their status
            assert failed["reason"] in lost.error

        sb.cex.settle_withdrawal(venue, odd_venue_id, UNKNOWN_STATUS[venue])
        odd = svc.follow(odd_id)
        assert odd.state == "unknown" and UNKNOWN_STATUS[venue] in odd.error, (venue, odd)
        odd_ids.append(odd_id)

        with store.session(readonly=True) as s:
            rows = {w: repos.get_withdrawal(s, w) for w in (ok_id, bad_id, odd_id)}
            assert (rows[ok_id].state, rows[ok_id].tx_hash) == ("confirmed", rec["tx_id"])
            assert rows[bad_id].state == "failed" and rows[bad_id].error == lost.error
            assert rows[odd_id].state == "broadcast", "an unknown venue status is never taken as done"
            assert [e.payload["tx_hash"] for e in audit.entries(s, kind="withdrawal.confirmed", subject=ok_id,
                                                                 limit=5)] == [rec["tx_id"]]
            assert audit.entries(s, kind="withdrawal.failed", subject=bad_id, limit=5)
            assert audit.entries(s, kind="withdrawal.venue_status_unknown", subject=odd_id, limit=5)
            finding = next(f for f in repos.open_findings(s) if f.subject == odd_id)
            assert finding.code == FindingCode.WITHDRAWAL_STATUS_UNKNOWN and finding.venue == venue

    # A sweep (which closes the findings it did not raise again) leaves the follower's blind spots open.
    import asyncio

    from primeguard.app.runtime import Runtime
    from primeguard.daemon.guardian import Guardian

    guardian = Guardian.from_runtime(Runtime.assemble(cfg, sb.workdir, store=store))
    asyncio.run(guardian.sweep())
    with store.session(readonly=True) as s:
        assert sorted(f.subject for f in repos.open_findings(s)
                      if f.code == FindingCode.WITHDRAWAL_STATUS_UNKNOWN) == sorted(odd_ids)

    # The CLI follows every broadcast CEX withdrawal: here the three left unknown, then one settles.
    sb.cex.settle_withdrawal("okx", odd_venue_id, "confirmed")
    follow = ("withdraw", "follow", "--config", str(sb.workdir / "config.yaml"), "--json")
    refused = run_cli(*follow, cwd=sb.workdir, token=viewer_token)  # a viewer may not record outcomes
    assert refused.returncode != 0 and "viewer" in (refused.stdout + refused.stderr)
    out = run_cli(*follow, cwd=sb.workdir, token=tom_token)
    assert out.returncode == 0, out.stdout + out.stderr
    body = json.loads(out.stdout)
    check("withdrawals_followed", body)
    states = {w["id"]: w["state"] for w in body["withdrawals"]}
    assert len(states) == 3 and states[odd_id] == "confirmed"
    with store.session(readonly=True) as s:  # a status read at last closes its blind spot
        assert odd_id not in {f.subject for f in repos.open_findings(s)}
    assert sorted(v for k, v in states.items() if k != odd_id) == ["unknown", "unknown"]

    # The daemon's scheduled job does the same: the Bybit one now fails at the venue.
    bybit_odd = next(k for k, v in states.items() if k != odd_id
                     and repos_row(store, k).account_id == accounts["bybit"].id)
    sb.cex.settle_withdrawal("bybit", repos_row(store, bybit_odd).external_id, "failed")
    asyncio.run(guardian.follow_withdrawals())
    assert repos_row(store, bybit_odd).state == "failed"
    assert "Fail" in repos_row(store, bybit_odd).error


def repos_row(store, withdrawal_id):
    with store.session(readonly=True) as s:
        return repos.get_withdrawal(s, withdrawal_id)
