"""Turn venue JSON (ccxt implicit-method results: strings) into domain values. Pure functions.

Every number goes through :func:`primeguard.domain.money.to_decimal` (never float). A field that
is missing or not a number, or a body of the wrong shape, raises :class:`VenueBadResponse` (never a
bare KeyError/TypeError), which the collector reports as a bad response: a malformed answer never
becomes a zero.

Key flags are read by their documented type only: a Binance flag that is not a JSON boolean, an
OKX ``perm``/``ip``/``uid`` that is not a string, a Bybit ``isMaster`` that is not a boolean... is
*unknown*: the key is then treated as able to do anything (``Capability.UNKNOWN``, IP binding and
master status ``None``) and the field is listed in :attr:`KeyInfo.type_errors` so the collector
raises a finding. Numbers arrive as ccxt delivers them (JSON numbers or numeric strings).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

from primeguard.domain.errors import InputError, VenueBadResponse
from primeguard.domain.model import Balance, Capability, Position, PriceQuote, PriceSourceKind, VenueKind
from primeguard.domain.money import to_decimal
from primeguard.domain.observation import WhitelistEntry, WhitelistStatus
from primeguard.venues.cex.client import MarketBook

ZERO = Decimal(0)


@dataclass
class MonitorRead:
    """What the monitoring key saw of one sub-account."""

    balances: list[Balance] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    prices: list[PriceQuote] = field(default_factory=list)
    equity_usd: str | None = None
    unsupported: list[str] = field(default_factory=list)  # instruments we could not value


@dataclass(frozen=True)
class KeyInfo:
    """A key's powers as the venue reports them to the key itself."""

    capabilities: frozenset[Capability]
    ip_restricted: bool | None
    expires_at: datetime | None
    is_master: bool | None
    details: Mapping[str, Any]
    type_errors: tuple[str, ...] = ()  # fields not of their documented type: read as "unknown"


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _shape(venue: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Turn any shape fault while reading a body (missing key, wrong container, bad number) into
    :class:`VenueBadResponse` naming the venue: a malformed body is a bad answer, never a crash."""

    def wrap(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(fn)
        def inner(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return fn(*args, **kwargs)
            except VenueBadResponse:
                raise
            except (KeyError, TypeError, IndexError, AttributeError, ValueError, InputError) as exc:
                raise VenueBadResponse(f"{fn.__name__}: malformed answer ({type(exc).__name__}: "
                                       f"{str(exc)[:80]})", venue=venue) from None
        return inner
    return wrap


def _bounded(locked: Decimal, total: Decimal) -> Decimal:
    """Locked/frozen amount as far as it exists: venues sharing margin across assets report frozen
    amounts above an asset's own cash balance; what is locked can never exceed what is held."""
    return max(ZERO, min(locked, max(total, ZERO)))


def _list(raw: Any, what: str, venue: str) -> list[Any]:
    if not isinstance(raw, list):
        raise VenueBadResponse(f"{what} is not a list", venue=venue)
    return raw


def _flag01(raw: Any) -> int | None:
    """A Bybit 0/1 field as ccxt delivers it (JSON number, or numeric string): 0, 1, or None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int) and raw in (0, 1):
        return raw
    if isinstance(raw, str) and raw in ("0", "1"):
        return int(raw)
    return None


def _d(raw: Any, what: str) -> Decimal:
    return to_decimal(raw, what=what)


def _opt(raw: Any, what: str) -> Decimal | None:
    if raw in (None, ""):
        return None
    value = to_decimal(raw, what=what)
    return value


def _ms(raw: Any) -> datetime | None:
    if raw in (None, "", 0, "0") or isinstance(raw, bool):
        return None
    try:
        return datetime.fromtimestamp(int(str(raw)) / 1000, UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise VenueBadResponse(f"timestamp {str(raw)[:20]!r} is not milliseconds") from exc


def _data(resp: Any, venue: str) -> Any:
    """The payload of an OKX (``data``) or Bybit (``result``) envelope."""
    if not isinstance(resp, dict):
        raise VenueBadResponse("answer is not an object", venue=venue)
    key = "data" if venue == "okx" else "result"
    if key not in resp:
        raise VenueBadResponse(f"answer has no {key!r}", venue=venue)
    return resp[key]


def _quote(asset: str, price: Decimal, venue: str, instrument: str, updated: datetime, at: datetime) -> PriceQuote:
    return PriceQuote(asset=asset, price=price, source=PriceSourceKind.VENUE_MARK, source_id=f"{venue}:{instrument}",
                      updated_at=updated, observed_at=at)


# --- Binance ----------------------------------------------------------------------------------------


@_shape("binance")
def binance_balances(account_id: str, spot: Any, futures: Any, at: datetime) -> list[Balance]:
    """Spot (``/api/v3/account``) and USDⓈ-M (``/fapi/v3/account``) balances; in multi-asset
    margin mode every asset with a wallet balance is listed. Locked amounts never exceed what is held."""
    out: list[Balance] = []
    for b in _list(spot["balances"], "balances", "binance"):
        free, locked = _d(b["free"], "free"), _d(b["locked"], "locked")
        if free + locked != 0:
            total = free + locked
            out.append(Balance(account_id, str(b["asset"]), total, at, "binance:spot", locked=_bounded(locked, total)))
    for a in _list(futures["assets"], "assets", "binance"):
        wallet = _d(a["walletBalance"], "walletBalance")  # excludes unrealized PnL (positions carry it)
        if wallet != 0:
            im = _opt(a.get("initialMargin"), "initialMargin") or ZERO
            out.append(Balance(account_id, str(a["asset"]), wallet, at, "binance:usdm", locked=_bounded(im, wallet)))
    return out


_BINANCE_MARGIN = {"isolated": "isolated", "cross": "cross", "crossed": "cross"}


def _binance_margin_mode(r: Mapping[str, Any]) -> str:
    """``marginType`` when the row carries it (v2 rows, symbol config), else the isolated wallet."""
    kind = r.get("marginType")
    if kind is not None:
        mode = _BINANCE_MARGIN.get(str(kind).lower())
        if mode is None:
            raise VenueBadResponse(f"marginType {str(kind)[:12]!r} is neither isolated nor cross", venue="binance")
        return mode
    iso = (_opt(r.get("isolatedWallet"), "isolatedWallet") or ZERO, _opt(r.get("isolatedMargin"), "isolatedMargin")
           or ZERO)
    return "isolated" if any(x != 0 for x in iso) else "cross"


@_shape("binance")
def binance_positions(account_id: str, rows: Any, book: MarketBook, at: datetime, read: MonitorRead) -> None:
    """``/fapi/v3/positionRisk`` rows, one-way (``BOTH``) or hedge mode (``LONG``/``SHORT``, the
    short leg's ``positionAmt`` negative), cross or isolated."""
    for r in _list(rows, "positionRisk", "binance"):
        size = _d(r["positionAmt"], "positionAmt")
        if size == 0:
            continue
        side = str(r.get("positionSide", "BOTH"))
        if side not in ("BOTH", "LONG", "SHORT"):
            raise VenueBadResponse(f"positionSide {side[:10]!r} is not BOTH/LONG/SHORT", venue="binance")
        if (side == "LONG" and size < 0) or (side == "SHORT" and size > 0):
            raise VenueBadResponse(f"{side} position with positionAmt of the other sign", venue="binance")
        m = book.swap(str(r["symbol"]))
        if m is None:
            read.unsupported.append(str(r["symbol"]))
            continue
        mark = _d(r["markPrice"], "markPrice")
        liq = _opt(r.get("liquidationPrice"), "liquidationPrice")
        updated = _ms(r.get("updateTime")) or at
        read.positions.append(Position(
            account_id, VenueKind.BINANCE, m.symbol, m.base, size, _d(r["entryPrice"], "entryPrice"), mark, at,
            "binance:usdm", unrealized_pnl=_d(r["unRealizedProfit"], "unRealizedProfit"),
            liquidation_price=None if liq == 0 else liq, margin_mode=_binance_margin_mode(r)))
        read.prices.append(_quote(m.base, mark, "binance", m.symbol, updated, at))


_BINANCE_FLAGS: dict[str, tuple[Capability, ...]] = {
    "enableReading": (Capability.READ,),
    "enableSpotAndMarginTrading": (Capability.TRADE_SPOT,),
    "enableMargin": (Capability.TRADE_MARGIN,),
    "enableFutures": (Capability.TRADE_FUTURES,),
    "enableVanillaOptions": (Capability.TRADE_OPTIONS,),
    "enablePortfolioMarginTrading": (Capability.TRADE_MARGIN, Capability.TRADE_FUTURES),
    "enableWithdrawals": (Capability.WITHDRAW,),
    "enableInternalTransfer": (Capability.INTERNAL_TRANSFER,),
    "permitsUniversalTransfer": (Capability.UNIVERSAL_TRANSFER,),
    "enableFixApiTrade": (Capability.TRADE_SPOT,),
    "enableFixReadOnly": (Capability.READ,),
}


def binance_key(raw: Any) -> KeyInfo:
    """``/sapi/v1/account/apiRestrictions``. Every ``enable*``/``permits*`` flag and ``ipRestrict``
    must be a JSON boolean; anything else (``"true"``, ``1``, null) makes the flag unknown."""
    if not isinstance(raw, dict) or "ipRestrict" not in raw:
        raise VenueBadResponse("apiRestrictions answer lacks ipRestrict", venue="binance")
    caps: set[Capability] = set()
    unknown: list[str] = []
    bad: list[str] = []
    for name, value in raw.items():
        if not (name in _BINANCE_FLAGS or name.startswith(("enable", "permits"))):
            continue
        if not isinstance(value, bool):
            bad.append(name)  # not the documented type: we cannot tell, so assume it is on
            continue
        if not value:
            continue
        if name in _BINANCE_FLAGS:
            caps.update(_BINANCE_FLAGS[name])
        else:
            unknown.append(name)  # a power we do not know: fail closed
    ip = raw["ipRestrict"]
    if not isinstance(ip, bool):
        bad.append("ipRestrict")
    if unknown or (set(bad) - {"ipRestrict"}):
        caps.add(Capability.UNKNOWN)
    try:
        expires = _ms(raw.get("tradingAuthorityExpirationTime"))
    except VenueBadResponse:
        expires = None
        bad.append("tradingAuthorityExpirationTime")
    flags = {k: v for k, v in raw.items() if isinstance(v, bool)}
    return KeyInfo(frozenset(caps), ip if isinstance(ip, bool) else None, expires, None,
                   {"venue_flags": flags, "unknown_flags": unknown}, tuple(bad))


@_shape("binance")
def binance_whitelist(rows: Any) -> WhitelistStatus:
    """Binance lists the address book; ``whiteStatus`` says whether an entry is whitelisted."""
    if not isinstance(rows, list):
        raise VenueBadResponse("withdraw address list is not a list", venue="binance")
    if not rows:
        return WhitelistStatus(enabled=None)  # an empty book says nothing about the switch
    white = [r for r in rows if r.get("whiteStatus") is True]
    entries = tuple(WhitelistEntry(str(r["coin"]), str(r.get("network", "")), str(r["address"]),
                                   str(r.get("name", "")), str(r.get("addressTag") or "")) for r in white)
    return WhitelistStatus(enabled=bool(white), entries=entries)


# --- OKX --------------------------------------------------------------------------------------------


@_shape("okx")
def okx_balances(account_id: str, resp: Any, at: datetime, read: MonitorRead) -> None:
    """``/api/v5/account/balance``. ``frozenBal`` can exceed ``cashBal`` (margin shared across
    currencies): the locked amount is bounded by the cash that exists."""
    data = _list(_data(resp, "okx"), "data", "okx")
    if not data:
        return
    acct = data[0]
    read.equity_usd = str(_d(acct["totalEq"], "totalEq")) if acct.get("totalEq") not in (None, "") else None
    for c in _list(acct["details"], "details", "okx"):
        cash = _d(c["cashBal"], "cashBal")  # excludes unrealized PnL
        if cash != 0:
            frozen = _opt(c.get("frozenBal"), "frozenBal") or ZERO
            read.balances.append(Balance(account_id, str(c["ccy"]), cash, at, "okx:trading",
                                         locked=_bounded(frozen, cash)))


@_shape("okx")
def okx_positions(account_id: str, resp: Any, book: MarketBook, at: datetime, read: MonitorRead) -> None:
    """``/api/v5/account/positions`` in net mode (``posSide`` net, signed ``pos``) or long/short
    mode (``posSide`` long/short, ``pos`` positive), cross or isolated (``mgnMode``)."""
    for r in _list(_data(resp, "okx"), "data", "okx"):
        contracts = _d(r["pos"], "pos")
        if contracts == 0:
            continue
        pos_side, mgn = r.get("posSide"), r.get("mgnMode")
        if pos_side not in ("net", "long", "short"):
            raise VenueBadResponse(f"posSide {str(pos_side)[:10]!r} is not net/long/short", venue="okx")
        if mgn not in ("cross", "isolated"):
            raise VenueBadResponse(f"mgnMode {str(mgn)[:10]!r} is neither cross nor isolated", venue="okx")
        inst, kind = str(r["instId"]), str(r.get("instType", ""))
        m = book.swap(inst) if kind == "SWAP" else None
        if m is None:
            read.unsupported.append(f"{kind}:{inst}")
            continue
        size = contracts * m.contract_size  # OKX counts contracts: convert to base units
        if pos_side == "short" and size > 0:
            size = -size
        mark = _d(r["markPx"], "markPx")
        updated = _ms(r.get("uTime")) or at
        lever = _opt(r.get("lever"), "lever")
        read.positions.append(Position(
            account_id, VenueKind.OKX, m.symbol, m.base, size, _d(r["avgPx"], "avgPx"), mark, at, "okx:swap",
            unrealized_pnl=_d(r["upl"], "upl"), liquidation_price=_opt(r.get("liqPx"), "liqPx"), leverage=lever,
            margin_mode=str(mgn)))
        read.prices.append(_quote(m.base, mark, "okx", m.symbol, updated, at))


_OKX_PERMS: dict[str, frozenset[Capability]] = {
    "read_only": frozenset({Capability.READ}),
    # OKX "trade" covers every market and transfers inside the account
    "trade": frozenset({Capability.READ, Capability.TRADE_SPOT, Capability.TRADE_MARGIN, Capability.TRADE_FUTURES,
                        Capability.TRADE_OPTIONS, Capability.INTERNAL_TRANSFER}),
    "withdraw": frozenset({Capability.WITHDRAW}),
}


def okx_key(resp: Any) -> KeyInfo:
    """``/api/v5/account/config``: ``perm``, ``ip`` (``""`` = not bound), ``uid``/``mainUid``
    must be strings; a field of another type, or a missing ``uid``, makes that fact unknown."""
    data = _data(resp, "okx")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict) or "perm" not in data[0]:
        raise VenueBadResponse("account/config answer lacks perm", venue="okx")
    cfg = data[0]
    bad: list[str] = []
    caps: set[Capability] = set()
    perms: list[str] = []
    if isinstance(cfg["perm"], str):
        perms = [p.strip() for p in cfg["perm"].split(",") if p.strip()]
        for p in perms:
            caps.update(_OKX_PERMS.get(p, frozenset({Capability.UNKNOWN})))
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


# --- Bybit ------------------------------------------------------------------------------------------


@_shape("bybit")
def bybit_balances(account_id: str, resp: Any, at: datetime, read: MonitorRead) -> None:
    """``/v5/account/wallet-balance`` (unified account); locked = ``locked`` + position IM, bounded
    by the wallet balance."""
    rows = _list(_data(resp, "bybit")["list"], "list", "bybit")
    for acct in rows:
        if acct.get("totalEquity") not in (None, ""):
            read.equity_usd = str(_d(acct["totalEquity"], "totalEquity"))
        for c in _list(acct["coin"], "coin", "bybit"):
            wallet = _d(c["walletBalance"], "walletBalance")  # excludes unrealized PnL
            if wallet != 0:
                locked = (_opt(c.get("locked"), "locked") or ZERO) + (_opt(c.get("totalPositionIM"), "IM") or ZERO)
                read.balances.append(Balance(account_id, str(c["coin"]), wallet, at, "bybit:unified",
                                             locked=_bounded(locked, wallet)))


BYBIT_ACCOUNT_MARGIN: dict[str, str] = {"ISOLATED_MARGIN": "isolated", "REGULAR_MARGIN": "cross",
                                        "PORTFOLIO_MARGIN": "cross"}


@_shape("bybit")
def bybit_account_margin(resp: Any) -> str:
    """``/v5/account/info`` ``marginMode`` of a unified account: ``isolated`` or ``cross``."""
    mode = _data(resp, "bybit")["marginMode"]
    if mode not in BYBIT_ACCOUNT_MARGIN:
        raise VenueBadResponse(f"marginMode {str(mode)[:20]!r} is not a documented value", venue="bybit")
    return BYBIT_ACCOUNT_MARGIN[mode]


@_shape("bybit")
def bybit_positions(account_id: str, rows: list[dict[str, Any]], book: MarketBook, at: datetime,
                    read: MonitorRead, account_margin: str | None = None) -> None:
    """``/v5/position/list`` rows, one-way (``positionIdx`` 0) or hedge mode (1 buy side, 2 sell
    side). ``tradeMode`` 1 (JSON number or, through ccxt, the string ``"1"``) is isolated; an
    account in isolated margin mode makes every position isolated."""
    for r in _list(rows, "list", "bybit"):
        size = _d(r["size"], "size")
        if size == 0:
            continue
        side = str(r.get("side", ""))
        if side not in ("Buy", "Sell"):
            raise VenueBadResponse(f"position side {side[:10]!r} is neither Buy nor Sell", venue="bybit")
        idx = r.get("positionIdx", 0)
        mismatched = (str(idx), side) in (("1", "Sell"), ("2", "Buy"))
        if str(idx) not in ("0", "1", "2") or isinstance(idx, bool) or mismatched:
            raise VenueBadResponse(f"positionIdx {str(idx)[:6]!r} does not fit side {side}", venue="bybit")
        trade_mode = _flag01(r["tradeMode"]) if "tradeMode" in r else 0
        if trade_mode is None:
            raise VenueBadResponse(f"tradeMode {str(r['tradeMode'])[:6]!r} is neither 0 nor 1", venue="bybit")
        m = book.swap(str(r["symbol"]))
        if m is None:
            read.unsupported.append(str(r["symbol"]))
            continue
        signed = size if side == "Buy" else -size
        mark = _d(r["markPrice"], "markPrice")
        updated = _ms(r.get("updatedTime")) or at
        isolated = trade_mode == 1 or account_margin == "isolated"
        read.positions.append(Position(
            account_id, VenueKind.BYBIT, m.symbol, m.base, signed, _d(r["avgPrice"], "avgPrice"), mark, at,
            "bybit:linear", unrealized_pnl=_d(r["unrealisedPnl"], "unrealisedPnl"),
            liquidation_price=_opt(r.get("liqPrice"), "liqPrice"), leverage=_opt(r.get("leverage"), "leverage"),
            margin_mode="isolated" if isolated else "cross"))
        read.prices.append(_quote(m.base, mark, "bybit", m.symbol, updated, at))


_W = Capability.WITHDRAW
# Bybit's documented key permission vocabulary (group -> item -> powers). Only names outside it
# are UNKNOWN. P2P orders and Bybit Pay send funds to other users: they move money out (WITHDRAW).
_BYBIT_PERMS: dict[tuple[str, str], tuple[Capability, ...]] = {
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


def bybit_key(resp: Any) -> KeyInfo:
    """``/v5/user/query-api``. ``readOnly`` 0/1 (number or numeric string), ``permissions`` a map of
    lists of names, ``isMaster`` a boolean, ``ips`` a list: other types make the fact unknown."""
    r = _data(resp, "bybit")
    if not isinstance(r, dict) or "readOnly" not in r or "permissions" not in r:
        raise VenueBadResponse("query-api answer lacks readOnly/permissions", venue="bybit")
    caps: set[Capability] = {Capability.READ}
    unknown: list[str] = []
    bad: list[str] = []
    ro = _flag01(r["readOnly"])
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
            mapped = _BYBIT_PERMS.get((str(group), item))
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


@_shape("bybit")
def bybit_whitelist(resp: Any) -> WhitelistStatus:
    rows = _data(resp, "bybit").get("rows")
    if not isinstance(rows, list):
        raise VenueBadResponse("query-address answer lacks rows", venue="bybit")
    if not rows:
        return WhitelistStatus(enabled=None)
    verified = [r for r in rows if str(r.get("verified")) == "1"]
    entries = tuple(WhitelistEntry(str(r["coin"]), str(r.get("chain", "")), str(r["address"]),
                                   str(r.get("remark", "")), str(r.get("tag") or "")) for r in verified)
    return WhitelistStatus(enabled=bool(verified), entries=entries)
