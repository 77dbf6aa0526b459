"""collect / collect_many: balances, signed positions, marks, capabilities, whitelists, findings."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from tests.venues.cex.conftest import VENUES, WL_ADDRESS
from tests.venues.cex.helpers import fast_pool, with_holder

from primeguard.config.schema import CexAccountConfig, ClientConfig, PrimeguardConfig
from primeguard.domain.errors import ConfigError
from primeguard.domain.findings import FindingCode, Severity
from primeguard.domain.model import Capability, PriceSourceKind, VenueKind
from primeguard.domain.observation import AccountSnapshot
from primeguard.venues.cex import capabilities_report, collect, collect_many

C = Capability


def _codes(snap: AccountSnapshot, subject: str) -> dict[FindingCode, Severity]:
    return {f.code: f.severity for f in snap.findings if f.subject == subject}


def _no_floats(value: Any) -> None:
    for name in getattr(value, "__slots__", ()):
        assert not isinstance(getattr(value, name), float), (value, name)


@pytest.fixture(scope="module")
def alpha(accounts: dict[str, CexAccountConfig]) -> dict[str, AccountSnapshot]:
    import asyncio

    async def go() -> list[AccountSnapshot]:
        async with fast_pool() as pool:
            return await collect_many([accounts[f"alpha-{v}"] for v in VENUES], pool=pool)

    return {s.account.venue.value: s for s in asyncio.run(go())}


@pytest.mark.parametrize("venue", VENUES)
def test_balances_spot_and_futures(alpha: dict[str, AccountSnapshot], venue: str) -> None:
    snap = alpha[venue]
    assert snap.ok and snap.account.venue == VenueKind(venue) and snap.account.client_id == "alpha"
    got = {(b.source, b.asset): b.quantity for b in snap.balances}
    if venue == "binance":
        assert got == {("binance:spot", "BTC"): Decimal("1.25"), ("binance:spot", "ETH"): Decimal(1),
                       ("binance:spot", "USDT"): Decimal(10000), ("binance:usdm", "USDT"): Decimal(50000)}
        eth = next(b for b in snap.balances if b.asset == "ETH")
        assert eth.locked == Decimal("0.5")  # the open spot sell order
    else:  # unified accounts: spot and futures wallets are one
        src = "okx:trading" if venue == "okx" else "bybit:unified"
        assert got == {(src, "BTC"): Decimal("1.25"), (src, "ETH"): Decimal(1), (src, "USDT"): Decimal(60000)}
        assert snap.equity_usd is not None
    for b in snap.balances:
        assert isinstance(b.quantity, Decimal) and isinstance(b.locked, Decimal)
        _no_floats(b)


@pytest.mark.parametrize("venue", VENUES)
def test_positions_signed_with_marks_and_liquidation(alpha: dict[str, AccountSnapshot], venue: str) -> None:
    snap = alpha[venue]
    pos = {p.instrument: p for p in snap.positions}
    assert set(pos) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    btc, eth = pos["BTC/USDT:USDT"], pos["ETH/USDT:USDT"]
    assert (btc.underlying, btc.size, btc.entry_price, btc.mark_price) == ("BTC", Decimal("0.5"), Decimal(55000),
                                                                            Decimal(60000))
    assert (eth.size, eth.mark_price) == (Decimal(-2), Decimal(3000))  # OKX: 20 contracts × 0.1 ETH, short
    assert btc.unrealized_pnl == Decimal(2500) and eth.unrealized_pnl == Decimal(200)
    if venue == "bybit":  # a cross position of a unified account: Bybit sends liqPrice "" (none of its own)
        assert btc.liquidation_price is None and eth.liquidation_price is None
    else:
        assert btc.liquidation_price == Decimal("36886.67") and eth.liquidation_price == Decimal("4120.93")
    for p in snap.positions:
        _no_floats(p)
    quotes = {q.asset: q for q in snap.prices}
    assert quotes["BTC"].price == Decimal(60000) and quotes["BTC"].source == PriceSourceKind.VENUE_MARK
    assert quotes["ETH"].source_id == f"{venue}:ETH/USDT:USDT"


@pytest.mark.parametrize("venue", VENUES)
def test_every_key_inspected_with_itself(alpha: dict[str, AccountSnapshot], venue: str) -> None:
    snap = alpha[venue]
    creds = {c.id: c for c in snap.credentials}
    assert set(creds) == {"client", "ops", "pb-master", "monitor"}
    assert creds["monitor"].capabilities == {C.READ} and not creds["monitor"].moves_funds
    client = creds["client"]
    assert {C.READ, C.TRADE_SPOT, C.TRADE_FUTURES, C.WITHDRAW} <= client.capabilities
    if venue != "okx":  # OKX keys have no universal-transfer permission to report
        assert C.UNIVERSAL_TRANSFER in client.capabilities
    assert client.ip_restricted is False and creds["ops"].ip_restricted is True
    assert creds["ops"].capabilities >= {C.TRADE_FUTURES, C.WITHDRAW}
    assert all(c.kind == "cex_api_key" and c.details["inspected"] for c in creds.values())
    assert creds["pb-master"].details["is_master"] is (None if venue == "binance" else True)
    assert creds["client"].details["is_master"] is (None if venue == "binance" else False)


@pytest.mark.parametrize("venue", VENUES)
def test_capability_findings(alpha: dict[str, AccountSnapshot], venue: str) -> None:
    snap = alpha[venue]
    client = _codes(snap, f"alpha-{venue}/client")
    assert client[FindingCode.KEY_CAN_WITHDRAW] == Severity.CRITICAL
    assert client[FindingCode.KEY_NOT_IP_BOUND] == Severity.WARNING
    if venue != "okx":
        assert client[FindingCode.KEY_UNIVERSAL_TRANSFER] == Severity.HIGH
    assert _codes(snap, f"alpha-{venue}/monitor") == {FindingCode.KEY_NOT_IP_BOUND: Severity.INFO}
    # operator keys never withdraw outside (this one can, for the withdrawal endpoint tests); they are IP-bound
    assert _codes(snap, f"alpha-{venue}/ops") == {FindingCode.KEY_CAN_WITHDRAW: Severity.CRITICAL}
    assert _codes(snap, f"alpha-{venue}/pb-master") == {FindingCode.MASTER_KEY_IN_USE: Severity.INFO}
    assert all(f.client_id == "alpha" and f.venue == venue for f in snap.findings)


def test_whitelists(alpha: dict[str, AccountSnapshot]) -> None:
    b = alpha["binance"].whitelist
    assert b is not None and b.enabled is True and b.contains("USDT", WL_ADDRESS.upper().replace("0X", "0x"))
    y = alpha["bybit"].whitelist  # read with the operator key: Bybit needs withdraw permission for it
    assert y is not None and y.enabled is True and y.entries[0].address == WL_ADDRESS
    o = alpha["okx"].whitelist
    assert o is not None and o.enabled is None and o.contains("USDT", WL_ADDRESS) is None
    okx_codes = _codes(alpha["okx"], "alpha-okx")
    assert okx_codes == {FindingCode.WHITELIST_UNVERIFIABLE: Severity.WARNING}  # a client key can withdraw
    assert _codes(alpha["binance"], "alpha-binance") == {}


async def test_delta_findings(accounts: dict[str, CexAccountConfig]) -> None:
    async with fast_pool() as pool:
        snaps = {s.account.venue.value: s for s in await collect_many(
            [accounts[f"delta-{v}"] for v in VENUES], pool=pool)}
    for venue, snap in snaps.items():
        assert snap.ok, venue  # a broken key is a capability problem, not a blind account
        elsewhere = next(c for c in snap.credentials if c.id == "elsewhere")
        assert elsewhere.capabilities == {C.UNKNOWN} and elsewhere.details["inspected"] is False
        assert FindingCode.VENUE_AUTH_FAILED in _codes(snap, f"delta-{venue}/elsewhere")
        acct_codes = _codes(snap, f"delta-{venue}")
        if venue == "okx":
            assert FindingCode.WHITELIST_UNVERIFIABLE in acct_codes
        else:
            assert acct_codes[FindingCode.WHITELIST_OFF] == Severity.HIGH  # the operator key can withdraw
            assert snap.whitelist is not None and snap.whitelist.enabled is False
    # expired client key: Binance reports when trading authority expired; Bybit refuses with 33004
    assert FindingCode.KEY_EXPIRED in _codes(snaps["binance"], "delta-binance/client")
    assert isinstance(next(c for c in snaps["binance"].credentials if c.id == "client").expires_at, datetime)
    assert FindingCode.KEY_EXPIRED in _codes(snaps["bybit"], "delta-bybit/client")
    assert next(c for c in snaps["bybit"].credentials if c.id == "client").capabilities == frozenset()
    assert FindingCode.VENUE_AUTH_FAILED in _codes(snaps["okx"], "delta-okx/client")


@pytest.mark.parametrize("venue", ["okx", "bybit"])
async def test_master_key_configured_as_client(accounts: dict[str, CexAccountConfig], venue: str) -> None:
    acct = with_holder(accounts[f"alpha-{venue}"], "pb-master", "client")
    async with fast_pool() as pool:
        snap = await collect(acct, pool=pool)
    assert _codes(snap, f"alpha-{venue}/pb-master")[FindingCode.MASTER_KEY_IN_USE] == Severity.CRITICAL


async def test_collect_many_keeps_order_and_rejects_duplicates(accounts: dict[str, CexAccountConfig]) -> None:
    chosen = [accounts[i] for i in ("alpha-okx", "delta-binance", "alpha-bybit", "alpha-binance")]
    async with fast_pool() as pool:
        snaps = await collect_many(chosen, pool=pool)
        assert [s.account.id for s in snaps] == [a.id for a in chosen]
        with pytest.raises(ConfigError, match="duplicate CEX account id"):
            await collect_many([chosen[0], chosen[0]], pool=pool)


def test_capabilities_report_rows(alpha: dict[str, AccountSnapshot]) -> None:
    rows = capabilities_report(alpha.values())
    json.dumps(rows)  # JSON-ready
    assert len(rows) == 12
    row = next(r for r in rows if r["account"] == "alpha-binance" and r["credential"] == "client")
    assert row["holder"] == "client" and row["moves_funds"] is True and row["whitelist"] == "on"
    assert "withdraw" in row["capabilities"] and "key_can_withdraw" in row["findings"]
    assert {r["whitelist"] for r in rows if r["venue"] == "okx"} == {"unverifiable"}


async def test_balances_feed_the_sweep(accounts: dict[str, CexAccountConfig]) -> None:
    from primeguard.pipeline.collateral import oracle_collateral
    from primeguard.pipeline.collect import collect as sweep_collect

    cfg = PrimeguardConfig(clients=(ClientConfig(id="alpha"),),
                           cex_accounts=tuple(accounts[f"alpha-{v}"] for v in VENUES))
    obs, stats = await sweep_collect(cfg)
    assert stats.accounts == 3 and stats.blind_accounts == 0
    table = oracle_collateral(obs)
    rows = {(r.account_id, r.asset): r.quantity for r in table.rows}
    assert rows[("alpha-binance", "BTC")] == Decimal("1.25") and rows[("alpha-okx", "USDT")] == Decimal(60000)
    assert {q.source for q in obs.prices} == {PriceSourceKind.VENUE_MARK}
