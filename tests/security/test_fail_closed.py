"""Fail closed, per venue kind: when any venue's data for a client is missing or partial, the client
is blind and a vault withdrawal for it is denied with ``blind_spot``, with a critical blind-spot
finding naming the venue and what is missing.

One sandbox for the module (anvil + CEX and dYdX simulators); each test injects one real fault
(simulator fault injection, a deleted key, a feed without code, a node that does not answer),
checks, and undoes it. The first test is the control: without a fault the same withdrawal passes.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from primeguard.custody.context import LiveContext, policy_decider
from primeguard.custody.withdrawals import WithdrawalService
from primeguard.domain.decision import ReasonCode
from primeguard.domain.findings import FindingCode, Severity
from primeguard.pipeline.collect import collect
from primeguard.pipeline.evaluate import evaluate
from primeguard.policy.loader import load
from primeguard.sandbox.anvil import free_port
from primeguard.sandbox.faults import FaultConfig
from primeguard.sandbox.world import Sandbox
from primeguard.store.db import open_store
from tests.conftest import REPO, scenario_from
from tests.security.world import allowlist_entry
from tests.store.util import actor

pytestmark = pytest.mark.chain

CID = "gamma"
DEST = "0x4b280EdCc946EAA52913262F098391Af6aA31751"
WORLD = {
    "name": "fail-closed",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "BTC", "answer": "60000"},
              {"asset": "USDC", "answer": "1", "heartbeat_s": 86400},
              {"asset": "USDT", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{
        "id": CID,
        # ETH in the vault also has a dYdX oracle price: an unreadable Chainlink feed must still blind.
        "vault": {"limits": {"USDC": "10000000"}, "tokens": {"USDC": "2000000"}, "native": "10",
                  "allowlist": [{"asset": "USDC", "address": DEST}]},
        "cex": [{"venue": "binance", "spot": {"USDT": "50000"},
                 "keys": [{"id": "mon", "holder": "monitor"}, {"id": "trader", "holder": "client", "spot": True}]}],
        "dydx": [{"subaccounts": [{"number": 0, "usdc": "5000"}]}],
    }],
}
ENTRY = allowlist_entry("gamma-vault-usdc", CID, "USDC", DEST, "Gamma settlement wallet")


class Env:
    def __init__(self, sb: Sandbox, policy: Any, store: Any) -> None:
        self.sb = sb
        self.policy = policy
        self.store = store
        self.cfg = sb.config()

    def service(self, cfg: Any = None) -> WithdrawalService:
        cfg = cfg or self.cfg
        return WithdrawalService(cfg, self.store, policy_decider(self.policy),
                                 LiveContext(cfg, self.store, self.policy), config_dir=self.sb.workdir)

    def request(self, cfg: Any = None) -> Any:
        cfg = cfg or self.cfg
        return self.service(cfg).request(account_id=cfg.vaults[0].id, asset="USDC", amount="10", destination=DEST,
                                         requested_by=actor(self.store, "tom"))

    def valuation(self, cfg: Any = None) -> Any:
        cfg = cfg or self.cfg
        obs, _ = asyncio.run(collect(cfg))
        ev = evaluate(cfg, obs, policy=self.policy, ladder={}, peaks={}, loan_start=obs.taken_at,
                      clients={CID}, with_stress=False)
        return obs, ev.valuations[CID]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("failclosed")
    sb = Sandbox(scenario_from(WORLD), root / "world")
    sb.start()
    try:
        pdir = root / "policies"
        shutil.copytree(REPO / "policies", pdir)
        with (pdir / "allowlist.yaml").open("a") as fh:
            fh.write(ENTRY)
        store = open_store(f"sqlite:///{root / 'custody.db'}", migrate=True)
        yield Env(sb, load(pdir), store)
    finally:
        sb.stop()


def assert_blind_and_denied(env: Env, venue: str, cfg: Any = None) -> Any:
    """The client is blind with a critical BLIND_SPOT naming ``venue`` and what is missing, and a
    vault withdrawal for it is denied with ``blind_spot``."""
    obs, val = env.valuation(cfg)
    assert val.blind, val.to_json_dict()
    named = [f for f in val.findings if f.code is FindingCode.BLIND_SPOT and f.severity is Severity.CRITICAL
             and f.venue == venue]
    assert named, [(f.code, f.venue, f.message) for f in val.findings]
    assert all(f.details.get("missing") for f in named)
    r = env.request(cfg)
    assert r.state == "denied", r.decision.explanation
    assert ReasonCode.BLIND_SPOT in r.decision.reasons
    return obs, named


def test_control_without_faults_the_withdrawal_passes(env):
    _obs, val = env.valuation()
    assert not val.blind, val.to_json_dict()["findings"]
    r = env.request()
    assert r.state == "approved", r.decision.explanation


def test_evm_chain_down(env):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: the node is down
    chains = [c.model_copy(update={"rpc_url": dead, "timeout_s": 2.0}) for c in env.cfg.chains]
    cfg = env.cfg.model_copy(update={"chains": chains})
    obs, named = assert_blind_and_denied(env, "evm:ethereum", cfg)
    assert any(f.code is FindingCode.VENUE_UNREACHABLE for f in obs.findings)
    assert any(f.details.get("account") == cfg.vaults[0].id for f in named)


@contextmanager
def feed_without_code(env: Env, asset: str) -> Iterator[str]:
    node = env.sb.chains["ethereum"].node
    feed = next(f.address for f in env.cfg.feeds if f.asset == asset)
    code = node.rpc("eth_getCode", [feed, "latest"])
    node.rpc("anvil_setCode", [feed, "0x"])
    try:
        yield feed
    finally:
        node.rpc("anvil_setCode", [feed, code])


def test_oracle_unreadable(env):
    with feed_without_code(env, "ETH") as feed:
        obs, named = assert_blind_and_denied(env, "oracle:ethereum")
    assert any(f.code is FindingCode.ORACLE_UNREADABLE and f.details.get("feed") == feed for f in obs.findings)
    assert any(q.asset == "ETH" and q.source.value == "dydx_oracle" for q in obs.prices)  # another price existed
    assert any(f.details["account"] == feed and "ETH/USD" in f.details["missing"] for f in named)


def test_cex_venue_down(env):
    env.sb.cex.set_faults("binance", FaultConfig(down=True))
    try:
        assert_blind_and_denied(env, "binance")
    finally:
        env.sb.cex.set_faults("binance", FaultConfig())


def test_cex_key_auth_failed(env):
    """The monitor key still reads the balances; the client's key cannot be inspected (the venue
    refuses it): what that key may do is unknown, so the account is only partly seen."""
    st = env.sb.cex.state("binance")
    key = next(k for k in st.keys.values() if k.id == "trader")
    with st.lock:
        key.deleted = True
    try:
        obs, _named = assert_blind_and_denied(env, "binance")
    finally:
        with st.lock:
            key.deleted = False
    snap = next(s for s in obs.snapshots if s.account.venue.value == "binance")
    assert snap.ok and snap.balances  # balances were read: the gap is the key
    assert any(f.code is FindingCode.VENUE_AUTH_FAILED for f in snap.findings)


def test_dydx_indexer_down(env):
    env.sb.dydx.set_faults("dydx", FaultConfig(down=True))
    try:
        assert_blind_and_denied(env, "dydx")
    finally:
        env.sb.dydx.set_faults("dydx", FaultConfig())


def test_dydx_node_down(env):
    env.sb.dydx.set_faults("dydx-node", FaultConfig(down=True))
    try:
        obs, named = assert_blind_and_denied(env, "dydx-node")
    finally:
        env.sb.dydx.set_faults("dydx-node", FaultConfig())
    snap = next(s for s in obs.snapshots if s.account.venue.value == "dydx")
    assert snap.ok  # the indexer answered: balances known, key power not
    assert any(f.code is FindingCode.VENUE_UNREACHABLE for f in snap.findings)
    assert all(f.details.get("cause") == "venue_unreachable" for f in named)


def test_configured_account_without_snapshot(env):
    """An account in the config that no collector returned (here: a second dYdX address the
    simulator does not serve, dropped from the observation) is missing data too."""
    from primeguard.pipeline.evaluate import GapIndex

    obs, _val = env.valuation()
    dropped = next(s for s in obs.snapshots if s.account.venue.value == "dydx")
    partial = obs.__class__(obs.taken_at, tuple(s for s in obs.snapshots if s is not dropped), obs.prices,
                            obs.findings)
    gaps = GapIndex(env.cfg, partial)
    snaps = gaps.snapshots(CID)
    found = gaps.of(CID, snaps, (), (), None)
    assert [(g.venue, g.subject) for g in found] == [("dydx", dropped.account.id)]
