"""OKX: a unified trading account of a sub-account, its keys, its levers.

Everything OKX-specific lives here (see :mod:`primeguard.venues.cex.exchange` for the interface).
Facts this module relies on:

- ccxt builds URLs from ``hostname`` + ``urls['api']['rest']``; keys need a passphrase.
- Answers are enveloped ``{"code", "msg", "data"}``; batch calls answer ``code`` 1 (all failed) or
  2 (some failed) with per-item ``sCode``: a single-item call is classified by its item's code.
- No endpoint lists the withdrawal address book: the whitelist is always unverifiable.
- No cancel-all: pending orders are listed and cancelled in batches of 20. Positions close with
  ``close-position`` (a market order), only when the last price is within the cap of the mark.
- Long/short (hedge) mode: positions carry ``posSide`` long/short and a close must name it.
- The master key deletes a sub-account's API key (``users/subaccount/delete-apikey``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
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
from primeguard.venues.cex.errors import (
    DuplicateClientOrderId,
    ReduceOnlyRejected,
    VenueBatchError,
    VenueNotFound,
    short_text,
)
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
    mark_quote,
    ms_time,
    opt_dec,
    shape,
)

NAME = "okx"

CODES: dict[str, ErrorKind] = {
    "50011": VenueRateLimited, "50061": VenueRateLimited, "50001": VenueUnavailable, "50004": VenueUnavailable,
    "50005": VenueUnavailable, "50013": VenueUnavailable, "50026": VenueUnavailable,
    "50100": VenueAuthError, "50101": VenueAuthError, "50102": VenueAuthError, "50103": VenueAuthError,
    "50104": VenueAuthError, "50105": VenueAuthError, "50106": VenueAuthError, "50107": VenueAuthError,
    "50110": VenueAuthError, "50111": VenueAuthError, "50112": VenueAuthError, "50113": VenueAuthError,
    "50114": VenueAuthError, "50119": VenueAuthError, "50008": VenueAuthError,
    "50120": VenuePermissionDenied, "50027": VenuePermissionDenied, "50007": VenuePermissionDenied,
    "58203": AddressNotWhitelisted, "58207": AddressNotWhitelisted,
    "58350": InsufficientFunds, "51008": InsufficientFunds, "59200": InsufficientFunds,
    "51016": DuplicateClientOrderId, "51400": VenueNotFound, "51401": VenueNotFound, "51603": VenueNotFound,
    "51023": VenueNotFound, "59506": VenueNotFound, "59503": VenueNotFound, "51169": ReduceOnlyRejected,
}
ALREADY_GONE = ("51400", "51401")  # cancel: the order was already filled or cancelled


def data(resp: Any) -> Any:
    """The ``data`` payload of an OKX answer. Raises VenueBadResponse when there is none."""
    return envelope(resp, "data", NAME)


# --- normalizers (pure) --------------------------------------------------------------------------------


@shape(NAME)
def balances(account_id: str, resp: Any, at: datetime, read: MonitorRead) -> None:
    """``/api/v5/account/balance`` in currency units. ``frozenBal`` can exceed ``cashBal`` (margin
    shared across currencies): the locked amount is bounded by the cash that exists."""
    rows = as_list(data(resp), "data", NAME)
    if not rows:
        return
    acct = rows[0]
    read.equity_usd = str(dec(acct["totalEq"], "totalEq")) if acct.get("totalEq") not in (None, "") else None
    for c in as_list(acct["details"], "details", NAME):
        cash = dec(c["cashBal"], "cashBal")  # excludes unrealized PnL
        if cash != 0:
            frozen = opt_dec(c.get("frozenBal"), "frozenBal") or ZERO
            read.balances.append(Balance(account_id, str(c["ccy"]), cash, at, "okx:trading",
                                         locked=bounded(frozen, cash)))


def _pos_side(r: Mapping[str, Any]) -> str:
    pos_side = r.get("posSide")
    if pos_side not in ("net", "long", "short"):
        raise VenueBadResponse(f"posSide {str(pos_side)[:10]!r} is not net/long/short", venue=NAME)
    return str(pos_side)


@shape(NAME)
def positions(account_id: str, resp: Any, book: MarketBook, at: datetime, read: MonitorRead) -> None:
    """``/api/v5/account/positions`` in net mode (``posSide`` net, signed ``pos``) or long/short
    mode (``posSide`` long/short, ``pos`` positive), cross or isolated (``mgnMode``); sizes are
    converted from contracts to base units."""
    for r in as_list(data(resp), "data", NAME):
        contracts = dec(r["pos"], "pos")
        if contracts == 0:
            continue
        pos_side, mgn = _pos_side(r), r.get("mgnMode")
        if mgn not in ("cross", "isolated"):
            raise VenueBadResponse(f"mgnMode {str(mgn)[:10]!r} is neither cross nor isolated", venue=NAME)
        inst, kind = str(r["instId"]), str(r.get("instType", ""))
        m = book.swap(inst) if kind == "SWAP" else None
        if m is None:
            read.unsupported.append(f"{kind}:{inst}")
            continue
        size = contracts * m.contract_size  # OKX counts contracts: convert to base units
        if pos_side == "short" and size > 0:
            size = -size
        mark = dec(r["markPx"], "markPx")
        updated = ms_time(r.get("uTime")) or at
        lever = opt_dec(r.get("lever"), "lever")
        read.positions.append(Position(
            account_id, VenueKind.OKX, m.symbol, m.base, size, dec(r["avgPx"], "avgPx"), mark, at, "okx:swap",
            unrealized_pnl=dec(r["upl"], "upl"), liquidation_price=opt_dec(r.get("liqPx"), "liqPx"), leverage=lever,
            margin_mode=str(mgn)))
        read.prices.append(mark_quote(m.base, mark, NAME, m.symbol, updated, at))


_PERMS: dict[str, frozenset[Capability]] = {
    "read_only": frozenset({Capability.READ}),
    # OKX "trade" covers every market and transfers inside the account
    "trade": frozenset({Capability.READ, Capability.TRADE_SPOT, Capability.TRADE_MARGIN, Capability.TRADE_FUTURES,
                        Capability.TRADE_OPTIONS, Capability.INTERNAL_TRANSFER}),
    "withdraw": frozenset({Capability.WITHDRAW}),
}


def key_info(resp: Any) -> KeyInfo:
    """``/api/v5/account/config``: ``perm``, ``ip`` (``""`` = not bound), ``uid``/``mainUid``
    must be strings; a field of another type, or a missing ``uid``, makes that fact unknown.
    Raises VenueBadResponse when ``perm`` is missing."""
    rows = data(resp)
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict) or "perm" not in rows[0]:
        raise VenueBadResponse("account/config answer lacks perm", venue=NAME)
    cfg = rows[0]
    bad: list[str] = []
    caps: set[Capability] = set()
    perms: list[str] = []
    if isinstance(cfg["perm"], str):
        perms = [p.strip() for p in cfg["perm"].split(",") if p.strip()]
        for p in perms:
            caps.update(_PERMS.get(p, frozenset({Capability.UNKNOWN})))
    else:
        bad.append("perm")
        caps.add(Capability.UNKNOWN)
    ip_raw = cfg.get("ip")
    ips: list[str] = []
    ip_restricted: bool | None = None
    if isinstance(ip_raw, str):
        ips = [x.strip() for x in ip_raw.split(",") if x.strip()]
        ip_restricted = bool(ips)
    else:
        bad.append("ip")
    uid, main = cfg.get("uid"), cfg.get("mainUid")
    is_master: bool | None = None
    if isinstance(uid, str) and isinstance(main, str) and uid and main:
        is_master = uid == main
    else:
        bad.extend(n for n, v in (("uid", uid), ("mainUid", main)) if not (isinstance(v, str) and v))
    return KeyInfo(frozenset(caps), ip_restricted, None, is_master,
                   {"perm": perms, "ips": ips, "uid": str(uid or ""), "main_uid": str(main or ""),
                    "label": str(cfg.get("label", ""))}, tuple(bad))


def _fmt(x: Decimal) -> str:
    return decimal_str(x)


# GET /api/v5/asset/withdrawal-history ``state``
WITHDRAWAL_STATES: Mapping[str, tuple[str, str]] = {"-3": ("pending", "canceling"), "-2": ("failed", "canceled"),
    "-1": ("failed", "failed"), "0": ("pending", "waiting withdrawal"), "1": ("pending", "broadcasting"),
    "2": ("confirmed", "withdraw success"), "7": ("pending", "approved"), "10": ("pending", "waiting transfer"),
    "15": ("pending", "pending transaction validation"), "16": ("pending", "delayed by local laws"),
    "17": ("pending", "pending Travel Rule review"), "4": ("pending", "waiting manual review"),
    "5": ("pending", "waiting manual review"), "6": ("pending", "waiting manual review"),
    "8": ("pending", "waiting manual review"), "9": ("pending", "waiting manual review"),
    "12": ("pending", "waiting manual review")}


class Okx(CexExchange):
    """OKX behind :class:`CexExchange`."""

    name = NAME
    codes = CODES
    refused_codes = frozenset({"50111"})  # "Invalid OK-ACCESS-KEY": no such key
    needs_passphrase = True
    whitelist_access = WhitelistAccess.NONE
    no_whitelist_reason = "OKX has no endpoint listing the withdrawal address book"
    withdrawal_states = WITHDRAWAL_STATES
    withdrawal_status_field = "state"

    def ccxt_options(self) -> dict[str, Any]:
        return {"fetchMarkets": {"types": ["spot", "swap"]}, "adjustForTimeDifference": False}

    def point_at(self, ex: Any, scheme: str, netloc: str) -> None:
        ex.hostname = netloc
        ex.urls["api"] = {"rest": f"{scheme}://{{hostname}}"}

    def exact(self, market: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None, Decimal]:
        info = market.get("info") or {}
        size = to_decimal(info["ctVal"], what="ctVal") if info.get("ctVal") else Decimal(1)
        return to_decimal(info["tickSz"], what="tickSz"), to_decimal(info["lotSz"], what="lotSz"), size

    # --- errors and limits ---

    def error_code(self, response: Any) -> tuple[str | None, str]:
        if isinstance(response, dict) and "code" in response and str(response["code"]) != "0":
            return str(response["code"]), str(response.get("msg", ""))
        return None, ""

    def special_error(self, code: str, response: Any, where: str,
                      make: Callable[[ErrorKind, str, str], VenueError]) -> VenueError | None:
        """Batch answers (``code`` 1 or 2): a single-item call is classified by its item's ``sCode``;
        a real batch becomes :class:`VenueBatchError` carrying every failed item."""
        if code not in ("1", "2"):
            return None
        items = response.get("data") if isinstance(response, dict) else None
        items = items if isinstance(items, list) else []
        codes = [str(i.get("sCode")) for i in items if isinstance(i, dict) and str(i.get("sCode")) != "0"]
        if len(items) == 1 and codes:
            item = items[0]
            kind = self.error_kind(codes[0]) or VenueError
            return make(kind, f"{where}{short_text(item.get('sMsg', response.get('msg', '')))}", codes[0])
        msg = response.get("msg", "") if isinstance(response, dict) else ""
        return VenueBatchError(f"{where}{short_text(msg)} ({len(codes)} of {len(items)} items failed)", venue=NAME,
                               code=code, items=[i for i in items if isinstance(i, dict)])

    # --- reads ---

    async def inspect_key(self, ex: Any) -> KeyInfo:
        return key_info(await ex.privateGetAccountConfig())

    async def read_account(self, ex: Any, book: MarketBook, account_id: str, at: datetime,
                           read: MonitorRead) -> None:
        pos, bal = await asyncio.gather(ex.privateGetAccountPositions(), ex.privateGetAccountBalance())
        balances(account_id, bal, at, read)
        positions(account_id, pos, book, at, read)

    # --- levers ---

    async def cancel_all(self, ex: Any) -> list[LeverItem]:
        items: list[LeverItem] = []
        rows = data(await ex.privateGetTradeOrdersPending())
        for start in range(0, len(rows), 20):
            batch = [{"instId": r["instId"], "ordId": r["ordId"]} for r in rows[start:start + 20]]
            try:
                answers = data(await ex.privatePostTradeCancelBatchOrders(batch))
            except VenueBatchError as exc:
                answers = exc.items
            except Exception as exc:
                items.extend(fail_item(f"order:{b['ordId']}", exc, NAME) for b in batch)
                continue
            by_id = {str(a.get("ordId")): a for a in answers}
            for b in batch:
                a = by_id.get(b["ordId"], {})
                code = str(a.get("sCode", ""))
                target = f"order:{b['instId']}:{b['ordId']}"
                if code == "0":
                    items.append(LeverItem(target, "done", "cancelled", b["ordId"]))
                elif code in ALREADY_GONE:
                    items.append(LeverItem(target, "already_done", "already filled or cancelled", b["ordId"]))
                else:
                    items.append(LeverItem(target, "failed", f"[okx {code or '?'}] {str(a.get('sMsg', ''))[:120]}",
                                           b["ordId"]))
        return items

    async def open_positions(self, ex: Any, book: MarketBook) -> list[OpenPosition]:
        out: list[OpenPosition] = []
        for r in data(await ex.privateGetAccountPositions()):
            contracts = to_decimal(r["pos"], what="pos")
            if contracts == 0:
                continue
            side = _pos_side(r)
            leg: Literal["long", "short"] | None = None
            if side == "long":
                leg = "long"
            elif side == "short":
                leg = "short"
            long_ = contracts > 0 if leg is None else leg == "long"
            inst = str(r["instId"])
            out.append(OpenPosition(key=hedge_key(inst, leg), venue_id=inst, size=abs(contracts),
                                    close_side="sell" if long_ else "buy",
                                    mark=to_decimal(r["markPx"], what="markPx"), leg=leg, market=book.swap(inst),
                                    raw=r))
        return out

    def close_guard(self, pos: OpenPosition, cap: Decimal) -> tuple[Decimal | None, str | None]:
        """Market close only when ``last`` is within ``cap`` of the mark (close-position takes no
        price)."""
        last = to_decimal(pos.raw["last"], what="last")
        deviation = abs(last - pos.mark) / pos.mark
        if deviation > cap:
            dev = _fmt(deviation.quantize(Decimal("0.0001")))
            return None, (f"last {_fmt(last)} is {dev} from mark {_fmt(pos.mark)}, beyond the {_fmt(cap)} cap: "
                          "not closing at market")
        return None, None

    async def place_close(self, ex: Any, pos: OpenPosition, cid: str, price: Decimal | None) -> CloseFill:
        params: dict[str, Any] = {"instId": pos.venue_id, "mgnMode": pos.raw.get("mgnMode") or "cross",
                                  "clOrdId": cid}
        if pos.leg is not None:  # long/short mode: the venue must be told which leg
            params["posSide"] = pos.leg
        await self.write(ex, ex.privatePostTradeClosePosition(params))
        return CloseFill(None, "closed", f"closed {_fmt(pos.size)} contract(s) at market")

    async def disable_client_keys(self, ex: Any, account: CexAccountConfig,
                                  public_key: PublicKeyOf) -> list[LeverItem]:
        items: list[LeverItem] = []
        for c in account.credentials:
            if c.holder != Holder.CLIENT:
                continue
            target = f"key:{c.id}"
            try:
                q = {"subAcct": account.sub_account, "apiKey": public_key(c.id)}
                if not data(await ex.privateGetUsersSubaccountApikey(dict(q))):
                    items.append(LeverItem(target, "already_done", "key no longer exists"))
                    continue
                await self.write(ex, ex.privatePostUsersSubaccountDeleteApikey(dict(q)))
                items.append(LeverItem(target, "done", "deleted the sub-account key"))
            except VenueNotFound:
                items.append(LeverItem(target, "already_done", "key no longer exists"))
            except Exception as exc:
                items.append(fail_item(target, exc, NAME))
        return items

    async def refused_key_state(self, ex: Any, account: CexAccountConfig, api_key: str) -> str | None:
        """Not among the sub-account's API keys (read with the key-managing credential): deleted."""
        try:
            rows = data(await ex.privateGetUsersSubaccountApikey({"subAcct": account.sub_account, "apiKey": api_key}))
        except VenueNotFound:
            return "deleted"
        return None if rows else "deleted"

    async def spot_free(self, ex: Any) -> dict[str, Decimal]:
        """``availBal`` per currency of the unified trading account (cash less what orders and
        margin hold)."""
        rows = data(await ex.privateGetAccountBalance())
        details = rows[0].get("details", []) if rows else []
        free = {str(r["ccy"]): to_decimal(r["availBal"], what="availBal") for r in details}
        return {a: q for a, q in free.items() if q > 0}

    async def reference_price(self, ex: Any, book: MarketBook, base: str, quote: str) -> Decimal:
        rows = data(await ex.publicGetPublicMarkPrice({"instType": "SWAP", "instId": f"{base}-{quote}-SWAP"}))
        if not rows:
            raise VenueNotFound(f"no mark price for {base}-{quote}-SWAP", venue=NAME)
        return to_decimal(rows[0]["markPx"], what="markPx")

    async def prior_spot_order(self, ex: Any, market: MarketInfo, cid: str) -> CloseFill | None:
        try:
            rows = data(await ex.privateGetTradeOrder({"instId": market.id, "clOrdId": cid}))
        except VenueNotFound:
            return None
        if not rows:
            return None
        return CloseFill(to_decimal(rows[0].get("accFillSz") or "0", what="accFillSz"), str(rows[0].get("state")))

    async def place_spot_sell(self, ex: Any, market: MarketInfo, qty: Decimal, price: Decimal,
                              cid: str) -> CloseFill:
        """``ordType=ioc`` in ``cash`` mode; the answer carries no fill, so the order is read back."""
        await self.write(ex, ex.privatePostTradeOrder({"instId": market.id, "tdMode": "cash", "side": "sell",
                                                      "ordType": "ioc", "sz": _fmt(qty), "px": _fmt(price),
                                                      "clOrdId": cid}))
        placed = await self.prior_spot_order(ex, market, cid)
        return placed if placed is not None else CloseFill(Decimal(0), "unknown")

    async def prior_transfer(self, ex: Any, account: CexAccountConfig, asset: str, transfer_id: str) -> str | None:
        try:
            rows = data(await ex.privateGetAssetTransferState({"clientId": transfer_id, "type": "3"}))
        except VenueNotFound:
            return None
        done = [r for r in rows if str(r.get("state")) in ("success", "pending")]
        return str(done[0].get("transId", "")) if done else None

    async def transfer_to_master(self, ex: Any, account: CexAccountConfig, asset: str, amount: Decimal,
                                 transfer_id: str) -> str:
        """``/api/v5/asset/transfer`` type 3 (sub-account to master, with the sub-account's key), from
        the trading account (18) to the master's funding account (6), ``clientId`` = our id."""
        rows = data(await self.write(ex, ex.privatePostAssetTransfer({
            "ccy": asset, "amt": _fmt(amount), "from": "18", "to": "6", "type": "3", "clientId": transfer_id})))
        return str(rows[0].get("transId", "")) if rows else ""

    async def submit_withdrawal(self, ex: Any, *, asset: str, amount: Decimal, address: str, network: str,
                                request_id: str) -> str | None:
        rows = data(await self.write(ex, ex.privatePostAssetWithdrawal({
            "ccy": asset, "amt": decimal_str(amount), "dest": "4", "toAddr": address, "chain": f"{asset}-{network}",
            "clientId": request_id[:32]})))
        wid = rows[0].get("wdId") if rows else None
        return None if wid in (None, "") else str(wid)


EXCHANGE = Okx()
