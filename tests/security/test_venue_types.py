"""N-13: venue normalizers fail closed on values that are not of the documented type.

A key flag that is not exactly the documented type is *unknown*: the key is treated as able to do
everything (``Capability.UNKNOWN``; IP binding / master status ``None``) and the field is listed in
``type_errors`` (the collector turns that into a VENUE_BAD_RESPONSE finding). A malformed body is
:class:`VenueBadResponse`, never a bare KeyError/TypeError.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from primeguard.domain.errors import VenueBadResponse
from primeguard.domain.model import Capability
from primeguard.venues.cex import binance, bybit, okx
from primeguard.venues.cex import normalize as nz
from primeguard.venues.cex.client import MarketBook, MarketInfo

REC = Path(__file__).resolve().parent.parent / "venues" / "cex" / "recorded"
AT = datetime(2026, 1, 1, tzinfo=UTC)


def body(venue: str, name: str) -> Any:
    return copy.deepcopy(json.loads((REC / f"{venue}.json").read_text())[name]["body"])


# --- Binance apiRestrictions ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["true", 1, "1", None])
def test_binance_withdraw_flag_of_wrong_type_is_unknown(value: Any) -> None:
    raw = body("binance", "api_restrictions")
    raw["enableWithdrawals"] = value
    info = binance.key_info(raw)
    assert Capability.UNKNOWN in info.capabilities  # old code: silently "cannot withdraw"
    assert "enableWithdrawals" in info.type_errors


@pytest.mark.parametrize("value", ["false", "true", 0, None])
def test_binance_ip_restrict_of_wrong_type_is_unknown(value: Any) -> None:
    raw = body("binance", "api_restrictions")
    raw["ipRestrict"] = value
    info = binance.key_info(raw)
    assert info.ip_restricted is None  # old code: bool("false") == True, "IP-bound"
    assert "ipRestrict" in info.type_errors


def test_binance_documented_types_read_exactly() -> None:
    info = binance.key_info(body("binance", "api_restrictions"))
    assert info.type_errors == () and info.ip_restricted is False
    assert Capability.UNKNOWN not in info.capabilities and Capability.WITHDRAW not in info.capabilities
    assert Capability.UNIVERSAL_TRANSFER in info.capabilities


@pytest.mark.parametrize("raw", [[], "x", {"enableReading": True},
                                 {"ipRestrict": True, "tradingAuthorityExpirationTime": "soon"}])
def test_binance_malformed_restrictions(raw: Any) -> None:
    if isinstance(raw, dict) and "ipRestrict" in raw:
        assert "tradingAuthorityExpirationTime" in binance.key_info(raw).type_errors
    else:
        with pytest.raises(VenueBadResponse):
            binance.key_info(raw)


# --- OKX account/config -----------------------------------------------------------------------------


@pytest.mark.parametrize("drop", ["uid", "mainUid"])
def test_okx_missing_uid_is_unknown_master(drop: str) -> None:
    raw = body("okx", "config")
    del raw["data"][0][drop]
    info = okx.key_info(raw)
    assert info.is_master is None  # old code: "not master"
    assert drop in info.type_errors


def test_okx_recorded_master_key_is_master() -> None:
    info = okx.key_info(body("okx", "config"))
    assert info.is_master is True and info.type_errors == () and info.ip_restricted is False
    assert Capability.WITHDRAW in info.capabilities


@pytest.mark.parametrize("field,value", [("perm", ["trade"]), ("perm", None), ("ip", None), ("ip", ["1.2.3.4"])])
def test_okx_wrong_types_are_unknown(field: str, value: Any) -> None:
    raw = body("okx", "config")
    raw["data"][0][field] = value
    info = okx.key_info(raw)
    assert field in info.type_errors
    if field == "perm":
        assert Capability.UNKNOWN in info.capabilities
    else:
        assert info.ip_restricted is None


@pytest.mark.parametrize("raw", [{"code": "0", "data": {}}, {"code": "0", "data": [[]]}, {"code": "0"}, []])
def test_okx_malformed_config(raw: Any) -> None:
    with pytest.raises(VenueBadResponse):
        okx.key_info(raw)


# --- Bybit query-api --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["missing", "true", 1, None])
def test_bybit_is_master_of_wrong_type_is_unknown(value: Any) -> None:
    raw = body("bybit", "query_api")
    if value == "missing":
        del raw["result"]["isMaster"]
    else:
        raw["result"]["isMaster"] = value
    info = bybit.key_info(raw)
    assert info.is_master is None  # old code: bool(missing) == False, "not master"
    assert "isMaster" in info.type_errors


@pytest.mark.parametrize("field,value", [("readOnly", "yes"), ("readOnly", True), ("ips", "*"),
                                         ("permissions", ["Withdraw"])])
def test_bybit_wrong_types_are_unknown(field: str, value: Any) -> None:
    raw = body("bybit", "query_api")
    raw["result"][field] = value
    info = bybit.key_info(raw)
    assert field in info.type_errors
    if field == "ips":
        assert info.ip_restricted is None
    else:
        assert Capability.UNKNOWN in info.capabilities


@pytest.mark.parametrize("raw", [{"retCode": 0, "result": []}, {"retCode": 0},
                                 {"retCode": 0, "result": {"readOnly": 0}}])
def test_bybit_malformed_query_api(raw: Any) -> None:
    with pytest.raises(VenueBadResponse):
        bybit.key_info(raw)


# --- malformed account bodies: VenueBadResponse, never a bare KeyError/TypeError --------------------

BTC = MarketInfo("BTC/USDT:USDT", "BTCUSDT", "swap", "BTC", "USDT", "USDT", Decimal("0.1"), Decimal("0.001"),
                 Decimal(1))
BOOK = MarketBook("binance", {BTC.symbol: BTC}, {("swap", BTC.id): BTC})


@pytest.mark.parametrize("call", [
    lambda: binance.balances("a", {"balances": None}, {"assets": []}, AT),
    lambda: binance.balances("a", {}, {"assets": []}, AT),
    lambda: binance.balances("a", {"balances": [{"asset": "BTC"}]}, {"assets": []}, AT),
    lambda: binance.positions("a", {"symbol": "BTCUSDT"}, BOOK, AT, nz.MonitorRead()),
    lambda: binance.positions("a", [{"symbol": "BTCUSDT"}], BOOK, AT, nz.MonitorRead()),
    lambda: okx.balances("a", {"code": "0", "data": [{"details": None, "totalEq": "1"}]}, AT, nz.MonitorRead()),
    lambda: okx.balances("a", {"code": "0", "data": [{"totalEq": "1"}]}, AT, nz.MonitorRead()),
    lambda: okx.positions("a", {"code": "0", "data": [{"instId": "X"}]}, BOOK, AT, nz.MonitorRead()),
    lambda: okx.positions("a", {"code": "0", "data": None}, BOOK, AT, nz.MonitorRead()),
    lambda: bybit.balances("a", {"retCode": 0, "result": {"list": [{"coin": 5}]}}, AT, nz.MonitorRead()),
    lambda: bybit.balances("a", {"retCode": 0, "result": {}}, AT, nz.MonitorRead()),
    lambda: bybit.positions("a", [{"size": "1"}], BOOK, AT, nz.MonitorRead()),
    lambda: bybit.positions("a", [None], BOOK, AT, nz.MonitorRead()),
    lambda: bybit.whitelist({"retCode": 0, "result": {"rows": [{"verified": 1}]}}),
    lambda: binance.whitelist([{"whiteStatus": True}]),
])
def test_malformed_bodies_are_bad_venue_responses(call: Any) -> None:
    with pytest.raises(VenueBadResponse):
        call()


@pytest.mark.parametrize("mode", ["2", 2, "isolated", None, True])
def test_bybit_trade_mode_outside_0_1_is_a_bad_response(mode: Any) -> None:
    row = body("bybit", "position_list")["result"]["list"][0]
    row["symbol"], row["tradeMode"] = "BTCUSDT", mode
    with pytest.raises(VenueBadResponse):
        bybit.positions("a", [row], BOOK, AT, nz.MonitorRead())


def test_locked_never_exceeds_holdings_on_recorded_okx_balance() -> None:
    read = nz.MonitorRead()
    okx.balances("a", body("okx", "balance"), AT, read)  # USDT: cashBal 0.000258796, frozenBal 441.02
    usdt = next(b for b in read.balances if b.asset == "USDT")
    assert usdt.quantity == Decimal("0.000258796") and usdt.locked == usdt.quantity  # old code: 441.02


# --- through the collector: an undocumented type is a finding and an unknown key, never a crash -----

OVERRIDES: dict[str, dict[str, Any]] = {
    "binance": {"enableWithdrawals": "true", "ipRestrict": "false"},
    "okx": {"uid": None},  # None: the field is absent
    "bybit": {"isMaster": None},
}


@pytest.fixture(scope="module")
def typed_snaps(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import asyncio

    from primeguard.sandbox.cex.server import CexSimulators
    from primeguard.sandbox.scenario import Scenario
    from primeguard.venues.cex import collect_many
    from tests.venues.cex.helpers import fast_pool

    sc = Scenario.model_validate({"name": "venue-types", "feeds": [], "clients": [{"id": "t", "cex": [
        {"venue": v, "spot": {"USDT": "100"}, "keys": [{"id": "client", "spot": True}]}
        for v in ("binance", "okx", "bybit")]}]})
    sims = CexSimulators(sc)
    sims.start()
    try:
        accounts = sims.config_accounts(tmp_path_factory.mktemp("types-secrets"))
        for a in accounts:
            st = sims.state(a.venue)
            st.key_answer_overrides[st.key_by_id(a.sub_account, "client").api_key] = OVERRIDES[a.venue]

        async def go() -> Any:
            async with fast_pool() as pool:
                return await collect_many(accounts, pool=pool)

        yield {s.account.venue.value: s for s in asyncio.run(go())}
    finally:
        sims.stop()


@pytest.mark.parametrize("venue", ["binance", "okx", "bybit"])
def test_collector_reports_undocumented_types(typed_snaps: Any, venue: str) -> None:
    from primeguard.domain.findings import FindingCode

    snap = typed_snaps[venue]
    assert snap.ok  # the account itself was read
    cred = next(c for c in snap.credentials if c.id == "client")
    finding = next(f for f in snap.findings if f.subject.endswith("/client") and
                   f.code == FindingCode.VENUE_BAD_RESPONSE)
    assert set(finding.details["fields"]) >= set(OVERRIDES[venue])
    if venue == "binance":
        assert Capability.UNKNOWN in cred.capabilities and cred.ip_restricted is None
    else:
        assert cred.details["is_master"] is None
