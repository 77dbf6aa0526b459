"""Levers on hedge-mode accounts (Binance hedge mode, OKX long/short mode, Bybit hedge mode).

Each leg is closed on its own, naming the venue's position side (Binance ``positionSide``, OKX
``posSide``, Bybit ``positionIdx``); the simulators refuse a close without it, with the venue's
code (Binance -4061, and -1106 for ``reduceOnly`` in hedge mode; OKX 51000; Bybit 10001), as the
venues do. A second run changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from tests.venues.cex.helpers import fast_pool, run_with

from primeguard.config.schema import CexAccountConfig
from primeguard.domain.errors import VenueError
from primeguard.sandbox.cex.server import CexSimulators
from primeguard.sandbox.scenario import Scenario
from primeguard.venues.cex import collect
from primeguard.venues.cex.levers import LeverReport, cancel_all_orders, client_order_id, close_all_positions

VENUES = ("binance", "okx", "bybit")
KEYS = [{"id": "client", "spot": True, "futures": True},
        {"id": "ops", "holder": "operator", "spot": True, "futures": True, "ip_whitelist": ["127.0.0.1"]}]
LEGS = [{"symbol": "BTC/USDT:USDT", "size": "0.5", "entry_price": "55000"},
        {"symbol": "BTC/USDT:USDT", "size": "-0.3", "entry_price": "61000"},
        {"symbol": "ETH/USDT:USDT", "size": "-2", "entry_price": "3100"}]
ORDERS = [{"symbol": "BTC/USDT:USDT", "side": "buy", "amount": "0.1", "price": "50000"}]


def _scenario() -> Scenario:
    def acct(venue: str) -> dict[str, Any]:
        return {"venue": venue, "spot": {"USDT": "1000"}, "futures": {"USDT": "50000"}, "positions": LEGS,
                "orders": ORDERS, "keys": KEYS, "position_mode": "hedge"}

    return Scenario.model_validate({
        "name": "cex-hedge", "feeds": [{"asset": "BTC", "answer": "60000"}, {"asset": "ETH", "answer": "3000"}],
        "clients": [{"id": cid, "cex": [acct(v) for v in VENUES]} for cid in ("flat", "probe")]})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CexSimulators, dict[str, CexAccountConfig]]]:
    sims = CexSimulators(_scenario())
    sims.start()
    try:
        accounts = {a.id: a for a in sims.config_accounts(tmp_path_factory.mktemp("hedge-secrets"))}
        yield sims, accounts
    finally:
        sims.stop()


def _legs(venue: str) -> set[str]:
    key = {"okx": ("BTC-USDT-SWAP", "ETH-USDT-SWAP")}.get(venue, ("BTC/USDT:USDT", "ETH/USDT:USDT"))
    return {f"position:{key[0]}#long", f"position:{key[0]}#short", f"position:{key[1]}#short"}


async def _flatten(accounts: list[CexAccountConfig], action: str) -> list[tuple[LeverReport, LeverReport]]:
    async with fast_pool() as pool:
        async def one(a: CexAccountConfig) -> tuple[LeverReport, LeverReport]:
            return (await cancel_all_orders(a, action, pool=pool),
                    await close_all_positions(a, action, slippage_cap=Decimal("0.03"), pool=pool))
        return list(await asyncio.gather(*(one(a) for a in accounts)))


def test_flatten_a_hedge_account_on_every_venue_twice(world: tuple[CexSimulators, dict[str, CexAccountConfig]]) -> None:
    sims, accounts = world
    flat = [accounts[f"flat-{v}"] for v in VENUES]
    for a in flat:  # both legs of BTC and the short ETH leg are open
        sub = sims.state(a.venue).sub_by_name(a.sub_account)
        assert sub is not None and len(sub.positions) == 3

    first = asyncio.run(_flatten(flat, "act-hedge-1"))
    for a, (cancel, close) in zip(flat, first, strict=True):
        assert cancel.ok and cancel.changed, cancel.to_json()
        assert close.ok and close.changed, close.to_json()
        assert {i.target for i in close.items} == _legs(a.venue)
        assert {i.status for i in close.items} == {"done"}
        ids = {i.order_id for i in close.items}
        assert len(ids) == 3  # one client order id per leg, never shared by the two BTC legs
        sub = sims.state(a.venue).sub_by_name(a.sub_account)
        assert sub is not None and not sub.positions and not sub.open_orders()
    orders_after_first = {a.venue: len(sims.state(a.venue).sub_by_name(a.sub_account).orders)  # type: ignore[union-attr]
                          for a in flat}

    second = asyncio.run(_flatten(flat, "act-hedge-1"))
    for a, (cancel, close) in zip(flat, second, strict=True):
        assert cancel.ok and not cancel.changed and close.ok and not close.changed
        assert {i.status for r in (cancel, close) for i in r.items} == {"already_done"}
        sub = sims.state(a.venue).sub_by_name(a.sub_account)
        assert sub is not None and not sub.positions and len(sub.orders) == orders_after_first[a.venue]

    async def read() -> list[Any]:
        async with fast_pool() as pool:
            return [await collect(a, pool=pool) for a in flat]

    for snap in asyncio.run(read()):  # what the monitor sees: flat
        assert snap.ok and snap.positions == ()


def _refusal(acct: CexAccountConfig, call: Any) -> VenueError:
    async def go(ex: Any) -> Any:
        return await call(ex)

    with pytest.raises(VenueError) as info:
        run_with(acct, "ops", "async", go)
    return info.value


def test_simulators_refuse_a_hedge_close_without_the_side(
        world: tuple[CexSimulators, dict[str, CexAccountConfig]]) -> None:
    sims, accounts = world
    one_way_close = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "IOC", "quantity": "0.5",
                     "price": "58800", "reduceOnly": "true"}
    err = _refusal(accounts["probe-binance"], lambda ex: ex.fapiPrivatePostOrder(dict(one_way_close)))
    assert err.code == "-4061"  # position side (BOTH) does not match the account's setting
    err = _refusal(accounts["probe-binance"], lambda ex: ex.fapiPrivatePostOrder(
        {**one_way_close, "positionSide": "LONG"}))
    assert err.code == "-1106"  # reduceOnly is refused in hedge mode
    err = _refusal(accounts["probe-okx"], lambda ex: ex.privatePostTradeClosePosition(
        {"instId": "BTC-USDT-SWAP", "mgnMode": "cross"}))
    assert err.code == "51000"  # Parameter posSide error
    err = _refusal(accounts["probe-bybit"], lambda ex: ex.privatePostV5OrderCreate(
        {"category": "linear", "symbol": "BTCUSDT", "side": "Sell", "orderType": "Limit", "qty": "0.5",
         "price": "58800", "timeInForce": "IOC", "reduceOnly": True}))
    assert err.code == "10001"  # position idx not match position mode
    for v in VENUES:  # nothing moved
        sub = sims.state(v).sub_by_name(accounts[f"probe-{v}"].sub_account)
        assert sub is not None and len(sub.positions) == 3


def test_hedge_client_order_ids_differ_per_leg() -> None:
    assert client_order_id("a", "BTC/USDT:USDT#long") != client_order_id("a", "BTC/USDT:USDT#short")
    assert client_order_id("a", "BTC/USDT:USDT") == client_order_id("a", "BTC/USDT:USDT")
