"""Liquidation levers on the three CEX simulators with real ccxt over sockets: the PB's key roles
(operator: trade and sweep to the master, never withdraw; key_admin: manage keys, nothing else),
spot collateral sold into the loan asset in slices within a slippage cap, freed collateral swept
to the master account, every lever idempotent, and a credential lacking a lever's power reported
per item and as a critical finding."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tests.venues.cex.conftest import VENUES
from tests.venues.cex.helpers import FAST_PACING_MS, fast_pool, with_holder, with_secret

from primeguard.config.schema import CexAccountConfig, ClientConfig, PrimeguardConfig
from primeguard.domain.errors import VenuePermissionDenied
from primeguard.domain.findings import FindingCode, Severity
from primeguard.pipeline.reports import credential_json
from primeguard.playbooks.engine import ActionSpec, Playbook
from primeguard.sandbox.cex.server import CexSimulators
from primeguard.sandbox.cex.state import SimAccount
from primeguard.sandbox.scenario import Scenario
from primeguard.store import repos
from primeguard.store.db import open_store
from primeguard.venues.cex.binance import UNUSED_IP
from primeguard.venues.cex.capabilities import capabilities_report
from primeguard.venues.cex.collect import collect
from primeguard.venues.cex.levers import (
    NO_POWER,
    CexLeverFailed,
    LeverReport,
    cancel_all_orders,
    client_order_id,
    close_all_positions,
    disable_client_keys,
    playbook_levers,
    sell_spot_collateral,
    sweep_to_master,
)
from primeguard.venues.cex.registry import exchange_for

CLIENT = {"id": "client", "spot": True, "futures": True, "ip_whitelist": ["127.0.0.1"]}
OPS = {"id": "ops", "holder": "operator", "spot": True, "margin": True, "futures": True, "internal_transfer": True,
       "universal_transfer": True, "ip_whitelist": ["127.0.0.1"]}
KEY_ADMIN = {"id": "pb-keys", "holder": "key_admin", "ip_whitelist": ["127.0.0.1"]}
KEYS = [CLIENT, OPS, KEY_ADMIN]
MAX_NOTIONAL = Decimal("50000")  # USDT per spot slice: 2.5 BTC at ~58,800 takes three slices


def _acct(venue: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "venue": venue, "spot": {"BTC": "2.5", "ETH": "4", "USDT": "1000"}, "futures": {"USDT": "50000"},
        "positions": [{"symbol": "BTC/USDT:USDT", "size": "0.5", "entry_price": "55000"}],
        "orders": [{"symbol": "BTC/USDT:USDT", "side": "buy", "amount": "0.1", "price": "50000"},
                   {"symbol": "ETH/USDT", "side": "sell", "amount": "0.5", "price": "3500", "market": "spot"},
                   {"symbol": "BTC/USDT", "side": "buy", "amount": "0.01", "price": "40000", "market": "margin"}],
        "keys": KEYS,
    }
    base.update(kw)
    return base


def _scenario() -> dict[str, Any]:
    """``echo``: the whole liquidation; ``golf``: the slippage cap; ``hotel``: a resumed sale;
    ``india``: credentials lacking power; ``juliet``: the playbook engine; ``kilo``: halt, then liquidate;
    ``lima``: canary secrets."""
    small = {"spot": {"ETH": "3"}, "positions": [], "orders": []}
    return {
        "name": "cex-liquidate",
        "feeds": [{"asset": "BTC", "answer": "60000"}, {"asset": "ETH", "answer": "3000"}],
        "clients": [{"id": c, "cex": [_acct(v, **(small if c in ("golf", "hotel") else {})) for v in VENUES]}
                    for c in ("echo", "golf", "hotel", "india", "juliet", "kilo", "lima")],
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CexSimulators, dict[str, CexAccountConfig]]]:
    with CexSimulators(Scenario.model_validate(_scenario())) as sims:
        accts = sims.config_accounts(Path(tmp_path_factory.mktemp("liq-secrets")))
        yield sims, {a.id: a for a in accts}


def _sub(sims: CexSimulators, acct: CexAccountConfig) -> SimAccount:
    sub = sims.state(acct.venue).sub_by_name(acct.sub_account)
    assert sub is not None
    return sub


def _st(r: LeverReport) -> set[str]:
    return {i.status for i in r.items}


async def _liquidate(accounts: list[CexAccountConfig], action: str) -> list[LeverReport]:
    async with fast_pool() as pool:
        async def one(a: CexAccountConfig) -> list[LeverReport]:
            return [await cancel_all_orders(a, action, pool=pool),
                    await close_all_positions(a, action, pool=pool),
                    await sell_spot_collateral(a, action, loan_asset="USDT", max_order_notional=MAX_NOTIONAL,
                                               pool=pool),
                    await sweep_to_master(a, action, assets=("USDT",), pool=pool),
                    await disable_client_keys(a, action, pool=pool)]
        return [r for rs in await asyncio.gather(*(one(a) for a in accounts)) for r in rs]


async def test_every_lever_twice_the_second_run_changes_nothing(world: Any) -> None:
    sims, accts = world
    echo = [accts[f"echo-{v}"] for v in VENUES]
    masters_before = {v: sims.state(v).master.spot.get("USDT", Decimal(0)) for v in VENUES}

    first = await _liquidate(echo, "liquidate_cex-echo")
    assert all(r.ok and r.changed for r in first), [r.to_json() for r in first if not (r.ok and r.changed)]
    assert {i.target for i in first[0].items} == {"spot:ETHUSDT", "margin:BTCUSDT", "futures:BTCUSDT"}  # binance
    for a in echo:
        st, sub = sims.state(a.venue), _sub(sims, a)
        assert not sub.open_orders() and not sub.positions
        assert sub.spot.get("BTC", Decimal(0)) < Decimal("0.001") and sub.spot.get("ETH", Decimal(0)) < Decimal("0.001")
        sells = [o for o in sub.orders if o.market == "spot" and o.side == "sell" and o.client_id.startswith("pg")]
        btc = [o for o in sells if o.symbol == "BTC/USDT"]
        assert len(btc) == 3 and sum(o.filled for o in btc) == Decimal("2.5")  # sliced...
        assert all(o.amount * o.price <= MAX_NOTIONAL for o in sells)  # ...by the maximum order size
        assert all(o.price >= Decimal("58800") for o in btc)  # limit at mark × (1 − 2 %)
        assert len(st.transfers) == 1 and st.transfers[0].to_uid == st.master.uid
        assert st.master.spot["USDT"] - masters_before[a.venue] == st.transfers[0].amount > Decimal(50000)
        assert sub.spot.get("USDT", Decimal(0)) == sub.futures.get("USDT", Decimal(0)) == 0  # both wallets swept
    assert sims.state("binance").key_by_id("echo-binance", "client").ips == (UNUSED_IP,)
    assert sims.state("okx").key_by_id("echo-okx", "client").deleted
    assert sims.state("bybit").key_by_id("echo-bybit", "client").deleted

    orders = {a.venue: len(_sub(sims, a).orders) for a in echo}
    second = await _liquidate(echo, "liquidate_cex-echo")
    assert all(r.ok and not r.changed for r in second), [r.to_json() for r in second if r.changed]
    assert {i.status for r in second for i in r.items} == {"already_done"}
    assert {a.venue: len(_sub(sims, a).orders) for a in echo} == orders
    assert all(len(sims.state(v).transfers) == 1 for v in VENUES)


async def test_slippage_cap_refuses_a_price_too_far_from_mark(world: Any) -> None:
    sims, accts = world
    golf = [accts[f"golf-{v}"] for v in VENUES]
    for v in VENUES:
        sims.state(v).set_price("ETH", Decimal(3000), last=Decimal(2850))  # the book 5 % under the mark
    try:
        async with fast_pool() as pool:
            reports = await asyncio.gather(*(sell_spot_collateral(a, "act-golf", loan_asset="USDT", pool=pool)
                                             for a in golf))
    finally:
        for v in VENUES:
            sims.state(v).set_price("ETH", Decimal(3000))
    for a, r in zip(golf, reports, strict=True):
        assert [(i.target, i.status) for i in r.items] == [("spot:ETH#0", "failed")]
        assert "filled 0 of 3 ETH within the 0.02 slippage cap (limit 2940" in r.items[0].detail
        assert _sub(sims, a).spot["ETH"] == Decimal(3)  # nothing sold


async def test_a_resumed_sale_never_sells_twice(world: Any) -> None:
    sims, accts = world
    for v in VENUES:
        a = accts[f"hotel-{v}"]
        async with fast_pool() as pool:  # a crash right after slice 0 went out: 1 of 3 ETH sold
            ex = pool.exchange(a, "ops")
            market = (await pool.markets(a)).spot("ETH", "USDT")
            assert market is not None
            cid0 = client_order_id("act-hotel", "spot:ETH#0")
            await exchange_for(v).place_spot_sell(ex, market, Decimal(1), Decimal(2940), cid0)
            r = await sell_spot_collateral(a, "act-hotel", loan_asset="USDT", max_order_notional=Decimal(6000),
                                           pool=pool)
        assert [(i.target, i.status) for i in r.items] == [("spot:ETH#0", "already_done"), ("spot:ETH#1", "done")]
        sub = _sub(sims, a)
        assert sub.spot["ETH"] == 0 and sum(o.filled for o in sub.orders if o.symbol == "ETH/USDT") == Decimal(3)


async def test_the_pb_roles_are_refused_beyond_their_power(world: Any) -> None:
    """key_admin cannot trade or transfer, operator cannot withdraw or manage keys: the venues'
    own codes, classified as VenuePermissionDenied."""
    sims, accts = world
    codes = {"binance": ("-2015", "-1002"), "okx": ("50120", "50120"), "bybit": ("10005", "10005")}
    for v in VENUES:
        a, exchange = accts[f"india-{v}"], exchange_for(v)
        async with fast_pool() as pool:
            admin, ops = pool.exchange(a, "pb-keys"), pool.exchange(a, "ops")
            market = (await pool.markets(a)).spot("BTC", "USDT")
            assert market is not None
            refused = [
                (exchange.place_spot_sell(admin, market, Decimal(1), Decimal(50000), "pgadmin0"), codes[v][0]),
                (exchange.transfer_to_master(admin, a, "USDT", Decimal(1), "0" * 32), None),
                (exchange.submit_withdrawal(ops, asset="USDT", amount=Decimal(1), network="ETH",
                                            address="0x1111111111111111111111111111111111111111",
                                            request_id="pgwd0"), codes[v][0]),
            ]
            for call, code in refused:
                with pytest.raises(VenuePermissionDenied) as info:
                    await call
                assert code is None or info.value.code == code, (v, info.value)
        keys = await disable_client_keys(with_holder(a, "pb-keys", "monitor"), "act-india", pool=None)
        assert not keys.ok  # no key_admin: nothing tried
        ops_as_admin = with_holder(with_holder(a, "pb-keys", "monitor"), "ops", "key_admin")
        r = await disable_client_keys(ops_as_admin, "act-india")
        assert _st(r) == {"failed"}
        assert all(f"credential ops {NO_POWER} to disable the client's key" in i.detail for i in r.items)
        assert all(f"VenuePermissionDenied: [{v} {codes[v][1]}]" in i.detail for i in r.items), r.to_json()
    assert sims.state("binance").key_by_id("india-binance", "client").ips != (UNUSED_IP,)

    # a trading key without transfer power as the operator: the sweep says what it could not move
    for v in VENUES:
        a = accts[f"india-{v}"].model_copy(update={"operator": "client"})
        r = await sweep_to_master(a, "act-india", assets=("USDT",))
        failed = [i for i in r.items if i.status == "failed"]
        assert failed and failed[-1].target == "transfer:USDT", r.to_json()
        assert all(f"credential client {NO_POWER} to" in i.detail for i in failed)
        assert f"{NO_POWER} to move USDT to the master account" in failed[-1].detail
        assert not [t for t in sims.state(v).transfers if t.from_uid == _sub(sims, a).uid]


async def test_a_lever_lacking_power_is_a_critical_finding(world: Any, tmp_path: Path) -> None:
    sims, accts = world
    juliet = tuple(with_holder(with_holder(accts[f"juliet-{v}"], "pb-keys", "monitor"), "ops", "key_admin")
                   for v in VENUES)  # the operator key configured as the key admin
    cfg = PrimeguardConfig(clients=(ClientConfig(id="juliet"),), cex_accounts=juliet)
    store = open_store(f"sqlite:///{tmp_path / 'pb.db'}", migrate=True)
    book = Playbook(store, playbook_levers(cfg, rate_limit_ms=FAST_PACING_MS))
    spec = ActionSpec("halt_cex", "juliet", episode="juliet:halt:1", mode="automatic")
    book.propose([spec])
    [row] = await book.run_ready()
    assert row.state == "failed" and "CexLeverFailed" in (row.error or "")
    with store.session() as s:
        found = [f for f in repos.open_findings(s, client_id="juliet") if f.code == FindingCode.LEVER_LACKS_POWER]
    assert {f.subject for f in found} == {f"juliet-{v}/disable_client_keys/key:client" for v in VENUES}
    assert all(f.severity == Severity.CRITICAL and "credential ops lacks the power" in f.message for f in found)
    for a in juliet:  # the orders were still cancelled: one refused lever does not stop the others
        assert not _sub(sims, a).open_orders()

    with pytest.raises(CexLeverFailed):  # the same lever again: the same refusal, nothing else changes
        await playbook_levers(cfg, rate_limit_ms=FAST_PACING_MS)["halt_cex"](row)


async def test_the_inventory_shows_each_credentials_levers(world: Any) -> None:
    """The key admin lives on the master account without a master-key finding; every row names
    the levers its holder runs."""
    _, accts = world
    async with fast_pool() as pool:
        snaps = [await collect(accts[f"india-{v}"], pool=pool) for v in VENUES]
    rows = {(r["venue"], r["credential"]): r for r in capabilities_report(snaps)}
    for v in VENUES:
        admin, ops = rows[(v, "pb-keys")], rows[(v, "ops")]
        assert admin["holder"] == "key_admin" and admin["levers"] == ["disable_client_keys"]
        assert admin["is_master"] is (None if v == "binance" else True) and admin["findings"] == []
        assert admin["capabilities"] == ["read"]
        assert ops["levers"] == ["cancel_all_orders", "close_all_positions", "sell_spot", "sweep_to_master"]
        assert "withdraw" not in ops["capabilities"] and ops["findings"] == []
        assert rows[(v, "client")]["levers"] == []
    client_of = {a.id: a.client for a in accts.values()}  # the same in `primeguard capabilities --json`
    cli = {(c.account_id, c.id): credential_json(c, client_of)["levers"] for s in snaps for c in s.credentials}
    assert cli[("india-okx", "pb-keys")] == ["disable_client_keys"] and cli[("india-okx", "monitor")] == []


async def test_liquidate_after_halt_still_acts_with_the_operator_key(world: Any) -> None:
    """Halting unplugs only the client's keys: the PB's operator key can still cancel, close, sell
    and sweep at the liquidate rung (a frozen sub-account would refuse it)."""
    sims, accts = world
    kilo = tuple(accts[f"kilo-{v}"] for v in VENUES)
    levers = playbook_levers(PrimeguardConfig(clients=(ClientConfig(id="kilo"),), cex_accounts=kilo),
                             rate_limit_ms=FAST_PACING_MS)
    halt = await levers["halt_cex"](SimpleNamespace(id="halt_cex-kilo", client_id="kilo", params={}))
    assert all(r["ok"] for r in halt["reports"])
    action = SimpleNamespace(id="liquidate_cex-kilo", client_id="kilo", params={"loan_asset": "USDT"})
    liq = await levers["liquidate_cex"](action)
    assert {r["lever"]: r["changed"] for r in liq["reports"]} == {
        "cancel_all_orders": False, "close_all_positions": True, "sell_spot": True, "sweep_to_master": True,
        "disable_client_keys": False}
    for a in kilo:
        sub = _sub(sims, a)
        assert not sub.open_orders() and not sub.positions and not sub.frozen
        assert all(q < Decimal("0.001") for q in sub.spot.values()) and sub.futures.get("USDT", 0) == 0
        assert sims.state(a.venue).key_by_id(a.id, "client").deleted or a.venue == "binance"


CANARY = "CANARY-lever-5e2c91-never-print-me"
CANARY_PASS = "CANARY-lever-pass-77d0"


async def test_lever_reports_logs_and_errors_carry_no_secret(world: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The PB's own keys are canaries (operator and key admin): a whole liquidation, a key admin
    that lacks power, and a signature the venue refuses leave no secret in the lever reports, their
    JSON, the errors or the DEBUG logs of ccxt, aiohttp and primeguard."""
    sims, accts = world
    caplog.set_level(logging.DEBUG)
    for name in ("ccxt", "aiohttp", "primeguard", "urllib3"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    saved = []
    lima = []
    for v in VENUES:
        a, st = accts[f"lima-{v}"], sims.state(v)
        phrase = {"passphrase": CANARY_PASS} if v == "okx" else {}
        for cred in ("ops", "pb-keys"):
            key = st.key_by_id(a.id, cred)
            saved.append((st, key, key.material))
            with st.lock:
                key.material = dataclasses.replace(key.material, secret=CANARY + cred, **phrase)
            a = with_secret(a, cred, secret=CANARY + cred, **phrase)
        lima.append(a)
    seen: list[str] = []
    try:
        reports = await _liquidate(lima, "liquidate_cex-lima")
        assert all(r.ok for r in reports), [r.to_json() for r in reports if not r.ok]
        refused = await asyncio.gather(*(disable_client_keys(with_holder(with_holder(a, "pb-keys", "monitor"), "ops",
                                                                         "key_admin"), "act-lima") for a in lima))
        assert all(not r.ok for r in refused)  # the operator's error text is in the report
        wrong = [with_secret(a, "ops", secret=CANARY + "-wrong") for a in lima]
        for a in wrong:
            try:
                seen.append(repr(await sweep_to_master(a, "act-lima-wrong", assets=("USDT",))))
            except CexLeverFailed as exc:
                seen += [str(exc), repr(exc), repr(exc.__cause__)]
        for r in [*reports, *refused]:
            seen += [repr(r), str(r.to_json())]
        seen += [repr(lima), repr(wrong)]
    finally:
        for st, key, material in saved:
            with st.lock:
                key.material = material
    blob = "\n".join(seen) + "\n" + caplog.text
    assert "lima" in blob and "lacks the power" in blob and "act-lima-wrong" in blob  # the levers log nothing today
    secrets = [CANARY, CANARY_PASS] + [k.secret for v in VENUES for k in sims.state(v).keys.values()]
    for secret in secrets:
        assert secret not in blob
