"""Every account mode, read correctly: from bodies recorded on the real venues (normalizers) and
from the simulators through the collector (OKX net and long/short; Binance one-way and hedge,
cross, isolated and multi-asset; Bybit one-way and hedge, cross and isolated)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from tests.venues.cex.helpers import fast_pool
from tests.venues.cex.recorded_shapes import body

from primeguard.config.schema import CexAccountConfig
from primeguard.domain.model import Capability
from primeguard.domain.observation import AccountSnapshot
from primeguard.sandbox.cex.server import CexSimulators
from primeguard.sandbox.scenario import Scenario
from primeguard.venues.cex import binance, bybit, collect_many, okx
from primeguard.venues.cex import normalize as nz
from primeguard.venues.cex.client import MarketBook, MarketInfo

AT = datetime(2026, 1, 1, tzinfo=UTC)


def book(venue: str, *markets: tuple[str, str, str]) -> MarketBook:
    infos = [MarketInfo(sym, mid, "swap", sym.split("/")[0], "USDT", "USDT", Decimal("0.01"), Decimal("0.01"),
                        Decimal(size)) for sym, mid, size in markets]
    return MarketBook(venue, {m.symbol: m for m in infos}, {("swap", m.id): m for m in infos})


# --- recorded bodies ------------------------------------------------------------------------------

BYBIT_BOOK = book("bybit", ("LTC/USDT:USDT", "LTCUSDT", "1"))


def _bybit_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = body("bybit", "position_list")["result"]["list"][0]
    row.update(changes)
    return row


@pytest.mark.parametrize("trade_mode", ["1", 1])  # "1" is how ccxt delivers Bybit's JSON number 1
def test_bybit_isolated_position_from_recorded_body(trade_mode: Any) -> None:
    read = nz.MonitorRead()
    bybit.positions("a", [_bybit_row(tradeMode=trade_mode)], BYBIT_BOOK, AT, read)
    (p,) = read.positions
    assert p.margin_mode == "isolated"  # old code compared tradeMode == 1 and read "1" as cross
    assert (p.size, p.entry_price, p.liquidation_price) == (Decimal("1.2"), Decimal("64.59947917"), None)


def test_bybit_recorded_cross_position_and_isolated_account() -> None:
    read = nz.MonitorRead()
    bybit.positions("a", [_bybit_row()], BYBIT_BOOK, AT, read)
    assert read.positions[0].margin_mode == "cross" and read.positions[0].liquidation_price is None  # liqPrice ""
    info = body("bybit", "account_info")
    assert bybit.account_margin(info) == "cross"
    info["result"]["marginMode"] = "ISOLATED_MARGIN"
    read = nz.MonitorRead()
    bybit.positions("a", [_bybit_row()], BYBIT_BOOK, AT, read, account_margin=bybit.account_margin(info))
    assert read.positions[0].margin_mode == "isolated"


def test_bybit_hedge_mode_legs_from_recorded_body() -> None:
    long = _bybit_row(positionIdx="1")
    short = _bybit_row(positionIdx="2", side="Sell", size="0.4")
    read = nz.MonitorRead()
    bybit.positions("a", [long, short], BYBIT_BOOK, AT, read)
    assert sorted(p.size for p in read.positions) == [Decimal("-0.4"), Decimal("1.2")]


def test_bybit_documented_permission_vocabulary_is_known() -> None:
    info = bybit.key_info(body("bybit", "query_api"))  # docs example: Earn, NFT, CopyTrading, Exchange...
    assert Capability.UNKNOWN not in info.capabilities, info.details["unknown_permissions"]
    assert info.details["unknown_permissions"] == []
    assert {Capability.TRADE_FUTURES, Capability.INTERNAL_TRANSFER, Capability.UNIVERSAL_TRANSFER} <= info.capabilities
    assert Capability.WITHDRAW not in info.capabilities and info.is_master is True


@pytest.mark.parametrize("group,item", [("FiatP2P", "FiatP2POrder"), ("FiatBybitPay", "FaitPayOrder"),
                                        ("Wallet", "Withdraw")])
def test_bybit_permissions_that_move_money_out(group: str, item: str) -> None:
    raw = body("bybit", "query_api")
    raw["result"]["permissions"][group] = [item]
    assert Capability.WITHDRAW in bybit.key_info(raw).capabilities


def test_bybit_truly_unknown_permission_is_unknown() -> None:
    raw = body("bybit", "query_api")
    raw["result"]["permissions"]["Wallet"] = ["TeleportFunds"]
    info = bybit.key_info(raw)
    assert Capability.UNKNOWN in info.capabilities and info.details["unknown_permissions"] == ["Wallet.TeleportFunds"]


OKX_BOOK = book("okx", ("LTC/USDT:USDT", "LTC-USDT-SWAP", "1"))


def test_okx_long_short_mode_position_from_recorded_body() -> None:
    resp = body("okx", "positions_long_cross")
    short = dict(resp["data"][0], posSide="short", pos="3")
    resp["data"].append(short)
    read = nz.MonitorRead()
    okx.positions("a", resp, OKX_BOOK, AT, read)
    sizes = sorted(p.size for p in read.positions)
    assert sizes == [Decimal(-3), Decimal(2)]  # long/short mode: pos is positive, posSide gives the sign
    assert all(p.margin_mode == "cross" and p.liquidation_price is None for p in read.positions)  # liqPx ""


def test_okx_isolated_position_from_recorded_body() -> None:
    resp = body("okx", "positions_isolated_newest")
    read = nz.MonitorRead()
    okx.positions("a", resp, book("okx", ("BTC/USD:BTC", "BTC-USD-SWAP", "100")), AT, read)
    (p,) = read.positions
    assert p.margin_mode == "isolated" and p.liquidation_price == Decimal("69536.6125000014")


BINANCE_BOOK = book("binance", ("BTC/USDT:USDT", "BTCUSDT", "1"))


def _risk_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = body("binance", "position_risk_v3")[0]
    row.update(changes)
    return row


def test_binance_isolated_position_from_recorded_body() -> None:
    # The recorded v3 row is cross ("isolatedMargin"/"isolatedWallet" "0"); an isolated position
    # carries its own margin there (Binance docs), the rest of the row unchanged.
    read = nz.MonitorRead()
    binance.positions("a", [_risk_row(isolatedMargin="8.10511886", isolatedWallet="7.59405208")], BINANCE_BOOK,
                         AT, read)
    assert read.positions[0].margin_mode == "isolated"
    read = nz.MonitorRead()
    binance.positions("a", [_risk_row()], BINANCE_BOOK, AT, read)
    assert read.positions[0].margin_mode == "cross" and read.positions[0].size == Decimal("0.009")


def test_binance_hedge_mode_and_margin_type_rows() -> None:
    read = nz.MonitorRead()
    rows = [_risk_row(positionSide="LONG"), _risk_row(positionSide="SHORT", positionAmt="-0.004"),
            _risk_row(positionSide="BOTH", marginType="isolated", positionAmt="0.001")]
    binance.positions("a", rows, BINANCE_BOOK, AT, read)
    assert [(p.size, p.margin_mode) for p in read.positions] == [
        (Decimal("0.009"), "cross"), (Decimal("-0.004"), "cross"), (Decimal("0.001"), "isolated")]


def test_binance_recorded_balances_bounded_and_multi_asset() -> None:
    fut = body("binance", "fapi_account_v3")  # USDT: walletBalance 3.73, initialMargin 7.59 (shared margin)
    fut["assets"].append(dict(fut["assets"][0], asset="BTC", walletBalance="0.01", initialMargin="0"))
    out = binance.balances("a", body("binance", "spot_account"), fut, AT)
    usdm = {b.asset: b for b in out if b.source == "binance:usdm"}
    assert usdm["USDT"].locked == usdm["USDT"].quantity == Decimal("3.72964781")  # old code: 7.59444356
    assert usdm["BTC"].quantity == Decimal("0.01")


def test_bybit_recorded_balance() -> None:
    read = nz.MonitorRead()
    bybit.balances("a", body("bybit", "wallet_balance"), AT, read)
    (usdt,) = read.balances
    assert usdt.locked == Decimal("42") + Decimal("50.61831144")


# --- simulators in every mode, through the collector ------------------------------------------------

VARIANTS: dict[str, dict[str, Any]] = {
    "oneway-cross": {},
    "hedge-cross": {"position_mode": "hedge"},
    "oneway-iso": {"margin_mode": "isolated"},
    "hedge-iso": {"position_mode": "hedge", "margin_mode": "isolated"},
}


def _scenario() -> Scenario:
    clients = []
    for cid, modes in VARIANTS.items():
        accts = []
        for venue in ("binance", "okx", "bybit"):
            positions = [{"symbol": "BTC/USDT:USDT", "size": "0.5", "entry_price": "55000"},
                         {"symbol": "ETH/USDT:USDT", "size": "-2", "entry_price": "3100"}]
            if modes.get("position_mode") == "hedge":
                positions.append({"symbol": "BTC/USDT:USDT", "size": "-0.2", "entry_price": "61000"})
            extra = dict(modes)
            futures = {"USDT": "50000"}
            if venue == "binance" and cid == "hedge-iso":
                extra["multi_assets"] = True
                futures["BTC"] = "0.25"
            accts.append({"venue": venue, "spot": {"USDT": "1000"}, "futures": futures, "positions": positions,
                          "keys": [{"id": "client", "spot": True}], **extra})
        clients.append({"id": cid, "cex": accts})
    return Scenario.model_validate({"name": "cex-modes", "feeds": [{"asset": "BTC", "answer": "60000"},
                                                                  {"asset": "ETH", "answer": "3000"}],
                                    "clients": clients})


@pytest.fixture(scope="module")
def snaps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, AccountSnapshot]]:
    sims = CexSimulators(_scenario())
    sims.start()
    try:
        accounts: list[CexAccountConfig] = sims.config_accounts(tmp_path_factory.mktemp("modes-secrets"))

        async def go() -> list[AccountSnapshot]:
            async with fast_pool() as pool:
                return await collect_many(accounts, pool=pool)

        yield {s.account.id: s for s in asyncio.run(go())}
    finally:
        sims.stop()


@pytest.mark.parametrize("venue", ["binance", "okx", "bybit"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_simulated_modes_read_correctly(snaps: dict[str, AccountSnapshot], variant: str, venue: str) -> None:
    snap = snaps[f"{variant}-{venue}"]
    assert snap.ok, [f.message for f in snap.findings]
    modes = VARIANTS[variant]
    legs = sorted((p.instrument, p.size) for p in snap.positions)
    expected = [("BTC/USDT:USDT", Decimal("0.5")), ("ETH/USDT:USDT", Decimal(-2))]
    if modes.get("position_mode") == "hedge":
        expected.append(("BTC/USDT:USDT", Decimal("-0.2")))
    assert legs == sorted(expected)
    want = modes.get("margin_mode", "cross")
    assert {p.margin_mode for p in snap.positions} == {want}
    if venue == "binance" and variant == "hedge-iso":  # multi-asset margin: BTC in the futures wallet counts
        assert any(b.asset == "BTC" and b.source == "binance:usdm" for b in snap.balances)
