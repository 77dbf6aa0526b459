"""Bybit: a unified-account sub-member, its keys, its address book, its levers.

Everything Bybit-specific lives here (see :mod:`primeguard.venues.cex.exchange` for the interface).
Facts this module relies on:

- ccxt's ``urls['api']`` keys (spot, futures, v2, public, private) are all the base URL.
- Answers are enveloped ``{"retCode", "retMsg", "result"}``; ``33004`` = the key has expired.
- The address book (``/v5/asset/withdraw/query-address``) can only be read with a key that has the
  withdraw permission.
- Positions are listed per settle coin (USDT, USDC), paged by ``nextPageCursor``; hedge mode
  gives ``positionIdx`` 1 (buy side) and 2 (sell side) legs, and a close must name the leg.
- Levers: ``cancel-all`` per category; closes are limit IOC reduce-only orders; the key lever deletes
  each client key of the sub-member (``/v5/user/delete-sub-api`` with a master-account key). It does
  not freeze the sub-member: a frozen sub-member refuses every write, the PB's operator key's too,
  so liquidation after a halt could no longer cancel, close, sell or sweep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from primeguard.config.schema import CexAccountConfig
from primeguard.domain.errors import (
    AddressNotWhitelisted,
    InsufficientFunds,
    VenueAuthError,
    VenueBadResponse,
    VenueError,
    VenuePermissionDenied,
    VenueRateLimited,
    VenueUnavailable,
)
from primeguard.domain.model import Balance, Capability, Holder, Position, VenueKind
from primeguard.domain.money import decimal_str, to_decimal
from primeguard.domain.observation import WhitelistEntry, WhitelistStatus
from primeguard.venues.cex.errors import DuplicateClientOrderId, ReduceOnlyRejected, VenueNotFound
from primeguard.venues.cex.exchange import (
    CexExchange,
    CloseFill,
    ErrorKind,
    LeverItem,
    OpenPosition,
    PublicKeyOf,
    WhitelistAccess,
    fail_item,
    hedge_key,
    limit_guard,
)
from primeguard.venues.cex.markets import MarketBook, MarketInfo
from primeguard.venues.cex.normalize import (
    ZERO,
    KeyInfo,
    MonitorRead,
    as_list,
    bounded,
    dec,
    envelope,
    flag01,
    mark_quote,
    ms_time,
    opt_dec,
    shape,
)

NAME = "bybit"
SETTLE_COINS: tuple[str, ...] = ("USDT", "USDC")

CODES: dict[int, ErrorKind] = {
    10006: VenueRateLimited, 10018: VenueRateLimited, 10016: VenueUnavailable, 10019: VenueUnavailable,
    10002: VenueAuthError, 10003: VenueAuthError, 10004: VenueAuthError, 10007: VenueAuthError,
    10008: VenueAuthError, 10009: VenueAuthError, 10010: VenueAuthError, 33004: VenueAuthError,
    10005: VenuePermissionDenied, 10024: VenuePermissionDenied, 10027: VenuePermissionDenied,
    131093: AddressNotWhitelisted, 131001: InsufficientFunds, 131212: InsufficientFunds,
    110007: InsufficientFunds, 110004: InsufficientFunds, 110072: DuplicateClientOrderId, 110001: VenueNotFound,
    131207: VenueNotFound, 110017: ReduceOnlyRejected,
}


def result(resp: Any) -> Any:
    """The ``result`` payload of a Bybit answer. Raises VenueBadResponse when there is none."""
    return envelope(resp, "result", NAME)


# --- normalizers (pure) --------------------------------------------------------------------------------


@shape(NAME)
def balances(account_id: str, resp: Any, at: datetime, read: MonitorRead) -> None:
    """``/v5/account/wallet-balance`` (unified account) in coin units; locked = ``locked`` +
    position IM, bounded by the wallet balance."""
    rows = as_list(result(resp)["list"], "list", NAME)
    for acct in rows:
        if acct.get("totalEquity") not in (None, ""):
            read.equity_usd = str(dec(acct["totalEquity"], "totalEquity"))
        for c in as_list(acct["coin"], "coin", NAME):
            wallet = dec(c["walletBalance"], "walletBalance")  # excludes unrealized PnL
            if wallet != 0:
                locked = (opt_dec(c.get("locked"), "locked") or ZERO) + (opt_dec(c.get("totalPositionIM"), "IM")
                                                                          or ZERO)
                read.balances.append(Balance(account_id, str(c["coin"]), wallet, at, "bybit:unified",
                                             locked=bounded(locked, wallet)))


ACCOUNT_MARGIN: dict[str, str] = {"ISOLATED_MARGIN": "isolated", "REGULAR_MARGIN": "cross",
                                  "PORTFOLIO_MARGIN": "cross"}


@shape(NAME)
def account_margin(resp: Any) -> str:
    """``/v5/account/info`` ``marginMode`` of a unified account: ``isolated`` or ``cross``."""
    mode = result(resp)["marginMode"]
    if mode not in ACCOUNT_MARGIN:
        raise VenueBadResponse(f"marginMode {str(mode)[:20]!r} is not a documented value", venue=NAME)
    return ACCOUNT_MARGIN[mode]


def _checked_side(r: Mapping[str, Any]) -> tuple[str, str]:
    """(side, positionIdx) of a position row, consistent with each other."""
    side = str(r.get("side", ""))
    if side not in ("Buy", "Sell"):
        raise VenueBadResponse(f"position side {side[:10]!r} is neither Buy nor Sell", venue=NAME)
    idx = r.get("positionIdx", 0)
    mismatched = (str(idx), side) in (("1", "Sell"), ("2", "Buy"))
    if str(idx) not in ("0", "1", "2") or isinstance(idx, bool) or mismatched:
        raise VenueBadResponse(f"positionIdx {str(idx)[:6]!r} does not fit side {side}", venue=NAME)
    return side, str(idx)


@shape(NAME)
def positions(account_id: str, rows: list[dict[str, Any]], book: MarketBook, at: datetime,
              read: MonitorRead, account_margin: str | None = None) -> None:
    """``/v5/position/list`` rows, one-way (``positionIdx`` 0) or hedge mode (1 buy side, 2 sell
    side); sizes in base units, signed by ``side``. ``tradeMode`` 1 (JSON number or, through ccxt,
    the string ``"1"``) is isolated; an account in isolated margin mode makes every position
    isolated."""
    for r in as_list(rows, "list", NAME):
        size = dec(r["size"], "size")
        if size == 0:
            continue
        side, _ = _checked_side(r)
        trade_mode = flag01(r["tradeMode"]) if "tradeMode" in r else 0
        if trade_mode is None:
            raise VenueBadResponse(f"tradeMode {str(r['tradeMode'])[:6]!r} is neither 0 nor 1", venue=NAME)
        m = book.swap(str(r["symbol"]))
        if m is None:
            read.unsupported.append(str(r["symbol"]))
            continue
        signed = size if side == "Buy" else -size
        mark = dec(r["markPrice"], "markPrice")
        updated = ms_time(r.get("updatedTime")) or at
        isolated = trade_mode == 1 or account_margin == "isolated"
        read.positions.append(Position(
            account_id, VenueKind.BYBIT, m.symbol, m.base, signed, dec(r["avgPrice"], "avgPrice"), mark, at,
            "bybit:linear", unrealized_pnl=dec(r["unrealisedPnl"], "unrealisedPnl"),
            liquidation_price=opt_dec(r.get("liqPrice"), "liqPrice"), leverage=opt_dec(r.get("leverage"), "leverage"),
            margin_mode="isolated" if isolated else "cross"))
        read.prices.append(mark_quote(m.base, mark, NAME, m.symbol, updated, at))


_W = Capability.WITHDRAW
# Bybit's documented key permission vocabulary (group -> item -> powers). Only names outside it
# are UNKNOWN. P2P orders and Bybit Pay send funds to other users: they move money out (WITHDRAW).
_PERMS: dict[tuple[str, str], tuple[Capability, ...]] = {
    ("ContractTrade", "Order"): (Capability.TRADE_FUTURES,),
    ("ContractTrade", "Position"): (Capability.TRADE_FUTURES,),
    ("Spot", "SpotTrade"): (Capability.TRADE_SPOT,),
    ("Options", "OptionsTrade"): (Capability.TRADE_OPTIONS,),
    ("Derivatives", "DerivativesTrade"): (Capability.TRADE_FUTURES,),
    ("CopyTrading", "CopyTrading"): (Capability.TRADE_FUTURES,),
    ("BlockTrade", "BlockTrade"): (Capability.TRADE_FUTURES, Capability.TRADE_OPTIONS),
    ("Wallet", "AccountTransfer"): (Capability.INTERNAL_TRANSFER,),
    ("Wallet", "SubMemberTransfer"): (Capability.UNIVERSAL_TRANSFER,),
    ("Wallet", "SubMemberTransferList"): (Capability.UNIVERSAL_TRANSFER,),
    ("Wallet", "Withdraw"): (_W,),
    ("Exchange", "ExchangeHistory"): (Capability.READ,),
    ("Exchange", "ConvertHistory"): (Capability.READ,),
    ("NFT", "NFTQueryProductList"): (Capability.READ,),
    ("Earn", "Earn"): (Capability.INTERNAL_TRANSFER,),  # moves funds into Earn products of the same account
    ("Affiliate", "Affiliate"): (Capability.READ,),
    ("FiatP2P", "FiatP2POrder"): (_W,),
    ("FiatP2P", "Advertising"): (_W,),
    ("FiatBybitPay", "FaitPayOrder"): (_W,),  # sic: Bybit's documented spelling
    ("FiatBybitPay", "FiatPayOrder"): (_W,),
    ("FiatConvertBroker", "FiatConvertBroker"): (Capability.TRADE_SPOT,),
}


def key_info(resp: Any) -> KeyInfo:
    """``/v5/user/query-api``. ``readOnly`` 0/1 (number or numeric string), ``permissions`` a map of
    lists of names, ``isMaster`` a boolean, ``ips`` a list: other types make the fact unknown.
    Raises VenueBadResponse when ``readOnly``/``permissions`` are missing."""
    r = result(resp)
    if not isinstance(r, dict) or "readOnly" not in r or "permissions" not in r:
        raise VenueBadResponse("query-api answer lacks readOnly/permissions", venue=NAME)
    caps: set[Capability] = {Capability.READ}
    unknown: list[str] = []
    bad: list[str] = []
    ro = flag01(r["readOnly"])
    if ro is None:
        bad.append("readOnly")
    read_only = ro == 1
    perms = r["permissions"]
    if not isinstance(perms, dict):
        bad.append("permissions")
        perms = {}
    for group, items in perms.items():
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            bad.append(f"permissions.{group}")
            continue
        for item in items:
            mapped = _PERMS.get((str(group), item))
            if mapped is None:
                unknown.append(f"{group}.{item}")
            elif not read_only or mapped == (Capability.READ,):
                caps.update(mapped)
    if (unknown and not read_only) or bad:
        caps.add(Capability.UNKNOWN)
    ips_raw = r.get("ips")
    ips: list[str] = []
    ip_restricted: bool | None = None
    if isinstance(ips_raw, list) and all(isinstance(x, str) for x in ips_raw):
        ips = [x for x in ips_raw if x and x != "*"]
        ip_restricted = bool(ips)
    else:
        bad.append("ips")
    expires = None
    if r.get("expiredAt"):
        try:
            expires = datetime.fromisoformat(str(r["expiredAt"]).replace("Z", "+00:00"))
        except ValueError:
            bad.append("expiredAt")
    master = r.get("isMaster")
    if not isinstance(master, bool):
        bad.append("isMaster")
    return KeyInfo(frozenset(caps), ip_restricted, expires, master if isinstance(master, bool) else None,
                   {"read_only": read_only, "ips": ips, "unknown_permissions": unknown,
                    "user_id": str(r.get("userID", "")), "parent_uid": str(r.get("parentUid", ""))}, tuple(bad))


@shape(NAME)
def whitelist(resp: Any) -> WhitelistStatus:
    """``/v5/asset/withdraw/query-address``: ``verified`` 1 entries are whitelisted; an empty book
    says nothing about the switch (``enabled`` None)."""
    rows = result(resp).get("rows")
    if not isinstance(rows, list):
        raise VenueBadResponse("query-address answer lacks rows", venue=NAME)
    if not rows:
        return WhitelistStatus(enabled=None)
    verified = [r for r in rows if str(r.get("verified")) == "1"]
    entries = tuple(WhitelistEntry(str(r["coin"]), str(r.get("chain", "")), str(r["address"]),
                                   str(r.get("remark", "")), str(r.get("tag") or "")) for r in verified)
    return WhitelistStatus(enabled=bool(verified), entries=entries)


async def position_pages(ex: Any, settle: str) -> list[dict[str, Any]]:
    """Every linear position row settled in ``settle``, following ``nextPageCursor``.

    Raises:
        VenueError: a page failed, or the list did not end after 50 pages.
    """
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):  # 50 pages x 200 positions: beyond that something is wrong
        params: dict[str, Any] = {"category": "linear", "settleCoin": settle, "limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = result(await ex.privateGetV5PositionList(params))
        rows.extend(page["list"])
        cursor = page.get("nextPageCursor")
        if not cursor:
            return rows
    raise VenueError("position list did not end after 50 pages", venue=NAME)


def _fmt(x: Decimal) -> str:
    return decimal_str(x)


# GET /v5/asset/withdraw/query-record ``status`` (its documented "Unknown" stays unknown here)
WITHDRAWAL_STATES: Mapping[str, tuple[str, str]] = {"SecurityCheck": ("pending", "security check"),
    "Pending": ("pending", "pending"), "MoreInformationRequired": ("pending", "more information required"),
    "success": ("confirmed", "success"), "BlockchainConfirmed": ("confirmed", "confirmed on chain"),
    "CancelByUser": ("failed", "cancelled by user"), "Reject": ("failed", "rejected"), "Fail": ("failed", "failed")}


class Bybit(CexExchange):
    """Bybit behind :class:`CexExchange`."""

    name = NAME
    codes = CODES
    refused_codes = frozenset({"10003"})  # "API key is invalid": no such key
    expired_codes = frozenset({"33004"})  # "your api key has expired"
    whitelist_access = WhitelistAccess.WITHDRAW_KEY
    withdrawal_states = WITHDRAWAL_STATES

    def ccxt_options(self) -> dict[str, Any]:
        return {"fetchMarkets": {"types": ["spot", "linear"]}, "enableUnifiedAccount": True,
                "enableUnifiedMargin": False, "adjustForTimeDifference": False, "recvWindow": 5000}

    def point_at(self, ex: Any, scheme: str, netloc: str) -> None:
        ex.urls["api"] = {k: f"{scheme}://{netloc}" for k in ex.urls["api"]}

    def exact(self, market: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None, Decimal]:
        info = market.get("info") or {}
        tick = to_decimal(info["priceFilter"]["tickSize"], what="tickSize")
        lot = info.get("lotSizeFilter") or {}
        return tick, to_decimal(lot.get("qtyStep") or lot.get("basePrecision"), what="qtyStep"), Decimal(1)

    # --- errors and limits ---

    def error_code(self, response: Any) -> tuple[str | None, str]:
        if isinstance(response, dict):
            code = response.get("retCode", response.get("ret_code"))
            if code is not None and str(code) != "0":
                return str(code), str(response.get("retMsg", response.get("ret_msg", "")))
        return None, ""

    # --- reads ---

    async def inspect_key(self, ex: Any) -> KeyInfo:
        return key_info(await ex.privateGetV5UserQueryApi())

    async def read_account(self, ex: Any, book: MarketBook, account_id: str, at: datetime,
                           read: MonitorRead) -> None:
        wallet, info, *pages = await asyncio.gather(
            ex.privateGetV5AccountWalletBalance({"accountType": "UNIFIED"}), ex.privateGetV5AccountInfo(),
            *(position_pages(ex, s) for s in SETTLE_COINS))
        balances(account_id, wallet, at, read)
        positions(account_id, [r for page in pages for r in page], book, at, read,
                  account_margin=account_margin(info))

    async def read_whitelist(self, ex: Any) -> WhitelistStatus:
        return whitelist(await ex.privateGetV5AssetWithdrawQueryAddress())

    # --- levers ---

    async def cancel_all(self, ex: Any) -> list[LeverItem]:
        items: list[LeverItem] = []
        scopes: list[dict[str, Any]] = [{"category": "spot"}, *({"category": "linear", "settleCoin": s}
                                                                 for s in SETTLE_COINS)]
        for scope in scopes:
            target = ":".join(str(v) for v in scope.values())
            try:
                open_rows = result(await ex.privateGetV5OrderRealtime(dict(scope)))["list"]
                if not open_rows:
                    continue
                res = result(await self.write(ex, ex.privatePostV5OrderCancelAll(dict(scope))))
                for r in res.get("list", []):
                    items.append(LeverItem(f"{target}:{r.get('orderId')}", "done", "cancelled",
                                           str(r.get("orderId"))))
            except Exception as exc:
                items.append(fail_item(target, exc, NAME))
        return items

    async def open_positions(self, ex: Any, book: MarketBook) -> list[OpenPosition]:
        rows: list[dict[str, Any]] = []
        for settle in SETTLE_COINS:
            rows.extend(result(await ex.privateGetV5PositionList({"category": "linear", "settleCoin": settle}))
                        ["list"])
        out: list[OpenPosition] = []
        for r in rows:
            size = to_decimal(r["size"], what="size")
            if size == 0:
                continue
            side, idx = _checked_side(r)
            leg: Literal["long", "short"] | None = {"0": None, "1": "long", "2": "short"}[idx]
            sym = str(r["symbol"])
            m = book.swap(sym)
            out.append(OpenPosition(
                key=hedge_key(m.symbol if m else sym, leg), venue_id=sym, size=size,
                close_side="sell" if side == "Buy" else "buy", mark=to_decimal(r["markPrice"], what="markPrice"),
                leg=None if idx == "0" else idx, market=m, raw=r,
                problem=None if m else "instrument unknown to primeguard"))
        return out

    async def prior_close(self, ex: Any, pos: OpenPosition, cid: str) -> str | None:
        prior = result(await ex.privateGetV5OrderRealtime({"category": "linear", "orderLinkId": cid}))["list"]
        return str(prior[0].get("orderStatus")) if prior else None

    def close_guard(self, pos: OpenPosition, cap: Decimal) -> tuple[Decimal | None, str | None]:
        return limit_guard(pos, cap)

    async def place_close(self, ex: Any, pos: OpenPosition, cid: str, price: Decimal | None) -> CloseFill:
        assert price is not None  # close_guard always gives a limit price here
        order: dict[str, Any] = {"category": "linear", "symbol": pos.venue_id, "side": pos.close_side.capitalize(),
                                 "orderType": "Limit", "qty": _fmt(pos.size), "price": _fmt(price),
                                 "timeInForce": "IOC", "reduceOnly": True, "orderLinkId": cid}
        if pos.leg is not None:  # hedge mode: name the leg (1 buy side, 2 sell side)
            order["positionIdx"] = int(pos.leg)
        await self.write(ex, ex.privatePostV5OrderCreate(order))
        placed = result(await ex.privateGetV5OrderRealtime({"category": "linear", "orderLinkId": cid}))["list"]
        o = placed[0] if placed else {}
        return CloseFill(to_decimal(o.get("cumExecQty", "0"), what="cumExecQty"), str(o.get("orderStatus", "unknown")))

    async def disable_client_keys(self, ex: Any, account: CexAccountConfig,
                                  public_key: PublicKeyOf) -> list[LeverItem]:
        """Delete each client key of the sub-member (listed first through ``/v5/user/sub-apikeys``:
        a key no longer listed is already done)."""
        clients = [c for c in account.credentials if c.holder == Holder.CLIENT]
        if not clients:
            return []
        try:
            listed = result(await ex.privateGetV5UserSubApikeys({"subMemberId": account.sub_account}))
            live = {str(r.get("apiKey")) for r in listed.get("result", [])}
        except Exception as exc:
            return [fail_item(f"key:{c.id}", exc, NAME) for c in clients]
        items: list[LeverItem] = []
        for c in clients:
            target = f"key:{c.id}"
            try:
                api_key = public_key(c.id)
                if api_key not in live:
                    items.append(LeverItem(target, "already_done", "key no longer exists"))
                    continue
                await self.write(ex, ex.privatePostV5UserDeleteSubApi({"apikey": api_key}))
                items.append(LeverItem(target, "done", "deleted the sub-member's key"))
            except Exception as exc:
                items.append(fail_item(target, exc, NAME))
        return items

    async def refused_key_state(self, ex: Any, account: CexAccountConfig, api_key: str) -> str | None:
        """Not among the sub-member's live keys (``/v5/user/sub-apikeys``, key-managing credential): deleted."""
        listed = result(await ex.privateGetV5UserSubApikeys({"subMemberId": account.sub_account}))
        live = {str(r.get("apiKey")) for r in listed.get("result", [])}
        return None if api_key in live else "deleted"

    async def spot_free(self, ex: Any) -> dict[str, Decimal]:
        """Unified wallet: ``walletBalance`` less ``locked`` per coin."""
        rows = result(await ex.privateGetV5AccountWalletBalance({"accountType": "UNIFIED"}))["list"]
        free: dict[str, Decimal] = {}
        for c in (rows[0].get("coin", []) if rows else []):
            wallet = to_decimal(c.get("walletBalance") or "0", what="walletBalance")
            locked = to_decimal(c.get("locked") or "0", what="locked")
            free[str(c["coin"])] = wallet - locked
        return {a: q for a, q in free.items() if q > 0}

    async def reference_price(self, ex: Any, book: MarketBook, base: str, quote: str) -> Decimal:
        rows = result(await ex.publicGetV5MarketTickers({"category": "linear", "symbol": f"{base}{quote}"}))["list"]
        if not rows:
            raise VenueNotFound(f"no mark price for {base}{quote}", venue=NAME)
        return to_decimal(rows[0]["markPrice"], what="markPrice")

    async def prior_spot_order(self, ex: Any, market: MarketInfo, cid: str) -> CloseFill | None:
        rows = result(await ex.privateGetV5OrderRealtime({"category": "spot", "orderLinkId": cid}))["list"]
        if not rows:
            return None
        return CloseFill(to_decimal(rows[0].get("cumExecQty") or "0", what="cumExecQty"),
                         str(rows[0].get("orderStatus")))

    async def place_spot_sell(self, ex: Any, market: MarketInfo, qty: Decimal, price: Decimal,
                              cid: str) -> CloseFill:
        await self.write(ex, ex.privatePostV5OrderCreate({
            "category": "spot", "symbol": market.id, "side": "Sell", "orderType": "Limit", "qty": _fmt(qty),
            "price": _fmt(price), "timeInForce": "IOC", "orderLinkId": cid}))
        placed = await self.prior_spot_order(ex, market, cid)
        return placed if placed is not None else CloseFill(Decimal(0), "unknown")

    @staticmethod
    def transfer_uuid(transfer_id: str) -> str:
        """Bybit wants a UUID as ``transferId``: ours, hex-formatted (deterministic per action)."""
        h = transfer_id.rjust(32, "0")[-32:]
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    async def prior_transfer(self, ex: Any, account: CexAccountConfig, asset: str, transfer_id: str) -> str | None:
        tid = self.transfer_uuid(transfer_id)
        rows = result(await ex.privateGetV5AssetTransferQueryUniversalTransferList({"transferId": tid}))["list"]
        done = [r for r in rows if str(r.get("status")) in ("SUCCESS", "PENDING")]
        return tid if done else None

    async def transfer_to_master(self, ex: Any, account: CexAccountConfig, asset: str, amount: Decimal,
                                 transfer_id: str) -> str:
        """``/v5/asset/transfer/universal-transfer`` from the sub-account's UNIFIED wallet to the
        master's (the sub-account's key may only send to its master: ``parentUid`` of query-api)."""
        me = result(await ex.privateGetV5UserQueryApi())
        parent = str(me.get("parentUid") or "0")
        if parent in ("", "0"):
            raise VenuePermissionDenied("the operator key is not a sub-account key (no parentUid)", venue=NAME)
        tid = self.transfer_uuid(transfer_id)
        await self.write(ex, ex.privatePostV5AssetTransferUniversalTransfer({
            "transferId": tid, "coin": asset, "amount": _fmt(amount), "fromMemberId": int(account.sub_account),
            "toMemberId": int(parent), "fromAccountType": "UNIFIED", "toAccountType": "UNIFIED"}))
        return tid

    async def submit_withdrawal(self, ex: Any, *, asset: str, amount: Decimal, address: str, network: str,
                                request_id: str) -> str | None:
        res = result(await self.write(ex, ex.privatePostV5AssetWithdrawCreate({
            "coin": asset, "chain": network, "address": address, "amount": decimal_str(amount),
            "timestamp": int(time.time() * 1000), "requestId": request_id[:32], "accountType": "FUND"})))
        wid = res.get("id")
        return None if wid in (None, "") else str(wid)


EXCHANGE = Bybit()
