"""Turn venue JSON (ccxt implicit-method results: strings) into domain values. Pure functions.

Every number goes through :func:`primeguard.domain.money.to_decimal` (never float). A field that
is missing or not a number raises (KeyError / InputError), which the collector reports as a bad
response: a malformed answer never becomes a zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from primeguard.domain.errors import VenueBadResponse
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


def _d(raw: Any, what: str) -> Decimal:
    return to_decimal(raw, what=what)


def _opt(raw: Any, what: str) -> Decimal | None:
    if raw in (None, ""):
        return None
    value = to_decimal(raw, what=what)
    return value


def _ms(raw: Any) -> datetime | None:
    if raw in (None, "", 0, "0"):
        return None
    return datetime.fromtimestamp(int(str(raw)) / 1000, UTC)


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


def binance_balances(account_id: str, spot: Any, futures: Any, at: datetime) -> list[Balance]:
    out: list[Balance] = []
    for b in spot["balances"]:
        free, locked = _d(b["free"], "free"), _d(b["locked"], "locked")
        if free + locked != 0:
            out.append(Balance(account_id, str(b["asset"]), free + locked, at, "binance:spot", locked=locked))
    for a in futures["assets"]:
        wallet = _d(a["walletBalance"], "walletBalance")  # excludes unrealized PnL (positions carry it)
        if wallet != 0:
            out.append(Balance(account_id, str(a["asset"]), wallet, at, "binance:usdm",
                               locked=_d(a.get("initialMargin", "0"), "initialMargin")))
    return out


def binance_positions(account_id: str, rows: Any, book: MarketBook, at: datetime, read: MonitorRead) -> None:
    for r in rows:
        size = _d(r["positionAmt"], "positionAmt")
        if size == 0:
            continue
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
            liquidation_price=None if liq == 0 else liq,
            margin_mode="isolated" if _d(r.get("isolatedWallet", "0"), "isolatedWallet") != 0 else "cross"))
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
    if not isinstance(raw, dict) or "ipRestrict" not in raw:
        raise VenueBadResponse("apiRestrictions answer lacks ipRestrict", venue="binance")
    caps: set[Capability] = set()
    unknown: list[str] = []
    for name, value in raw.items():
        if value is not True:
            continue
        if name in _BINANCE_FLAGS:
            caps.update(_BINANCE_FLAGS[name])
        elif name.startswith(("enable", "permits")):
            unknown.append(name)  # a power we do not know: fail closed
    if unknown:
        caps.add(Capability.UNKNOWN)
    flags = {k: v for k, v in raw.items() if isinstance(v, bool)}
    return KeyInfo(frozenset(caps), bool(raw["ipRestrict"]), _ms(raw.get("tradingAuthorityExpirationTime")), None,
                   {"venue_flags": flags, "unknown_flags": unknown})


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


def okx_balances(account_id: str, resp: Any, at: datetime, read: MonitorRead) -> None:
    data = _data(resp, "okx")
    if not data:
        return
    acct = data[0]
    read.equity_usd = str(_d(acct["totalEq"], "totalEq")) if acct.get("totalEq") not in (None, "") else None
    for c in acct["details"]:
        cash = _d(c["cashBal"], "cashBal")  # excludes unrealized PnL
        if cash != 0:
            frozen = _opt(c.get("frozenBal"), "frozenBal") or ZERO
            read.balances.append(Balance(account_id, str(c["ccy"]), cash, at, "okx:trading", locked=frozen))


def okx_positions(account_id: str, resp: Any, book: MarketBook, at: datetime, read: MonitorRead) -> None:
    for r in _data(resp, "okx"):
        contracts = _d(r["pos"], "pos")
        if contracts == 0:
            continue
        inst, kind = str(r["instId"]), str(r.get("instType", ""))
        m = book.swap(inst) if kind == "SWAP" else None
        if m is None:
            read.unsupported.append(f"{kind}:{inst}")
            continue
        size = contracts * m.contract_size  # OKX counts contracts: convert to base units
        if r.get("posSide") == "short" and size > 0:
            size = -size
        mark = _d(r["markPx"], "markPx")
        updated = _ms(r.get("uTime")) or at
        lever = _opt(r.get("lever"), "lever")
        read.positions.append(Position(
            account_id, VenueKind.OKX, m.symbol, m.base, size, _d(r["avgPx"], "avgPx"), mark, at, "okx:swap",
            unrealized_pnl=_d(r["upl"], "upl"), liquidation_price=_opt(r.get("liqPx"), "liqPx"), leverage=lever,
            margin_mode=str(r.get("mgnMode") or "cross")))
        read.prices.append(_quote(m.base, mark, "okx", m.symbol, updated, at))


def okx_key(resp: Any) -> KeyInfo:
    data = _data(resp, "okx")
    if not data or "perm" not in data[0]:
        raise VenueBadResponse("account/config answer lacks perm", venue="okx")
    cfg = data[0]
    perms = [p.strip() for p in str(cfg["perm"]).split(",") if p.strip()]
    caps: set[Capability] = set()
    for p in perms:
        if p == "read_only":
            caps.add(Capability.READ)
        elif p == "trade":  # OKX "trade" covers every market and transfers inside the account
            caps.update({Capability.READ, Capability.TRADE_SPOT, Capability.TRADE_MARGIN, Capability.TRADE_FUTURES,
                         Capability.TRADE_OPTIONS, Capability.INTERNAL_TRANSFER})
        elif p == "withdraw":
            caps.update({Capability.WITHDRAW})
        else:
            caps.add(Capability.UNKNOWN)
    ips = [x for x in str(cfg.get("ip", "")).split(",") if x.strip()]
    uid, main = str(cfg.get("uid", "")), str(cfg.get("mainUid", ""))
    is_master = bool(uid) and uid == main
    return KeyInfo(frozenset(caps), bool(ips), None, is_master,
                   {"perm": perms, "ips": ips, "uid": uid, "main_uid": main, "label": str(cfg.get("label", ""))})


# --- Bybit ------------------------------------------------------------------------------------------


def bybit_balances(account_id: str, resp: Any, at: datetime, read: MonitorRead) -> None:
    rows = _data(resp, "bybit")["list"]
    for acct in rows:
        if acct.get("totalEquity") not in (None, ""):
            read.equity_usd = str(_d(acct["totalEquity"], "totalEquity"))
        for c in acct["coin"]:
            wallet = _d(c["walletBalance"], "walletBalance")  # excludes unrealized PnL
            if wallet != 0:
                locked = (_opt(c.get("locked"), "locked") or ZERO) + (_opt(c.get("totalPositionIM"), "IM") or ZERO)
                read.balances.append(Balance(account_id, str(c["coin"]), wallet, at, "bybit:unified", locked=locked))


def bybit_positions(account_id: str, rows: list[dict[str, Any]], book: MarketBook, at: datetime,
                    read: MonitorRead) -> None:
    for r in rows:
        size = _d(r["size"], "size")
        if size == 0:
            continue
        m = book.swap(str(r["symbol"]))
        if m is None:
            read.unsupported.append(str(r["symbol"]))
            continue
        side = str(r.get("side", ""))
        if side not in ("Buy", "Sell"):
            raise VenueBadResponse(f"position side {side[:10]!r} is neither Buy nor Sell", venue="bybit")
        signed = size if side == "Buy" else -size
        mark = _d(r["markPrice"], "markPrice")
        updated = _ms(r.get("updatedTime")) or at
        read.positions.append(Position(
            account_id, VenueKind.BYBIT, m.symbol, m.base, signed, _d(r["avgPrice"], "avgPrice"), mark, at,
            "bybit:linear", unrealized_pnl=_d(r["unrealisedPnl"], "unrealisedPnl"),
            liquidation_price=_opt(r.get("liqPrice"), "liqPrice"), leverage=_opt(r.get("leverage"), "leverage"),
            margin_mode="isolated" if r.get("tradeMode") == 1 else "cross"))
        read.prices.append(_quote(m.base, mark, "bybit", m.symbol, updated, at))


_BYBIT_PERMS: dict[tuple[str, str], tuple[Capability, ...]] = {
    ("ContractTrade", "Order"): (Capability.TRADE_FUTURES,),
    ("ContractTrade", "Position"): (Capability.TRADE_FUTURES,),
    ("Spot", "SpotTrade"): (Capability.TRADE_SPOT,),
    ("Options", "OptionsTrade"): (Capability.TRADE_OPTIONS,),
    ("Derivatives", "DerivativesTrade"): (Capability.TRADE_FUTURES,),
    ("Wallet", "AccountTransfer"): (Capability.INTERNAL_TRANSFER,),
    ("Wallet", "SubMemberTransfer"): (Capability.UNIVERSAL_TRANSFER,),
    ("Wallet", "SubMemberTransferList"): (Capability.UNIVERSAL_TRANSFER,),
    ("Wallet", "Withdraw"): (Capability.WITHDRAW,),
    ("Exchange", "ExchangeHistory"): (Capability.READ,),
}


def bybit_key(resp: Any) -> KeyInfo:
    r = _data(resp, "bybit")
    if not isinstance(r, dict) or "readOnly" not in r or "permissions" not in r:
        raise VenueBadResponse("query-api answer lacks readOnly/permissions", venue="bybit")
    caps: set[Capability] = {Capability.READ}
    unknown: list[str] = []
    read_only = str(r["readOnly"]) == "1"
    for group, items in (r.get("permissions") or {}).items():
        for item in items or []:
            mapped = _BYBIT_PERMS.get((group, item))
            if mapped is None:
                unknown.append(f"{group}.{item}")
            elif not read_only or mapped == (Capability.READ,):
                caps.update(mapped)
    if unknown and not read_only:
        caps.add(Capability.UNKNOWN)
    ips = [x for x in (r.get("ips") or []) if x and x != "*"]
    expires = None
    if r.get("expiredAt"):
        expires = datetime.fromisoformat(str(r["expiredAt"]).replace("Z", "+00:00"))
    return KeyInfo(frozenset(caps), bool(ips), expires, bool(r.get("isMaster")),
                   {"read_only": read_only, "ips": ips, "unknown_permissions": unknown,
                    "user_id": str(r.get("userID", "")), "parent_uid": str(r.get("parentUid", ""))})


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
