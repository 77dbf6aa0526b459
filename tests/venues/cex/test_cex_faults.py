"""Injected faults: each gives a typed error (sync and async clients) and, through the collector,
an ``ok=False`` snapshot with the right finding and no balances; never a crash or zeros."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.venues.cex.conftest import VENUES
from tests.venues.cex.helpers import FAST_PACING_MS, c, fast_pool

from primeguard.config.schema import CexAccountConfig
from primeguard.domain.errors import VenueBadResponse, VenueError, VenueRateLimited, VenueUnavailable
from primeguard.domain.findings import FindingCode
from primeguard.sandbox.faults import FaultConfig
from primeguard.venues.cex import collect
from primeguard.venues.cex.client import build_exchange

FAULTS: dict[str, tuple[FaultConfig, type[VenueError], FindingCode]] = {
    "down": (FaultConfig(down=True), VenueUnavailable, FindingCode.VENUE_UNREACHABLE),
    "5xx": (FaultConfig(error_5xx_rate=1), VenueUnavailable, FindingCode.VENUE_UNREACHABLE),
    "429": (FaultConfig(rate_limit_every=1, retry_after_s=3), VenueRateLimited, FindingCode.VENUE_RATE_LIMITED),
    "timeout": (FaultConfig(timeout_rate=1, timeout_s=2), VenueUnavailable, FindingCode.VENUE_UNREACHABLE),
    "malformed": (FaultConfig(malformed_rate=1), VenueBadResponse, FindingCode.VENUE_BAD_RESPONSE),
}
READ = {"binance": "fapiPrivateV3GetAccount", "okx": "privateGetAccountBalance",
        "bybit": "privateGetV5UserQueryApi"}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("venue", VENUES)
async def test_fault_gives_blind_snapshot(sims: Any, accounts: dict[str, CexAccountConfig], venue: str,
                                         fault: str) -> None:
    cfg, _, code = FAULTS[fault]
    sims.set_faults(venue, cfg)
    async with fast_pool(request_timeout_s=0.3) as pool:
        snap = await collect(accounts[f"alpha-{venue}"], pool=pool, timeout_s=5)
    assert snap.ok is False
    assert snap.balances == () and snap.positions == () and snap.prices == ()  # absent, never zeros
    assert [f.code for f in snap.findings] == [code]
    assert snap.findings[0].subject == f"alpha-{venue}" and snap.findings[0].client_id == "alpha"
    assert all(cr.capabilities for cr in snap.credentials)  # uninspected keys: UNKNOWN, not empty
    if fault == "429":
        assert snap.findings[0].details["retry_after_s"] == pytest.approx(3, abs=1)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("venue", VENUES)
def test_fault_gives_typed_error(sims: Any, accounts: dict[str, CexAccountConfig], venue: str, fault: str,
                                 mode: str) -> None:
    import asyncio

    cfg, kind, _ = FAULTS[fault]
    sims.set_faults(venue, cfg)
    acct = accounts[f"alpha-{venue}"]

    async def go() -> None:
        ex = build_exchange(acct, "monitor", sync=mode == "sync", timeout_s=0.3, rate_limit_ms=FAST_PACING_MS)
        try:
            await c(getattr(ex, READ[venue])())
        finally:
            if mode == "async":
                await ex.close()

    with pytest.raises(kind) as info:
        asyncio.run(go())
    assert info.value.venue == venue
    if fault == "429":
        assert info.value.retry_after == pytest.approx(3, abs=1)  # type: ignore[attr-defined]
    if fault == "timeout":
        assert info.value.code == "timeout"


async def test_fault_on_one_path_only(sims: Any, accounts: dict[str, CexAccountConfig]) -> None:
    sims.set_faults("binance", FaultConfig(rate_limit_every=1, retry_after_s=0, only_paths=("positionRisk",)))
    async with fast_pool() as pool:
        snap = await collect(accounts["alpha-binance"], pool=pool)
    assert not snap.ok and [f.code for f in snap.findings] == [FindingCode.VENUE_RATE_LIMITED]
    assert {c.id for c in snap.credentials if c.details["inspected"]} == {"client", "ops", "pb-master", "monitor"}


async def test_retry_after_pauses_the_venue(sims: Any, accounts: dict[str, CexAccountConfig]) -> None:
    sims.set_faults("okx", FaultConfig(rate_limit_every=1, retry_after_s=1, only_paths=("account/balance",)))
    async with fast_pool() as pool:
        ex = pool.exchange(accounts["alpha-okx"], "monitor")
        with pytest.raises(VenueRateLimited):
            await ex.privateGetAccountBalance()
        t0 = time.monotonic()
        await ex.privateGetAccountConfig()  # any OKX request now waits for the pause to end
        assert time.monotonic() - t0 >= 0.8


async def test_account_budget_and_recovery(sims: Any, accounts: dict[str, CexAccountConfig]) -> None:
    sims.set_faults("bybit", FaultConfig(latency_ms=400))
    async with fast_pool() as pool:
        slow = await collect(accounts["alpha-bybit"], pool=pool, timeout_s=0.3)
        assert not slow.ok and slow.findings[0].code == FindingCode.VENUE_UNREACHABLE
        assert slow.findings[0].details["error"] == "timeout"
        sims.set_faults("bybit", FaultConfig())
        assert (await collect(accounts["alpha-bybit"], pool=pool)).ok
