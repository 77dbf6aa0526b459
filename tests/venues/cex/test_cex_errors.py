"""Venue refusals become typed errors, by venue code, through ccxt sync and async clients."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest
from tests.venues.cex.conftest import OFF_LIST, VENUES, WL_ADDRESS
from tests.venues.cex.helpers import c, fast_pool, run_with, with_secret

from primeguard.config.schema import CexAccountConfig
from primeguard.domain.errors import (
    AddressNotWhitelisted,
    InsufficientFunds,
    VenueAuthError,
    VenuePermissionDenied,
)
from primeguard.venues.cex.client import point_at
from primeguard.venues.cex.withdraw import submit_withdrawal

MODES = ("sync", "async")
READ = {"binance": "privateGetAccount", "okx": "privateGetAccountBalance", "bybit": "privateGetV5UserQueryApi"}


def _read(acct: CexAccountConfig, cred: str, mode: str) -> Any:
    async def fn(ex: Any) -> Any:
        return await c(getattr(ex, READ[acct.venue])())

    return run_with(acct, cred, mode, fn)


def _withdraw(acct: CexAccountConfig, cred: str, mode: str, address: str, amount: str = "1") -> Any:
    async def fn(ex: Any) -> Any:
        if acct.venue == "binance":
            return await c(ex.sapiPostCapitalWithdrawApply({"coin": "USDT", "address": address, "amount": amount,
                                                            "network": "ETH"}))
        if acct.venue == "okx":
            return await c(ex.privatePostAssetWithdrawal({"ccy": "USDT", "amt": amount, "dest": "4",
                                                          "toAddr": address, "chain": "USDT-ETH"}))
        return await c(ex.privatePostV5AssetWithdrawCreate({"coin": "USDT", "chain": "ETH", "address": address,
                                                            "amount": amount, "timestamp": 1}))

    return run_with(acct, cred, mode, fn)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("venue,code", [("binance", "-1022"), ("okx", "50113"), ("bybit", "10004")])
def test_wrong_signature_is_auth_error(accounts: dict[str, CexAccountConfig], venue: str, code: str, mode: str) -> None:
    acct = with_secret(accounts[f"alpha-{venue}"], "monitor", secret="not-the-secret")
    with pytest.raises(VenueAuthError) as info:
        _read(acct, "monitor", mode)
    assert info.value.code == code and info.value.venue == venue


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("venue,code", [("binance", "-2015"), ("okx", "50111"), ("bybit", "10003")])
def test_unknown_key_is_auth_error(accounts: dict[str, CexAccountConfig], venue: str, code: str, mode: str) -> None:
    acct = with_secret(accounts[f"alpha-{venue}"], "monitor", api_key="no-such-key")
    with pytest.raises(VenueAuthError) as info:
        _read(acct, "monitor", mode)
    assert info.value.code == code


def test_okx_wrong_passphrase(accounts: dict[str, CexAccountConfig]) -> None:
    acct = with_secret(accounts["alpha-okx"], "monitor", passphrase="wrong-phrase")
    with pytest.raises(VenueAuthError) as info:
        _read(acct, "monitor", "async")
    assert info.value.code == "50105"


@pytest.mark.parametrize("venue,code", [("binance", "-1021"), ("okx", "50102"), ("bybit", "10002")])
def test_clock_skew_is_refused(sims: Any, accounts: dict[str, CexAccountConfig], venue: str, code: str) -> None:
    sims.state(venue).clock_offset_ms = 90_000  # our requests look 90 s old to the venue
    with pytest.raises(VenueAuthError) as info:
        _read(accounts[f"alpha-{venue}"], "monitor", "sync")
    assert info.value.code == code


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("venue,code", [("binance", "-2015"), ("okx", "50110"), ("bybit", "10010")])
def test_key_bound_to_other_ip_is_refused(accounts: dict[str, CexAccountConfig], venue: str, code: str,
                                          mode: str) -> None:
    with pytest.raises(VenueAuthError) as info:
        _read(accounts[f"delta-{venue}"], "elsewhere", mode)
    assert info.value.code == code


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("venue,code", [("okx", "50120"), ("bybit", "10005")])
def test_read_only_key_cannot_trade(accounts: dict[str, CexAccountConfig], venue: str, code: str, mode: str) -> None:
    async def fn(ex: Any) -> Any:
        if venue == "okx":
            return await c(ex.privatePostTradeOrder({"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy",
                                                     "ordType": "market", "sz": "1"}))
        return await c(ex.privatePostV5OrderCreate({"category": "linear", "symbol": "BTCUSDT", "side": "Buy",
                                                    "orderType": "Market", "qty": "0.01"}))

    with pytest.raises(VenuePermissionDenied) as info:
        run_with(accounts[f"alpha-{venue}"], "monitor", mode, fn)
    assert info.value.code == code


@pytest.mark.parametrize("mode", MODES)
def test_binance_read_only_key_trading_gets_ambiguous_2015(accounts: dict[str, CexAccountConfig], mode: str) -> None:
    """Binance answers -2015 for a missing permission too; on its own it is an auth error (never
    retried). The adapter's writes refine it with a probe (next test)."""

    async def fn(ex: Any) -> Any:
        return await c(ex.fapiPrivatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                "quantity": "0.01"}))

    with pytest.raises(VenueAuthError) as info:
        run_with(accounts["alpha-binance"], "monitor", mode, fn)
    assert info.value.code == "-2015"


@pytest.mark.parametrize("venue", VENUES)
async def test_key_without_withdraw_permission(accounts: dict[str, CexAccountConfig], venue: str) -> None:
    async with fast_pool() as pool:
        with pytest.raises(VenuePermissionDenied):
            await submit_withdrawal(accounts[f"alpha-{venue}"], "monitor", asset="USDT", amount=Decimal(1),
                                    address=WL_ADDRESS, network="ETH", request_id="w-perm", pool=pool)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("venue,code", [("binance", "-4035"), ("okx", "58207"), ("bybit", "131093")])
def test_withdrawal_off_the_whitelist(accounts: dict[str, CexAccountConfig], venue: str, code: str,
                                      mode: str) -> None:
    with pytest.raises(AddressNotWhitelisted) as info:
        _withdraw(accounts[f"charlie-{venue}"], "client", mode, OFF_LIST)
    assert info.value.code == code
    assert isinstance(info.value, VenuePermissionDenied)


def test_okx_empty_address_book_is_58203(sims: Any, accounts: dict[str, CexAccountConfig]) -> None:
    acct = accounts["charlie-okx"]
    st = sims.state("okx")
    sub = st.sub_by_name(acct.sub_account)
    with st.lock:
        saved, sub.whitelist = sub.whitelist, []
    try:
        with pytest.raises(AddressNotWhitelisted) as info:
            _withdraw(acct, "client", "async", WL_ADDRESS)
        assert info.value.code == "58203"
    finally:
        with st.lock:
            sub.whitelist = saved


@pytest.mark.parametrize("venue,code", [("binance", "-4026"), ("okx", "58350"), ("bybit", "131001")])
async def test_withdrawal_beyond_balance(accounts: dict[str, CexAccountConfig], venue: str, code: str) -> None:
    async with fast_pool() as pool:
        with pytest.raises(InsufficientFunds) as info:
            await submit_withdrawal(accounts[f"charlie-{venue}"], "client", asset="USDT", amount=Decimal(10**9),
                                    address=WL_ADDRESS, network="ETH", request_id="w-big", pool=pool)
    assert info.value.code == code


@pytest.mark.parametrize("venue", VENUES)
async def test_submit_withdrawal_to_whitelisted_address(accounts: dict[str, CexAccountConfig], venue: str) -> None:
    async with fast_pool() as pool:
        wid = await submit_withdrawal(accounts[f"charlie-{venue}"], "client", asset="USDT", amount=Decimal("2.5"),
                                      address=WL_ADDRESS, network="ETH", request_id=f"w-ok-{venue}", pool=pool)
    assert wid


@pytest.mark.parametrize("venue,code", [("binance", "-1002"), ("okx", "50120"), ("bybit", "10005")])
def test_sub_account_key_cannot_manage_keys(accounts: dict[str, CexAccountConfig], venue: str, code: str) -> None:
    acct = accounts[f"charlie-{venue}"]

    async def fn(ex: Any) -> Any:
        if venue == "binance":
            return await c(ex.sapiGetSubAccountList())
        if venue == "okx":
            return await c(ex.privateGetUsersSubaccountApikey({"subAcct": acct.sub_account}))
        return await c(ex.privateGetV5UserQuerySubMembers())

    with pytest.raises(VenuePermissionDenied) as info:
        run_with(acct, "ops", "sync", fn)
    assert info.value.code == code


# --- the ccxt traps this adapter exists to avoid ---------------------------------------------------------


def _vanilla_binance(acct: CexAccountConfig, api_key: str, secret: str) -> Any:
    ex = ccxt.binance({"apiKey": api_key, "secret": secret, "options": {"fetchMarkets": {"types": ["spot"]}}})
    point_at(ex, "binance", acct.base_url)
    return ex


def test_trap_plain_ccxt_loses_4035_on_a_local_host(sims: Any, accounts: dict[str, CexAccountConfig]) -> None:
    acct = accounts["charlie-binance"]
    key = sims.state("binance").key_by_id(acct.id, "client")
    ex = _vanilla_binance(acct, key.api_key, key.secret)
    with pytest.raises(ccxt.ExchangeError) as info:
        ex.sapiPostCapitalWithdrawApply({"coin": "USDT", "address": OFF_LIST, "amount": "1", "network": "ETH"})
    assert not isinstance(info.value, ccxt.PermissionDenied)  # ccxt: a bare ExchangeError
    with pytest.raises(AddressNotWhitelisted):  # ours: typed by code
        _withdraw(acct, "client", "sync", OFF_LIST)


def test_trap_plain_ccxt_calls_revoked_key_ddos(sims: Any, accounts: dict[str, CexAccountConfig]) -> None:
    acct = accounts["charlie-binance"]
    st = sims.state("binance")
    key = st.key_by_id(acct.id, "spare2")
    ex = _vanilla_binance(acct, key.api_key, key.secret)
    ex.privateGetAccount()  # a successful private call first
    with st.lock:
        key.deleted = True
    try:
        with pytest.raises(ccxt.DDoSProtection):  # ccxt: looks retryable
            ex.privateGetAccount()
        with pytest.raises(VenueAuthError) as info:  # ours: an auth error, never retried
            _read(acct, "spare2", "sync")
        assert info.value.code == "-2015" and not info.value.retryable
    finally:
        with st.lock:
            key.deleted = False
