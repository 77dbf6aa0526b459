"""Every simulator endpoint the adapter uses, called through real ccxt clients, sync and async.

The clients are ccxt's own classes (with primeguard's error classification mixed in) talking HTTP to
the simulators, which verify each request's signature, timestamp, IP binding and permissions.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from tests.venues.cex.conftest import WL_ADDRESS
from tests.venues.cex.helpers import c, run_with

from primeguard.config.schema import CexAccountConfig
from primeguard.venues.cex.client import public_key_of

MODES = ("sync", "async")


def _okx_ok(r: Any) -> list[Any]:
    assert r["code"] == "0", r
    return r["data"]


def _bybit_ok(r: Any) -> Any:
    assert str(r["retCode"]) == "0", r
    return r["result"]


# --- public endpoints + market loading --------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_public_time_and_markets(accounts: dict[str, CexAccountConfig], mode: str) -> None:
    async def binance(ex: Any) -> None:
        # ccxt hands implicit-method numbers over as strings
        assert int((await c(ex.publicGetTime()))["serverTime"]) > 0
        assert int((await c(ex.fapiPublicGetTime()))["serverTime"]) > 0
        markets = await c(ex.load_markets())
        assert {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"} <= set(markets)
        assert ex.market("BTC/USDT:USDT")["precision"]["price"] == 0.1  # PRICE_FILTER parsed

    async def okx(ex: Any) -> None:
        assert int(_okx_ok(await c(ex.publicGetPublicTime()))[0]["ts"]) > 0
        markets = await c(ex.load_markets())
        assert markets["BTC/USDT:USDT"]["contractSize"] == 0.01
        assert _okx_ok(await c(ex.publicGetPublicInstruments({"instType": "SWAP"})))[0]["ctType"] == "linear"

    async def bybit(ex: Any) -> None:
        assert int(_bybit_ok(await c(ex.publicGetV5MarketTime()))["timeSecond"]) > 0
        markets = await c(ex.load_markets())
        assert {"BTC/USDT", "BTC/USDT:USDT"} <= set(markets)
        res = _bybit_ok(await c(ex.publicGetV5MarketInstrumentsInfo({"category": "linear"})))
        assert res["nextPageCursor"] == "" and res["list"][0]["lotSizeFilter"]["qtyStep"] == "0.001"

    for venue, fn in (("binance", binance), ("okx", okx), ("bybit", bybit)):
        run_with(accounts[f"alpha-{venue}"], None, mode, fn)


# --- reads with the monitor key -------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_binance_reads(accounts: dict[str, CexAccountConfig], mode: str) -> None:
    async def fn(ex: Any) -> None:
        spot = await c(ex.privateGetAccount())
        assert {b["asset"]: b["free"] for b in spot["balances"]}["BTC"] == "1.25000000"
        assert {b["asset"]: b["locked"] for b in spot["balances"]}["ETH"] == "0.50000000"  # open sell order
        fut = await c(ex.fapiPrivateV3GetAccount())
        assert fut["assets"][0]["walletBalance"] == "50000.00000000" and "totalMarginBalance" in fut
        risk = await c(ex.fapiPrivateV3GetPositionRisk())
        assert {r["symbol"]: r["positionAmt"] for r in risk} == {"BTCUSDT": "0.5", "ETHUSDT": "-2"}
        assert all(Decimal(r["liquidationPrice"]) > 0 for r in risk)
        brackets = await c(ex.fapiPrivateGetLeverageBracket())
        assert str(brackets[0]["brackets"][0]["initialLeverage"]) == "125"
        assert [o["symbol"] for o in await c(ex.fapiPrivateGetOpenOrders())] == ["BTCUSDT"]
        assert [o["symbol"] for o in await c(ex.privateGetOpenOrders())] == ["ETHUSDT"]
        r = await c(ex.sapiGetAccountApiRestrictions())
        assert r["enableReading"] is True and r["enableWithdrawals"] is False and r["ipRestrict"] is False
        wl = await c(ex.sapiGetCapitalWithdrawAddressList())
        assert wl[0]["address"] == WL_ADDRESS and wl[0]["whiteStatus"] is True
        # ccxt's unified parsers accept the simulator's shapes (leverageBracket, then v3 positionRisk)
        await c(ex.load_markets())
        positions = await c(ex.fetch_positions())
        assert sorted((p["symbol"], p["side"]) for p in positions) == [("BTC/USDT:USDT", "long"),
                                                                      ("ETH/USDT:USDT", "short")]
        bal = await c(ex.fetch_balance({"type": "future"}))
        assert bal["USDT"]["total"] == 52700  # ccxt's unified total is the margin balance: uPnL included

    run_with(accounts["alpha-binance"], "monitor", mode, fn)


@pytest.mark.parametrize("mode", MODES)
def test_okx_reads(accounts: dict[str, CexAccountConfig], mode: str) -> None:
    async def fn(ex: Any) -> None:
        bal = _okx_ok(await c(ex.privateGetAccountBalance()))[0]
        assert {d["ccy"]: d["cashBal"] for d in bal["details"]} == {"BTC": "1.25", "ETH": "1", "USDT": "60000"}
        pos = _okx_ok(await c(ex.privateGetAccountPositions()))
        assert {p["instId"]: p["pos"] for p in pos} == {"BTC-USDT-SWAP": "50", "ETH-USDT-SWAP": "-20"}
        cfg = _okx_ok(await c(ex.privateGetAccountConfig()))[0]
        assert cfg["perm"] == "read_only" and cfg["ip"] == "" and cfg["uid"] != cfg["mainUid"]
        pending = _okx_ok(await c(ex.privateGetTradeOrdersPending()))
        assert sorted(o["instId"] for o in pending) == ["BTC-USDT-SWAP", "ETH-USDT"]
        one = _okx_ok(await c(ex.privateGetTradeOrder({"instId": pending[0]["instId"],
                                                         "ordId": pending[0]["ordId"]})))
        assert one[0]["state"] == "live"
        await c(ex.load_markets())
        positions = await c(ex.fetch_positions())
        assert sorted((p["symbol"], p["side"], p["contracts"]) for p in positions) == [
            ("BTC/USDT:USDT", "long", 50.0), ("ETH/USDT:USDT", "short", 20.0)]

    run_with(accounts["alpha-okx"], "monitor", mode, fn)


@pytest.mark.parametrize("mode", MODES)
def test_bybit_reads(accounts: dict[str, CexAccountConfig], mode: str) -> None:
    async def fn(ex: Any) -> None:
        wallet = _bybit_ok(await c(ex.privateGetV5AccountWalletBalance({"accountType": "UNIFIED"})))
        coins = {x["coin"]: x["walletBalance"] for x in wallet["list"][0]["coin"]}
        assert coins == {"BTC": "1.25", "ETH": "1", "USDT": "60000"}
        pos = _bybit_ok(await c(ex.privateGetV5PositionList({"category": "linear", "settleCoin": "USDT"})))
        assert {(p["symbol"], p["side"], p["size"]) for p in pos["list"]} == {("BTCUSDT", "Buy", "0.5"),
                                                                            ("ETHUSDT", "Sell", "2")}
        orders = _bybit_ok(await c(ex.privateGetV5OrderRealtime({"category": "linear", "settleCoin": "USDT"})))
        assert [o["symbol"] for o in orders["list"]] == ["BTCUSDT"]
        api = _bybit_ok(await c(ex.privateGetV5UserQueryApi()))
        assert str(api["readOnly"]) == "1" and api["ips"] == ["*"] and api["isMaster"] is False and api["secret"] == ""
        await c(ex.load_markets())
        positions = await c(ex.fetch_positions(None, {"settleCoin": "USDT"}))
        assert sorted((p["symbol"], p["side"]) for p in positions) == [("BTC/USDT:USDT", "long"),
                                                                      ("ETH/USDT:USDT", "short")]

    run_with(accounts["alpha-bybit"], "monitor", mode, fn)

    async def addresses(ex: Any) -> None:  # the address book needs a key with withdraw permission
        rows = _bybit_ok(await c(ex.privateGetV5AssetWithdrawQueryAddress()))["rows"]
        assert rows[0]["address"] == WL_ADDRESS and str(rows[0]["verified"]) == "1"

    run_with(accounts["alpha-bybit"], "ops", mode, addresses)


# --- writes: orders, cancels, withdrawals, key management ------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_binance_writes(accounts: dict[str, CexAccountConfig], mode: str) -> None:
    acct = accounts["charlie-binance"]
    cid = f"t-{mode}"

    async def trade(ex: Any) -> None:
        o = await c(ex.privatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                         "quantity": "0.01", "price": "1000", "newClientOrderId": cid}))
        assert o["status"] == "NEW" and o["clientOrderId"] == cid
        assert (await c(ex.privateGetOrder({"symbol": "BTCUSDT", "origClientOrderId": cid})))["status"] == "NEW"
        assert (await c(ex.privateDeleteOrder({"symbol": "BTCUSDT", "origClientOrderId": cid})))["status"] == "CANCELED"
        await c(ex.privatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                     "quantity": "0.01", "price": "1000"}))
        gone = await c(ex.privateDeleteOpenOrders({"symbol": "BTCUSDT"}))
        assert [x["status"] for x in gone] == ["CANCELED"]
        f = await c(ex.fapiPrivatePostOrder({"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                             "quantity": "0.1", "price": "1000", "newClientOrderId": cid}))
        assert f["status"] == "NEW" and f["reduceOnly"] is False
        got = await c(ex.fapiPrivateGetOrder({"symbol": "ETHUSDT", "origClientOrderId": cid}))
        assert got["orderId"] == f["orderId"]
        done = await c(ex.fapiPrivateDeleteAllOpenOrders({"symbol": "ETHUSDT"}))
        assert str(done["code"]) == "200"
        w = await c(ex.sapiPostCapitalWithdrawApply({"coin": "USDT", "address": WL_ADDRESS, "amount": "1",
                                                     "network": "ETH"}))
        assert len(w["id"]) == 32

    run_with(acct, "client", mode, trade)
    spare = "spare1" if mode == "sync" else "spare2"
    spare_key = public_key_of(acct, spare)

    async def manage(ex: Any) -> None:
        subs = await c(ex.sapiGetSubAccountList())
        assert acct.sub_account in [s["email"] for s in subs["subAccounts"]]
        q = {"email": acct.sub_account, "subAccountApiKey": spare_key}
        assert (await c(ex.sapiGetSubAccountSubAccountApiIpRestriction(dict(q))))["ipRestrict"] == "false"
        r = await c(ex.sapiV2PostSubAccountSubAccountApiIpRestriction({**q, "status": "2", "ipAddress": "127.0.0.1"}))
        assert r["ipList"] == ["127.0.0.1"]

    run_with(acct, "pb-master", mode, manage)


def test_binance_broker_delete_key(sims: Any, accounts: dict[str, CexAccountConfig]) -> None:
    acct = accounts["charlie-binance"]
    st = sims.state("binance")
    sub = st.sub_by_name(acct.sub_account)
    key = st.key_by_id(acct.id, "reader")

    async def fn(ex: Any) -> None:
        await c(ex.sapiDeleteBrokerSubAccountApi({"subAccountId": sub.uid, "subAccountApiKey": key.api_key}))

    run_with(acct, "pb-master", "sync", fn)
    assert key.deleted


@pytest.mark.parametrize("mode", MODES)
def test_okx_writes(sims: Any, accounts: dict[str, CexAccountConfig], mode: str) -> None:
    acct = accounts["charlie-okx"]
    cid = f"t{mode}"

    async def trade(ex: Any) -> None:
        placed = _okx_ok(await c(ex.privatePostTradeOrder({"instId": "BTC-USDT", "tdMode": "cash", "side": "buy",
                                                            "ordType": "limit", "sz": "0.01", "px": "1000",
                                                            "clOrdId": cid})))
        assert placed[0]["sCode"] == "0"
        batch = [{"instId": "BTC-USDT", "ordId": placed[0]["ordId"]}]
        res = _okx_ok(await c(ex.privatePostTradeCancelBatchOrders(batch)))
        assert res[0]["sCode"] == "0"
        # open a position, then close it with close-position
        _okx_ok(await c(ex.privatePostTradeOrder({"instId": "ETH-USDT-SWAP", "tdMode": "cross", "side": "buy",
                                                   "ordType": "market", "sz": "1", "clOrdId": cid + "open"})))
        closed = _okx_ok(await c(ex.privatePostTradeClosePosition({"instId": "ETH-USDT-SWAP", "mgnMode": "cross",
                                                                    "clOrdId": cid + "close"})))
        assert closed[0]["instId"] == "ETH-USDT-SWAP"
        wd = _okx_ok(await c(ex.privatePostAssetWithdrawal({"ccy": "USDT", "amt": "1", "dest": "4",
                                                             "toAddr": WL_ADDRESS, "chain": "USDT-ETH"})))
        assert wd[0]["wdId"]

    run_with(acct, "client", mode, trade)
    spare = "spare1" if mode == "sync" else "spare2"
    spare_key = public_key_of(acct, spare)

    async def manage(ex: Any) -> None:
        q = {"subAcct": acct.sub_account, "apiKey": spare_key}
        assert _okx_ok(await c(ex.privateGetUsersSubaccountApikey(dict(q))))[0]["apiKey"] == spare_key
        mod = _okx_ok(await c(ex.privatePostUsersSubaccountModifyApikey({**q, "ip": "127.0.0.1"})))
        assert mod[0]["ip"] == "127.0.0.1"
        assert _okx_ok(await c(ex.privatePostUsersSubaccountDeleteApikey(dict(q))))[0]["subAcct"] == acct.sub_account
        assert _okx_ok(await c(ex.privateGetUsersSubaccountApikey(dict(q)))) == []

    run_with(acct, "pb-master", mode, manage)


@pytest.mark.parametrize("mode", MODES)
def test_bybit_writes(sims: Any, accounts: dict[str, CexAccountConfig], mode: str) -> None:
    acct = accounts["charlie-bybit"]
    link = f"t-{mode}"

    async def trade(ex: Any) -> None:
        _bybit_ok(await c(ex.privatePostV5OrderCreate({"category": "linear", "symbol": "ETHUSDT", "side": "Buy",
                                                       "orderType": "Limit", "qty": "0.1", "price": "1000",
                                                       "timeInForce": "GTC", "orderLinkId": link})))
        got = _bybit_ok(await c(ex.privateGetV5OrderRealtime({"category": "linear", "orderLinkId": link})))
        assert got["list"][0]["orderStatus"] == "New"
        res = _bybit_ok(await c(ex.privatePostV5OrderCancelAll({"category": "linear", "settleCoin": "USDT"})))
        assert link in [x["orderLinkId"] for x in res["list"]]
        wd = _bybit_ok(await c(ex.privatePostV5AssetWithdrawCreate({"coin": "USDT", "chain": "ETH",
                                                                   "address": WL_ADDRESS, "amount": "1",
                                                                   "timestamp": 1})))
        assert wd["id"]

    run_with(acct, "client", mode, trade)

    async def manage(ex: Any) -> None:
        members = _bybit_ok(await c(ex.privateGetV5UserQuerySubMembers()))["subMembers"]
        assert any(m["uid"] == acct.sub_account and str(m["status"]) == "1" for m in members)
        _bybit_ok(await c(ex.privatePostV5UserFrozenSubMember({"subuid": acct.sub_account, "frozen": 1})))
        members = _bybit_ok(await c(ex.privateGetV5UserQuerySubMembers()))["subMembers"]
        assert any(m["uid"] == acct.sub_account and str(m["status"]) == "4" for m in members)
        _bybit_ok(await c(ex.privatePostV5UserFrozenSubMember({"subuid": acct.sub_account, "frozen": 0})))

    run_with(acct, "pb-master", mode, manage)
