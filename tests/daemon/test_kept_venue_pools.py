"""The daemon keeps its venue connections open for its lifetime: over several sweeps the CEX client
pool is built (and the markets loaded) once and the dYdX indexer pool made once, every sweep reads
fresh balances, and everything is closed when the daemon stops."""

from __future__ import annotations

import asyncio
import gc
from decimal import Decimal
from typing import Any

import pytest

from primeguard.config.schema import CexAccountConfig
from primeguard.daemon.guardian import Guardian
from primeguard.venues.cex.client import CexClientPool
from primeguard.venues.dydx.indexer import IndexerPool
from primeguard.venues.session import VenueSession
from tests.waiting import await_until

pytestmark = pytest.mark.chain

KEY = {"id": "kept-trading", "holder": "client", "spot": True, "futures": True, "ip_whitelist": ["127.0.0.1"]}
WORLD = {
    "name": "kept",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "BTC", "answer": "60000"},
              {"asset": "USDC", "answer": "1", "heartbeat_s": 86400},
              {"asset": "USDT", "answer": "1", "heartbeat_s": 86400}],
    "clients": [
        {"id": "kept-cex", "loan": {"principal": "1000"},
         "cex": [{"venue": "binance", "spot": {"USDT": "10000"}, "keys": [KEY]}]},
        {"id": "kept-dydx", "loan": {"principal": "1000"},
         "dydx": [{"subaccounts": [{"number": 0, "usdc": "50000"}]}]},
    ],
}


def _quantity(g: Guardian, account_prefix: str, asset: str) -> Decimal | None:
    obs = g.last_observation
    if obs is None:
        return None
    for snap in obs.snapshots:
        if snap.account.id.startswith(account_prefix) and snap.ok:
            return sum((b.quantity for b in snap.balances if b.asset == asset), Decimal(0))
    return None


def test_two_sweeps_share_one_pool_read_fresh_balances_and_close_on_stop(sandbox_factory, tmp_path, monkeypatch,
                                                                         recwarn):
    gc.collect()  # what earlier tests in this process left behind is not this test's
    recwarn.clear()
    sb = sandbox_factory(WORLD)
    built: list[Any] = []
    loads: list[str] = []
    cex_init, idx_init, load = CexClientPool.__init__, IndexerPool.__init__, CexClientPool._load_markets

    def cex_pool(self: CexClientPool, *a: Any, **kw: Any) -> None:
        built.append(self)
        cex_init(self, *a, **kw)

    def indexer_pool(self: IndexerPool, *a: Any, **kw: Any) -> None:
        built.append(self)
        idx_init(self, *a, **kw)

    async def counted(self: CexClientPool, account: CexAccountConfig) -> Any:
        loads.append(account.venue)
        return await load(self, account)

    monkeypatch.setattr(CexClientPool, "__init__", cex_pool)
    monkeypatch.setattr(IndexerPool, "__init__", indexer_pool)
    monkeypatch.setattr(CexClientPool, "_load_markets", counted)
    cfg = sb.config()
    cfg = cfg.model_copy(update={"store": cfg.store.model_copy(update={"url": f"sqlite:///{tmp_path / 'g.db'}"})})
    assert sb.cex is not None and sb.dydx is not None
    cex_account = next(a for a in cfg.cex_accounts if a.client == "kept-cex")
    sub = sb.cex.state("binance").sub_by_name(cex_account.sub_account)
    assert sub is not None

    async def scenario() -> tuple[Guardian, VenueSession]:
        g = Guardian(cfg, config_dir=sb.workdir)
        stop = asyncio.Event()
        task = asyncio.create_task(g.run(sweep_every_s=0.5, scan_every_s=3600, stop=stop, watch=False,
                                         destinations_every_s=3600, follow_every_s=3600))
        try:
            await await_until(lambda: g.last_sweep is not None, what="the first sweep")
            session = g.venues
            assert session is not None
            assert _quantity(g, cex_account.id, "USDT") == Decimal("10000")
            assert _quantity(g, "kept-dydx", "USDC") == Decimal("50000")
            with sb.cex.state("binance").lock:
                sub.spot["USDT"] = Decimal("7000")
            sb.dydx.set_quote_balance("kept-dydx", 0, Decimal("42000"))
            await await_until(lambda: _quantity(g, cex_account.id, "USDT") == Decimal("7000")
                              and _quantity(g, "kept-dydx", "USDC") == Decimal("42000"),
                              what="a later sweep to read the new balances")
            assert g.m_sweeps.labels("schedule")._value.get() >= 1
        finally:
            stop.set()
            await task
        return g, session

    g, session = asyncio.run(scenario())
    assert g.venues is None and session.closed
    assert session.builds == {"cex": 1, "dydx": 1}
    assert [type(p) for p in built] in ([CexClientPool, IndexerPool], [IndexerPool, CexClientPool])
    assert loads == ["binance"]  # markets loaded once, by the kept pool
    cex, indexer = (next(p for p in built if isinstance(p, t)) for t in (CexClientPool, IndexerPool))
    assert cex.closed and cex._session is None
    assert indexer.http.is_closed
    gc.collect()
    assert not [w for w in recwarn if "Unclosed" in str(w.message)]
