"""Reads from the dYdX v4 indexer through ``dydx_v4_client``'s ``IndexerClient``, parsed strictly.

Every request carries a timeout (the client's default is effectively 50 minutes). Vendor failures
become our typed errors: timeouts, refused connections and 5xx → :class:`VenueUnavailable`; 429 →
:class:`VenueRateLimited`; 403 (geo-block, which the indexer applies to address routes only) →
:class:`VenueAuthError`; 400 (the indexer's validation: an address that is not alphanumeric, a bad
subaccount number) and 404 (unknown address or subaccount) → :class:`VenueBadRequest` (our input
is wrong, the indexer is up); bodies that are not JSON or lack a field, and numbers that are not
numbers → :class:`VenueBadResponse`. Messages carry no response bodies beyond a short code.

Connection pooling: the library's ``RestClient.get`` opens a new ``httpx.AsyncClient`` (a new TCP
connection and a new TLS context, 0.1-0.3 s of CPU each under load, on the event loop) for every
request, and ``IndexerClient`` offers no way to pass a client in. :class:`PooledIndexerClient` keeps
the library's ``IndexerClient`` and its endpoint modules (routes and query strings stay theirs) and
overrides only the modules' ``get``/``post`` so that every request goes through one shared
``httpx.AsyncClient``, with the same status check and JSON decoding as the library's helper. The pool
lives as long as a collection (one per indexer URL for :func:`~primeguard.venues.dydx.collect_many`),
the daemon's :class:`~primeguard.venues.session.VenueSession` (kept across sweeps) or a lever
session, and is closed when it ends.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar

import httpx
from dydx_v4_client.indexer.rest.indexer_client import IndexerClient
from dydx_v4_client.indexer.rest.modules.account import AccountClient
from dydx_v4_client.indexer.rest.modules.affiliate import AffiliateClient
from dydx_v4_client.indexer.rest.modules.markets import MarketsClient
from dydx_v4_client.indexer.rest.modules.status import StatusClient
from dydx_v4_client.indexer.rest.modules.vaults import MegaVaultClient
from dydx_v4_client.indexer.rest.utils.request_helpers import generate_query_path

from primeguard.domain.errors import (
    InputError,
    VenueAuthError,
    VenueBadRequest,
    VenueBadResponse,
    VenueRateLimited,
    VenueUnavailable,
)
from primeguard.domain.money import to_decimal

VENUE = "dydx"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PerpRow:
    market: str
    size: Decimal  # signed: negative = short
    entry_price: Decimal
    unrealized_pnl: Decimal | None


@dataclass(frozen=True, slots=True)
class SubaccountRow:
    address: str
    number: int
    equity: Decimal
    free_collateral: Decimal
    quote: Decimal  # signed USDC asset position (negative: borrowed against perps)
    other_assets: tuple[tuple[str, Decimal], ...]
    perps: tuple[PerpRow, ...]
    updated_at_height: int | None


@dataclass(frozen=True, slots=True)
class Market:
    ticker: str
    clob_pair_id: int | None
    oracle_price: Decimal | None
    status: str


@dataclass(frozen=True, slots=True)
class IndexerHead:
    height: int
    time: datetime


MAX_CONNECTIONS = 16
"""Connections one pool keeps to one indexer: requests beyond it wait for a free connection (the
collector's per-account deadline bounds the wait) instead of opening more."""


class IndexerPool:
    """One ``httpx.AsyncClient`` (connection pool, one TLS context) for one indexer, shared by every
    :class:`IndexerReader` made from it. Use as ``async with IndexerPool(...)``, or call :meth:`aclose`;
    bound to the event loop it is first used on."""

    def __init__(self, max_connections: int = MAX_CONNECTIONS) -> None:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.http = httpx.AsyncClient(limits=limits)

    async def aclose(self) -> None:
        """Close every pooled connection (idempotent)."""
        await self.http.aclose()

    async def __aenter__(self) -> IndexerPool:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


class _PooledRest:
    """Replaces the library's ``RestClient.get``/``post`` (a new ``httpx.AsyncClient`` per request) with
    the same request on a shared client. The request timeout bounds connect, read and write as before;
    waiting for a free pooled connection is bounded by twice that."""

    host: str
    api_timeout: float
    _http: httpx.AsyncClient

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.api_timeout, pool=self.api_timeout * 2)

    async def get(self, request_path: str, params: dict[str, Any] | None = None) -> Any:
        url = f"{self.host}{generate_query_path(request_path, params or {})}"
        response = await self._http.get(url, timeout=self._timeout())
        response.raise_for_status()
        return response.json()

    async def post(self, request_path: str, params: dict[str, Any] | None = None, body: Any | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        url = f"{self.host}{generate_query_path(request_path, params or {})}"
        response = await self._http.post(url, json=body, headers=headers or {}, timeout=self._timeout())
        response.raise_for_status()
        return response


class _Account(_PooledRest, AccountClient):  # type: ignore[misc]
    pass


class _Markets(_PooledRest, MarketsClient):  # type: ignore[misc]
    pass


class _Status(_PooledRest, StatusClient):  # type: ignore[misc]
    pass


class _MegaVault(_PooledRest, MegaVaultClient):  # type: ignore[misc]
    pass


class _Affiliate(_PooledRest, AffiliateClient):  # type: ignore[misc]
    pass


def _module(cls: type[_PooledRest], host: str, timeout_s: float, http: httpx.AsyncClient) -> Any:
    module: Any = cls(host, timeout_s)  # type: ignore[call-arg]
    module._http = http
    return module


class PooledIndexerClient(IndexerClient):  # type: ignore[misc]
    """The library's ``IndexerClient`` whose endpoint modules send through ``http`` (see the module
    docstring for why)."""

    def __init__(self, host: str, api_timeout: float, http: httpx.AsyncClient) -> None:
        super().__init__(host, api_timeout=api_timeout)
        self._markets = _module(_Markets, host, api_timeout, http)
        self._account = _module(_Account, host, api_timeout, http)
        self._status = _module(_Status, host, api_timeout, http)
        self._megavault = _module(_MegaVault, host, api_timeout, http)
        self._affiliates = _module(_Affiliate, host, api_timeout, http)


class IndexerReader:
    """One indexer, read through the official client with a per-request timeout, on ``pool``'s
    connections. Without a ``pool`` the reader owns one: close it with :meth:`aclose` (or
    ``async with``)."""

    def __init__(self, url: str, timeout_s: float, pool: IndexerPool | None = None) -> None:
        self.url = url
        self._owned = pool is None
        self.pool = pool if pool is not None else IndexerPool()
        self.client = PooledIndexerClient(url, timeout_s, self.pool.http)
        self.requests = 0

    async def aclose(self) -> None:
        """Close the pool if this reader made it (a shared pool is closed by its owner)."""
        if self._owned:
            await self.pool.aclose()

    async def __aenter__(self) -> IndexerReader:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def subaccount(self, address: str, number: int) -> SubaccountRow:
        what = f"subaccount {number} of {address}"
        body = await self._call(what, self.client.account.get_subaccount(address, number))
        return parse_subaccount(body, address, number)

    async def markets(self) -> dict[str, Market]:
        body = await self._call("perpetual markets", self.client.markets.get_perpetual_markets())
        return parse_markets(body)

    async def head(self) -> IndexerHead:
        body = await self._call("indexer height", self.client.utility.get_height())
        return parse_head(body)

    async def _call(self, what: str, call: Awaitable[T]) -> T:
        self.requests += 1
        try:
            return await call
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            code = str(status)
            if status == 404:
                raise VenueBadRequest(f"{what}: not found on the indexer", venue=VENUE, code=code) from exc
            if status == 400:
                raise VenueBadRequest(f"{what}: the indexer refused the request as invalid (bad address or "
                                      "subaccount number)", venue=VENUE, code=code) from exc
            if status == 403:
                raise VenueAuthError(f"{what}: refused by the indexer (geo-blocked or banned)", venue=VENUE,
                                     code=code) from exc
            if status == 429:
                retry = exc.response.headers.get("Retry-After")
                raise VenueRateLimited(f"{what}: rate limited", venue=VENUE, code=code,
                                       retry_after=float(retry) if retry and retry.isdigit() else None) from exc
            if status >= 500:
                raise VenueUnavailable(f"{what}: indexer error", venue=VENUE, code=code) from exc
            raise VenueBadResponse(f"{what}: unexpected HTTP status", venue=VENUE, code=code) from exc
        except httpx.TimeoutException as exc:
            raise VenueUnavailable(f"{what}: timed out", venue=VENUE, code="timeout") from exc
        except httpx.TransportError as exc:
            raise VenueUnavailable(f"{what}: unreachable ({type(exc).__name__})", venue=VENUE) from exc
        except ValueError as exc:  # json.JSONDecodeError and friends: a body that is not JSON
            raise VenueBadResponse(f"{what}: body is not JSON", venue=VENUE) from exc


# --- parsing (pure) ----------------------------------------------------------------------------


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise VenueBadResponse(f"{what}: expected an object, got {type(value).__name__}", venue=VENUE)
    return value


def _num(obj: dict[str, Any], key: str, what: str) -> Decimal:
    if key not in obj:
        raise VenueBadResponse(f"{what}: missing {key!r}", venue=VENUE)
    try:
        return to_decimal(obj[key], what=f"{what}.{key}")
    except InputError as exc:
        raise VenueBadResponse(str(exc), venue=VENUE) from exc


def _int(raw: Any, what: str) -> int:
    if isinstance(raw, bool):
        raise VenueBadResponse(f"{what}: not an integer", venue=VENUE)
    try:
        return int(str(raw))
    except ValueError as exc:
        raise VenueBadResponse(f"{what}: not an integer", venue=VENUE) from exc


def parse_subaccount(body: Any, address: str, number: int) -> SubaccountRow:
    """Parse the indexer's subaccount answer into exact ``Decimal`` values. Raises :class:`VenueBadResponse` on a
    wrong shape, type or a subaccount other than the one asked for."""
    what = f"subaccount {number}"
    sub = _obj(_obj(body, what).get("subaccount"), what)
    if sub.get("address", address) != address or _int(sub.get("subaccountNumber", number), what) != number:
        raise VenueBadResponse(f"{what}: the indexer answered for another subaccount", venue=VENUE)
    equity = _num(sub, "equity", what)
    free = _num(sub, "freeCollateral", what)
    perps: list[PerpRow] = []
    for market, raw in _obj(sub.get("openPerpetualPositions"), f"{what}.openPerpetualPositions").items():
        p = _obj(raw, f"{what}.{market}")
        pwhat = f"{what}.{market}"
        if p.get("status", "OPEN") != "OPEN":
            continue
        size = _num(p, "size", pwhat)
        side = p.get("side")
        if side not in ("LONG", "SHORT"):
            raise VenueBadResponse(f"{pwhat}: side {str(side)[:10]!r} is neither LONG nor SHORT", venue=VENUE)
        if side == "LONG" and size < 0:  # the indexer signs sizes (short < 0); SHORT with size > 0 is tolerated
            raise VenueBadResponse(f"{pwhat}: size sign contradicts side {side}", venue=VENUE)
        signed = -abs(size) if side == "SHORT" else size
        if signed == 0:
            continue
        pnl = _num(p, "unrealizedPnl", pwhat) if p.get("unrealizedPnl") is not None else None
        perps.append(PerpRow(str(p.get("market", market)), signed, _num(p, "entryPrice", pwhat), pnl))
    quote = Decimal(0)
    others: list[tuple[str, Decimal]] = []
    for symbol, raw in _obj(sub.get("assetPositions", {}), f"{what}.assetPositions").items():
        a = _obj(raw, f"{what}.{symbol}")
        size = abs(_num(a, "size", f"{what}.{symbol}"))
        side = a.get("side")
        if side not in ("LONG", "SHORT"):
            raise VenueBadResponse(f"{what}.{symbol}: side is neither LONG nor SHORT", venue=VENUE)
        signed = size if side == "LONG" else -size
        if symbol == "USDC":
            quote = signed
        else:
            others.append((str(symbol), signed))
    height = sub.get("updatedAtHeight")
    return SubaccountRow(address, number, equity, free, quote, tuple(others), tuple(perps),
                         None if height is None else _int(height, f"{what}.updatedAtHeight"))


def parse_markets(body: Any) -> dict[str, Market]:
    """Parse the indexer's perpetual markets (oracle price as ``Decimal``, ``None`` when absent). Raises
    :class:`VenueBadResponse` on a wrong shape."""
    markets = _obj(_obj(body, "perpetual markets").get("markets"), "perpetual markets")
    out: dict[str, Market] = {}
    for ticker, raw in markets.items():
        m = _obj(raw, f"market {ticker}")
        price: Decimal | None = None
        if m.get("oraclePrice") is not None:
            price = _num(m, "oraclePrice", f"market {ticker}")
        clob = m.get("clobPairId")
        out[str(ticker)] = Market(str(ticker), None if clob is None else _int(clob, f"market {ticker}.clobPairId"),
                                  price, str(m.get("status", "")))
    return out


def parse_head(body: Any) -> IndexerHead:
    """Parse the indexer's height answer (height and its time, timezone-aware). Raises :class:`VenueBadResponse` on
    a wrong shape."""
    obj = _obj(body, "indexer height")
    raw_time = obj.get("time")
    if not isinstance(raw_time, str):
        raise VenueBadResponse("indexer height: missing time", venue=VENUE)
    try:
        when = datetime.fromisoformat(raw_time.replace("Z", "+00:00"))
    except ValueError as exc:
        raise VenueBadResponse("indexer height: time is not ISO 8601", venue=VENUE) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return IndexerHead(_int(obj.get("height"), "indexer height"), when)


def underlying_of(ticker: str) -> str:
    """``BTC-USD`` → ``BTC`` (dYdX v4 perpetuals are all quoted in USD, settled in USDC)."""
    base, sep, quote = ticker.partition("-")
    return base if sep and quote == "USD" else ticker

