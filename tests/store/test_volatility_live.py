"""Volatility haircuts live: the closes a sweep stores feed ``risk.volatility`` and the haircut that
comes out values the client (known price path: 100 → 110 → 100 ..., σ known in closed form)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D  # noqa: N817
from pathlib import Path

import sqlalchemy as sa

from primeguard.config.schema import PrimeguardConfig
from primeguard.domain import money  # noqa: F401  (prec-80 Decimal context)
from primeguard.domain.findings import FindingCode
from primeguard.domain.model import Account, Balance, PriceQuote, PriceSourceKind, VenueKind
from primeguard.domain.observation import AccountSnapshot, Observation
from primeguard.pipeline.evaluate import evaluate
from primeguard.pipeline.haircuts import load_price_history
from primeguard.pipeline.outcome import persist_sweep
from primeguard.policy.loader import load
from primeguard.store import Store, open_store, repos
from tests.conftest import REPO

NOW = datetime(2026, 6, 30, 23, 0, tzinfo=UTC)
WALLET = "0x1111111111111111111111111111111111111111"
CFG = PrimeguardConfig.model_validate({
    "chains": [{"id": "ethereum", "chain_id": 1, "rpc_url": "http://127.0.0.1:9"}],
    "clients": [{"id": "gamma", "tier": "new"}],
    "wallets": [{"id": "gamma-w", "client": "gamma", "chain": "ethereum", "address": WALLET}],
})


def _policy(tmp_path: Path, short_history: str = "floor"):
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    hc = tmp_path / "policies" / "haircuts.yaml"
    hc.write_text(hc.read_text() + f"volatility: {{k: 3, window_days: 30, min_points: 20, assets: [ETH], "
                                   f"short_history: {short_history}}}\n")
    return load(tmp_path / "policies")


def _store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'vol.db'}", migrate=True)


def _obs(at: datetime = NOW) -> Observation:
    acct = Account("gamma-w", "gamma", VenueKind.EVM, "ethereum", WALLET)
    snap = AccountSnapshot(acct, at, True, balances=(Balance("gamma-w", "ETH", D(100), at, "chain"),))
    quote = PriceQuote("ETH", D(3000), PriceSourceKind.ORACLE, "oracle:ETH", at - timedelta(seconds=30), at)
    return Observation(at, (snap,), (quote,))


def _record_path(store: Store, prices: list[str]) -> None:
    """One close a day at noon up to NOW's day, each day first written with a morning price that
    the noon one replaces; then a late write of an earlier time, which must not replace it."""
    start = datetime(2026, 6, 30, 12, tzinfo=UTC) - timedelta(days=len(prices) - 1)
    with store.session() as s:
        for i, p in enumerate(prices):
            noon = start + timedelta(days=i)
            repos.record_price_closes(s, at=noon - timedelta(hours=3), prices={"ETH": D(999)})
            repos.record_price_closes(s, at=noon, prices={"ETH": D(p)})
            repos.record_price_closes(s, at=noon - timedelta(hours=1), prices={"ETH": D(555)})


def test_a_known_path_sets_the_haircut_the_valuation_uses(tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    store = _store(tmp_path)
    _record_path(store, ["100", "110"] * 11)  # 22 closes, 21 returns
    hist = load_price_history(store, policy, NOW)
    assert [p for _, p in hist["ETH"]] == [D(100), D(110)] * 11
    x = D("1.1").ln()
    rets = [x if i % 2 == 0 else -x for i in range(21)]
    mean = sum(rets, D(0)) / 21
    sigma = (sum(((r - mean) ** 2 for r in rets), D(0)) / 20).sqrt()
    ev = evaluate(CFG, _obs(), policy=policy, ladder={}, peaks={}, price_history=hist)
    v = ev.volatility["ETH"]
    assert v.sigma == sigma and v.haircut == 3 * sigma and v.floor == D("0.08") and v.finding is None
    assert ev.params["gamma"].haircut("ETH") == 3 * sigma
    assert ev.valuations["gamma"].haircut_collateral == D(300_000) * (1 - 3 * sigma)
    assert not [f for f in ev.findings if f.code == FindingCode.HAIRCUT_HISTORY_SHORT]
    # the sweep keeps today's close: the last fresh reference price
    persist_sweep(store, sweep_id="s1", obs=_obs(), ev=ev, findings=[], clients=None, peaks={})
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT price FROM price_closes WHERE asset = 'ETH' AND day = '2026-06-30'")).all()
    assert [D(r[0]) for r in rows] == [D(3000)]
    store.close()


def test_short_history_falls_back_as_the_policy_says(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _record_path(store, ["100", "110", "100"])
    for mode, haircut in (("floor", D("0.08")), ("full", D(1))):
        policy = _policy(tmp_path / mode, mode)
        ev = evaluate(CFG, _obs(), policy=policy, ladder={}, peaks={},
                      price_history=load_price_history(store, policy, NOW))
        assert ev.volatility["ETH"].haircut == haircut and ev.volatility["ETH"].sigma is None
        assert [f.subject for f in ev.findings if f.code == FindingCode.HAIRCUT_HISTORY_SHORT] == ["ETH"]
        assert ev.valuations["gamma"].haircut_collateral == D(300_000) * (1 - haircut)
    # no history handed in at all (a one-off sweep): the same fallback, never the listed haircut silently
    ev = evaluate(CFG, _obs(), policy=_policy(tmp_path / "none", "full"), ladder={}, peaks={})
    assert ev.valuations["gamma"].haircut_collateral == 0
    store.close()
