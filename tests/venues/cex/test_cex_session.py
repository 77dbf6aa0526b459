"""The CEX collector over a daemon's :class:`VenueSession`: one client pool (clients built and
markets loaded once) serves every collection on the session's loop, each reading fresh balances; a
collection with a blind account rebuilds it next time; from another loop the session is not used."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from tests.venues.cex.conftest import VENUES

from primeguard.config.schema import CexAccountConfig, PrimeguardConfig
from primeguard.sandbox.cex.server import CexSimulators
from primeguard.sandbox.faults import FaultConfig
from primeguard.venues.cex.client import CexClientPool
from primeguard.venues.cex.collector import CexCollector
from primeguard.venues.session import VenueSession


def _cfg(accounts: dict[str, CexAccountConfig]) -> PrimeguardConfig:
    return PrimeguardConfig.model_validate({
        "clients": [{"id": "alpha"}],
        "cex_accounts": [accounts[f"alpha-{v}"].model_dump(mode="json") for v in VENUES]})


@pytest.fixture
def market_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The venues whose markets a pool loaded (one entry per load, cached book or not)."""
    loads: list[str] = []
    original = CexClientPool._load_markets

    async def counted(self: CexClientPool, account: CexAccountConfig) -> Any:
        loads.append(account.venue)
        return await original(self, account)

    monkeypatch.setattr(CexClientPool, "_load_markets", counted)
    return loads


def _usdt(snap: Any) -> Decimal:
    return sum((b.quantity for b in snap.balances if b.asset == "USDT"), Decimal(0))


def test_one_pool_serves_every_collection_with_fresh_balances(sims: CexSimulators, accounts, market_loads):
    cfg = _cfg(accounts)
    sub = sims.state("binance").sub_by_name(accounts["alpha-binance"].sub_account)
    assert sub is not None
    before = sub.spot["USDT"]

    async def go() -> tuple[Any, Any, VenueSession]:
        session = VenueSession()
        try:
            first = await CexCollector().collect(cfg, datetime.now(UTC), session=session)
            with sims.state("binance").lock:
                sub.spot["USDT"] = before + 1234
            second = await CexCollector().collect(cfg, datetime.now(UTC), session=session)
        finally:
            await session.aclose()
        return first, second, session

    try:
        first, second, session = asyncio.run(go())
    finally:
        with sims.state("binance").lock:
            sub.spot["USDT"] = before
    assert all(s.ok for s in (*first.snapshots, *second.snapshots))
    assert session.builds == {"cex": 1}
    assert sorted(market_loads) == sorted(VENUES)  # once per venue, not once per collection
    got = {s.account.id: s for s in second.snapshots}
    was = {s.account.id: s for s in first.snapshots}
    assert _usdt(got["alpha-binance"]) - _usdt(was["alpha-binance"]) == 1234  # read again, not cached


def test_a_blind_account_rebuilds_the_pool_next_time(sims: CexSimulators, accounts, market_loads):
    cfg = _cfg(accounts)

    async def go() -> tuple[list[bool], list[bool], VenueSession, CexClientPool]:
        session = VenueSession()
        pools: list[CexClientPool] = []
        try:
            sims.set_faults("okx", FaultConfig(down=True))
            async with session.lease("cex", CexClientPool, max_age_s=3600) as lease:
                assert lease is not None
                pools.append(lease.resource)
            down = await CexCollector().collect(cfg, datetime.now(UTC), session=session)
            sims.set_faults("okx", FaultConfig())
            up = await CexCollector().collect(cfg, datetime.now(UTC), session=session)
        finally:
            await session.aclose()
        return [s.ok for s in down.snapshots], [s.ok for s in up.snapshots], session, pools[0]

    down, up, session, first_pool = asyncio.run(go())
    assert down == [True, False, True]  # binance, okx (down: blind, fail closed), bybit
    assert up == [True, True, True]
    assert session.builds == {"cex": 2}  # the pool that saw a blind account was replaced
    assert first_pool.closed


def test_a_session_of_another_loop_falls_back_to_a_pool_per_call(sims: CexSimulators, accounts, market_loads):
    cfg = _cfg(accounts)

    async def make() -> VenueSession:
        return VenueSession()

    home = asyncio.new_event_loop()
    try:
        session = home.run_until_complete(make())
        got = asyncio.run(CexCollector().collect(cfg, datetime.now(UTC), session=session))
        assert all(s.ok for s in got.snapshots)
        assert session.builds == {}  # never touched from the foreign loop
        home.run_until_complete(session.aclose())
    finally:
        home.close()
    assert sorted(market_loads) == sorted(VENUES)  # the call's own pool


def test_a_pool_whose_http_session_was_closed_is_rebuilt(sims: CexSimulators, accounts, market_loads):
    cfg = _cfg(accounts)

    async def go() -> tuple[Any, VenueSession]:
        session = VenueSession()
        try:
            await CexCollector().collect(cfg, datetime.now(UTC), session=session)
            async with session.lease("cex", CexClientPool, max_age_s=3600) as lease:
                assert lease is not None and lease.resource._session is not None
                await lease.resource._session.close()  # e.g. closed under it: its clients cannot send
            got = await CexCollector().collect(cfg, datetime.now(UTC), session=session)
        finally:
            await session.aclose()
        return got, session

    got, session = asyncio.run(go())
    assert all(s.ok for s in got.snapshots)  # read over a fresh pool, not failed on the broken one
    assert session.builds == {"cex": 2}
