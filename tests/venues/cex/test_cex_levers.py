"""Circuit-breaker levers: cancel orders, close positions within a slippage cap, disable client keys.
Each is idempotent: a second run changes nothing and says so."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tests.venues.cex.conftest import VENUES, scenario_data
from tests.venues.cex.helpers import FAST_PACING_MS, fast_pool

from primeguard.config.schema import CexAccountConfig, ClientConfig, PrimeguardConfig
from primeguard.domain.model import Capability
from primeguard.sandbox.cex.server import CexSimulators
from primeguard.sandbox.scenario import Scenario
from primeguard.venues.cex import collect
from primeguard.venues.cex.binance import UNUSED_IP
from primeguard.venues.cex.levers import (
    NO_POWER,
    CexLeverFailed,
    LeverReport,
    cancel_all_orders,
    client_order_id,
    close_all_positions,
    disable_client_keys,
    limit_price,
    playbook_levers,
)


def _status(r: LeverReport) -> dict[str, str]:
    return {i.target: i.status for i in r.items}


def test_client_order_id_and_limit_price() -> None:
    a = client_order_id("halt_cex-abc", "BTC/USDT:USDT")
    assert a == client_order_id("halt_cex-abc", "BTC/USDT:USDT") and a.startswith("pg") and len(a) == 22
    assert a != client_order_id("halt_cex-abc", "ETH/USDT:USDT") != client_order_id("other", "BTC/USDT:USDT")
    tick = Decimal("0.1")
    assert limit_price(Decimal("60000"), "sell", Decimal("0.02"), tick) == Decimal("58800.0")
    assert limit_price(Decimal("3000.07"), "buy", Decimal("0.01"), tick) == Decimal("3030.0")  # 3030.0707 down
    assert limit_price(Decimal("3000.07"), "sell", Decimal("0.01"), tick) == Decimal("2970.1")  # 2970.0693 up


async def test_binance_missing_permission_is_refined_by_probe(accounts: dict[str, CexAccountConfig]) -> None:
    acct = accounts["alpha-binance"].model_copy(update={"operator": "monitor"})  # a read-only "operator"
    async with fast_pool() as pool:
        r = await cancel_all_orders(acct, "act-perm", pool=pool)
    assert not r.ok and {i.status for i in r.items} == {"failed"}
    assert all("VenuePermissionDenied" in i.detail for i in r.items)


async def test_missing_operator_or_master(accounts: dict[str, CexAccountConfig]) -> None:
    acct = accounts["alpha-okx"]
    no_master = acct.model_copy(update={"credentials": tuple(c for c in acct.credentials if c.id != "pb-master")})
    async with fast_pool() as pool:
        r1 = await close_all_positions(acct.model_copy(update={"operator": None}), "act-x", pool=pool)
        r2 = await disable_client_keys(no_master, "act-x", pool=pool)
    assert not r1.ok and "no operator credential" in r1.items[0].detail
    assert not r2.ok and "holder 'key_admin'" in r2.items[0].detail and NO_POWER in r2.items[0].detail


async def test_slippage_cap_refuses_a_dislocated_book(sims: CexSimulators,
                                                      accounts: dict[str, CexAccountConfig]) -> None:
    for v in VENUES:
        sims.state(v).set_price("BTC", Decimal(60000), last=Decimal(50000))  # last trade 17% under mark
    try:
        async with fast_pool() as pool:
            reports = await asyncio.gather(*(close_all_positions(accounts[f"bravo-{v}"], "act-slip", pool=pool)
                                             for v in VENUES))
    finally:
        for v in VENUES:
            sims.state(v).set_price("BTC", Decimal(60000))
    by = {r.venue: r for r in reports}
    for v in ("binance", "bybit"):  # limit IOC at mark − 2%: nothing fills at 50000
        st = _status(by[v])
        assert st == {"position:BTC/USDT:USDT": "failed", "position:ETH/USDT:USDT": "done"}
        assert "slippage cap" in next(i for i in by[v].items if i.status == "failed").detail
    okx = _status(by["okx"])  # close-position is a market order: refused before sending
    assert okx == {"position:BTC-USDT-SWAP": "failed", "position:ETH-USDT-SWAP": "done"}
    for v in VENUES:  # the long BTC position is still there
        sub = sims.state(v).sub_by_name(accounts[f"bravo-{v}"].sub_account)
        assert sub is not None and sub.positions["BTC"].size == Decimal("0.5") and "ETH" not in sub.positions

    # the same action again: its BTC order exists (expired), so it is never sent twice
    async with fast_pool() as pool:
        again = await close_all_positions(accounts["bravo-bybit"], "act-slip", pool=pool)
    assert "propose a new action" in again.items[0].detail
    sub = sims.state("bybit").sub_by_name(accounts["bravo-bybit"].sub_account)
    assert sub is not None
    assert sum(1 for o in sub.orders if o.client_id == client_order_id("act-slip", "BTC/USDT:USDT")) == 1


async def test_levers_twice_change_nothing_the_second_time(sims: CexSimulators,
                                                          accounts: dict[str, CexAccountConfig]) -> None:
    bravo = [accounts[f"bravo-{v}"] for v in VENUES]

    async def all_levers(action: str) -> list[LeverReport]:
        async with fast_pool() as pool:
            async def one(a: CexAccountConfig) -> list[LeverReport]:
                return [await cancel_all_orders(a, action, pool=pool),
                        await close_all_positions(a, action, pool=pool),
                        await disable_client_keys(a, action, pool=pool)]
            return [r for rs in await asyncio.gather(*(one(a) for a in bravo)) for r in rs]

    first = await all_levers("act-halt-1")
    assert all(r.ok and r.changed for r in first), [r.to_json() for r in first if not r.ok]
    second = await all_levers("act-halt-1")
    assert all(r.ok and not r.changed for r in second)
    assert {i.status for r in second for i in r.items} == {"already_done"}

    for a in bravo:
        st = sims.state(a.venue)
        sub = st.sub_by_name(a.sub_account)
        assert sub is not None and not sub.open_orders() and not sub.positions
    b_key = sims.state("binance").key_by_id("bravo-binance", "client")
    assert b_key.ips == (UNUSED_IP,)
    assert sims.state("okx").key_by_id("bravo-okx", "client").deleted
    assert sims.state("bybit").key_by_id("bravo-bybit", "client").deleted

    async with fast_pool() as pool:  # what the monitor now sees
        snaps = {a.venue: await collect(a, pool=pool) for a in bravo}
    for v in VENUES:  # the pinned / deleted client key, confirmed by key_admin: a key that can do nothing
        client = next(c for c in snaps[v].credentials if c.id == "client")
        assert snaps[v].ok and client.capabilities == frozenset() and client.details["refused"], (v, client)
        assert Capability.UNKNOWN not in client.capabilities


@pytest.fixture(scope="module")
def playbook_world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data = scenario_data()
    data["name"] = "cex-playbook"
    data["clients"] = [c for c in data["clients"] if c["id"] == "bravo"]
    with CexSimulators(Scenario.model_validate(data)) as sims:
        accts = sims.config_accounts(Path(tmp_path_factory.mktemp("pb-secrets")))
        yield sims, PrimeguardConfig(clients=(ClientConfig(id="bravo"),), cex_accounts=tuple(accts))


async def test_playbook_levers(playbook_world: Any) -> None:
    sims, cfg = playbook_world
    levers = playbook_levers(cfg, rate_limit_ms=FAST_PACING_MS)
    assert set(levers) == {"halt_cex", "liquidate_cex", "sell_spot_cex", "sweep_to_master_cex"}
    action = SimpleNamespace(id="liquidate_cex-0123", client_id="bravo",
                             params={"slippage_cap": "0.03", "loan_asset": "USDT"})
    first = await levers["liquidate_cex"](action)
    assert [r["lever"] for r in first["reports"]][:5] == ["cancel_all_orders", "close_all_positions", "sell_spot",
                                                         "sweep_to_master", "disable_client_keys"]
    assert len(first["reports"]) == 15 and all(r["ok"] and r["changed"] for r in first["reports"]), first
    second = await levers["liquidate_cex"](action)
    assert all(r["ok"] and not r["changed"] for r in second["reports"])

    sims.set_faults("okx", sims.state("okx").faults.model_copy(update={"down": True}))
    try:
        with pytest.raises(CexLeverFailed) as info:
            await levers["halt_cex"](SimpleNamespace(id="halt_cex-1", client_id="bravo", params={}))
    finally:
        from primeguard.sandbox.faults import FaultConfig

        sims.set_faults("okx", FaultConfig())
    assert "bravo-okx" in str(info.value) and any(not r.ok for r in info.value.reports)
