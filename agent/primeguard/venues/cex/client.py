"""ccxt clients for the registered exchanges: built from config, pointed at a base URL, limited, pooled.

- :func:`build_exchange` makes one real ccxt client (``ccxt.async_support`` or sync ``ccxt``) for
  one credential of one account. Its class is a thin subclass of ccxt's that classifies every
  answer by venue code (:func:`primeguard.venues.cex.errors.raise_for_response`) and, when async
  and pooled, passes each HTTP round trip through the venue's :class:`VenueLimiter`.
- Pointing at a local server follows ccxt's URL layout of each exchange (its module's
  ``point_at``). ``set_sandbox_mode`` is never called (it would swap real testnet URLs back in).
- :class:`CexClientPool` keeps one client per key (ccxt's throttle is per instance = per key),
  one shared aiohttp session and TLS context, the markets per venue (loaded once with minimal
  options) and the per-venue limiters. A daemon keeps one pool across sweeps; ``collect_many``
  makes a temporary one when given none. ccxt's constructor costs ~10 ms (deep merges of the
  exchange description) and each client's own TLS context ~20 ms more: for hundreds of keys the pool
  builds one template client per venue and clones it per key (own options, throttler and
  credentials; shared read-only description, session and TLS context).
- Secrets are read when a client is built and live only inside the ccxt object; ccxt's own
  logger (which logs request headers, passphrases included) is replaced by a silent one.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import hashlib
import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import certifi
from ccxt.async_support.base.throttler import Throttler

from primeguard.config.loader import resolve_secret
from primeguard.config.schema import CexAccountConfig, CredentialConfig
from primeguard.domain.errors import ConfigError, VenueError, VenueRateLimited
from primeguard.domain.money import to_decimal
from primeguard.venues.cex.errors import raise_for_response, translate
from primeguard.venues.cex.exchange import CexExchange
from primeguard.venues.cex.limits import VenueLimiter, VenueLimits
from primeguard.venues.cex.markets import MarketBook, MarketInfo
from primeguard.venues.cex.registry import VENUES, default_limits, exchange_for

__all__ = ["VENUES", "CexClientPool", "MarketBook", "MarketInfo", "build_exchange", "credential", "exchange_class",
           "market_book", "point_at", "public_key_of"]

DEFAULT_REQUEST_TIMEOUT_S = 10.0

# ccxt logs "Request: <headers> <body>" at DEBUG (headers may carry a passphrase): give every
# client a logger that is outside the logging tree and drops everything.
_SILENT = logging.Logger("primeguard.venues.cex.ccxt-silenced", level=logging.CRITICAL + 1)
_SILENT.propagate = False
_SILENT.addHandler(logging.NullHandler())


class _Classified:
    """Mixin: classify every HTTP answer by the venue's error code before ccxt looks at it, and turn
    transport failures (timeouts, refused connections) into typed errors as well."""

    pg_venue: str = ""
    pg_exchange: CexExchange

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        try:
            return super().fetch(url, method, headers, body)  # type: ignore[misc]
        except VenueError:
            raise
        except Exception as exc:
            raise translate(exc, self.pg_venue) from None

    def handle_errors(self, code: int, reason: str, url: str, method: str, headers: dict[str, str], body: str,
                      response: Any, requestHeaders: Any, requestBody: Any) -> None:  # noqa: N803 - ccxt's names
        raise_for_response(self.pg_exchange, int(code), headers, body or "", response, urlsplit(url).path)


# Set while a request holds its venue slot: ccxt's own per-key throttle already ran before it.
_PACED: contextvars.ContextVar[bool] = contextvars.ContextVar("primeguard_cex_paced", default=False)


class _AsyncClassified(_Classified):
    """Async mixin: each request takes a slot of the venue's limiter *before* ccxt signs it.

    Order per request: ccxt's per-key throttle (outside any slot, so a throttled key never holds one
    of the venue's slots) → venue slot (weight budget, in-flight cap, Retry-After pause) → sign →
    HTTP. Signing inside the slot matters: a request queued behind the venue's limit must not carry a
    timestamp older than the venue's receive window (a clock error the venue would refuse).
    """

    pg_limiter: VenueLimiter | None = None

    async def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        try:
            return await super(_Classified, self).fetch(url, method, headers, body)  # type: ignore[misc]
        except VenueError:
            raise
        except Exception as exc:
            raise translate(exc, self.pg_venue) from None

    async def fetch2(self, path: Any, api: Any = "public", method: str = "GET", params: Any = None,
                     headers: Any = None, body: Any = None, config: Any = None) -> Any:
        params = {} if params is None else params
        config = {} if config is None else config
        limiter = self.pg_limiter
        if limiter is None:
            return await super().fetch2(path, api, method, params, headers, body, config)  # type: ignore[misc]
        if self.enableRateLimit:  # type: ignore[attr-defined]
            cost = self.calculate_rate_limiter_cost(api, method, path, params, config)  # type: ignore[attr-defined]
            await super().throttle(cost)  # type: ignore[misc]
        url_path = self.pg_exchange.limiter_path(self, api, str(path))
        has_symbol = isinstance(params, dict) and "symbol" in params
        async with limiter.slot(url_path, "symbol=" if has_symbol else ""):
            token = _PACED.set(True)
            try:
                return await super().fetch2(path, api, method, params, headers, body, config)  # type: ignore[misc]
            except VenueRateLimited as exc:
                limiter.block(exc.retry_after if exc.retry_after is not None else 1.0)
                raise
            finally:
                _PACED.reset(token)

    async def throttle(self, cost: Any = None) -> Any:
        if _PACED.get():
            return None
        return await super().throttle(cost)  # type: ignore[misc]


_CLASSES: dict[tuple[str, bool], type] = {}


def exchange_class(venue: str, *, sync: bool = False) -> type:
    """The classified ccxt class for ``venue`` (sync or async).

    Raises:
        ConfigError: the venue is not in the registry.
    """
    exchange = exchange_for(venue)
    key = (venue, sync)
    if key not in _CLASSES:
        base = getattr(ccxt if sync else ccxt_async, exchange.name)
        mixin = _Classified if sync else _AsyncClassified
        _CLASSES[key] = type(f"Primeguard{venue.capitalize()}{'' if sync else 'Async'}", (mixin, base),
                             {"pg_venue": venue, "pg_exchange": exchange})
    return _CLASSES[key]


def point_at(ex: Any, venue: str, base_url: str | None) -> None:
    """Aim a ccxt client at ``base_url`` (scheme://host:port) the way the exchange's URLs are laid
    out; None keeps the production URLs. Never calls ``set_sandbox_mode``.

    Raises:
        ConfigError: a base URL that is not http(s)://host[:port], or an unknown venue.
    """
    if not base_url:
        return
    u = urlsplit(base_url)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise ConfigError(f"base_url {base_url!r} must look like http://host:port")
    exchange_for(venue).point_at(ex, u.scheme, u.netloc)


@dataclass(frozen=True)
class _Secrets:
    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        raw = "\x1f".join((self.api_key, self.secret, self.passphrase or ""))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def credential(account: CexAccountConfig, cred_id: str) -> CredentialConfig:
    for c in account.credentials:
        if c.id == cred_id:
            return c
    raise ConfigError(f"account {account.id}: credential {cred_id!r} is not configured")


def _secrets(account: CexAccountConfig, cred: CredentialConfig, base_dir: Path | None) -> _Secrets:
    passphrase = None if cred.passphrase is None else resolve_secret(cred.passphrase, base_dir=base_dir)
    if exchange_for(account.venue).needs_passphrase and passphrase is None:
        raise ConfigError(f"account {account.id}: {account.venue.upper()} credential {cred.id!r} needs a passphrase")
    return _Secrets(resolve_secret(cred.api_key, base_dir=base_dir), resolve_secret(cred.secret, base_dir=base_dir),
                    passphrase)


def public_key_of(account: CexAccountConfig, cred_id: str, base_dir: Path | None = None) -> str:
    """The (public) api key of a credential: the venue's handle for it in key-management calls."""
    return resolve_secret(credential(account, cred_id).api_key, base_dir=base_dir)


def _config(venue: str, secrets: _Secrets | None, timeout_s: float,
            rate_limit_ms: float | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {"enableRateLimit": True, "timeout": int(timeout_s * 1000), "logger": _SILENT,
                           "timeout_on_exit": 0, "has": {"fetchCurrencies": False},
                           "options": exchange_for(venue).ccxt_options()}
    if rate_limit_ms is not None:
        cfg["rateLimit"] = rate_limit_ms
    if secrets is not None:
        cfg.update(apiKey=secrets.api_key, secret=secrets.secret)
        if secrets.passphrase is not None:
            cfg["password"] = secrets.passphrase
    return cfg


def build_exchange(account: CexAccountConfig, cred_id: str | None, *, sync: bool = False,
                   base_dir: Path | None = None, timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
                   rate_limit_ms: float | None = None) -> Any:
    """A real ccxt client for ``cred_id`` of ``account`` (None: public calls only).

    ``rate_limit_ms`` overrides ccxt's per-key pacing (milliseconds per cost unit); tests shorten it,
    production keeps ccxt's figure for the venue.

    Raises:
        ConfigError: unknown venue, unknown credential, unreadable secret, bad base_url.
    """
    cls = exchange_class(account.venue, sync=sync)
    secrets = None if cred_id is None else _secrets(account, credential(account, cred_id), base_dir)
    ex = cls(_config(account.venue, secrets, timeout_s, rate_limit_ms))
    point_at(ex, account.venue, account.base_url)
    return ex


# --- markets ---------------------------------------------------------------------------------------


def market_book(venue: str, markets: Mapping[str, dict[str, Any]]) -> MarketBook:
    """The spot and linear-swap markets of ccxt's loaded ``markets`` with exact tick/step sizes read
    from the venue's own fields (ccxt's precision only where the venue gives none).

    Raises:
        InputError: a size field that is not a number.
    """
    exchange = exchange_for(venue)
    by_symbol: dict[str, MarketInfo] = {}
    by_id: dict[tuple[str, str], MarketInfo] = {}
    for symbol, m in markets.items():
        kind = "spot" if m.get("spot") else "swap" if m.get("swap") and m.get("linear") else None
        if kind is None:
            continue
        tick, step, size = exchange.exact(m)
        precision = m.get("precision") or {}
        if tick is None:
            tick = to_decimal(precision.get("price"), what="price precision")
        if step is None:
            step = to_decimal(precision.get("amount"), what="amount precision")
        info = MarketInfo(symbol, str(m["id"]), kind, str(m["base"]), str(m["quote"]), m.get("settle"), tick, step,
                          size)
        by_symbol[symbol] = info
        by_id[(kind, info.id)] = info
    return MarketBook(venue, by_symbol, by_id)


# --- the pool ----------------------------------------------------------------------------------------

#: How long a venue's market list, once loaded, serves every pool of the process: a lever's pool
#: starts with the book the collector (or an earlier lever) loaded instead of reloading it per action.
MARKETS_TTL_S = 300.0
_MARKET_BOOKS: dict[tuple[str, str], tuple[float, MarketBook]] = {}


class CexClientPool:
    """Clients, markets and limiters for one event loop. Close it (``aclose`` or ``async with``)."""

    def __init__(self, *, limits: Mapping[str, VenueLimits] | None = None,
                 request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S, base_dir: Path | None = None,
                 rate_limit_ms: float | None = None) -> None:
        self.limits = {**default_limits(), **(limits or {})}
        self.request_timeout_s = request_timeout_s
        self.rate_limit_ms = rate_limit_ms  # None: ccxt's per-key pacing for the venue
        self.base_dir = base_dir
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._clients: dict[tuple[str, str, str, str], Any] = {}
        self._limiters: dict[str, VenueLimiter] = {}
        self._markets: dict[tuple[str, str], asyncio.Future[MarketBook]] = {}
        self._templates: dict[tuple[str, str], Any] = {}
        self._ssl = ssl.create_default_context(cafile=certifi.where())
        self.closed = False

    @property
    def sound(self) -> bool:
        """Open, and its shared HTTP session (if made yet) not closed: fit for another collection."""
        return not self.closed and (self._session is None or not self._session.closed)

    async def __aenter__(self) -> CexClientPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self.closed:
            raise RuntimeError("CexClientPool is closed")
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("a CexClientPool serves one event loop; make one per loop")
        return loop

    def _shared_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ssl=self._ssl, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def limiter(self, venue: str) -> VenueLimiter:
        self._bind()
        if venue not in self._limiters:
            self._limiters[venue] = VenueLimiter(venue, self.limits.get(venue, VenueLimits()),
                                                 exchange_for(venue).request_weight)
        return self._limiters[venue]

    def _template(self, account: CexAccountConfig) -> Any:
        key = (account.venue, account.base_url or "")
        tpl = self._templates.get(key)
        if tpl is None:
            loop = self._bind()
            cfg = _config(account.venue, None, self.request_timeout_s, self.rate_limit_ms)
            cfg.update(session=self._shared_session(), asyncio_loop=loop, ssl_context=self._ssl)
            tpl = exchange_class(account.venue)(cfg)
            point_at(tpl, account.venue, account.base_url)
            tpl.pg_limiter = self.limiter(account.venue)
            self._templates[key] = tpl
        return tpl

    def _new(self, account: CexAccountConfig, secrets: _Secrets | None) -> Any:
        """A client for ``secrets``: a clone of the venue's template with its own mutable state."""
        tpl = self._template(account)
        ex = copy.copy(tpl)
        for name, value in vars(tpl).items():
            if isinstance(value, dict):
                setattr(ex, name, dict(value))
        ex.options = copy.deepcopy(tpl.options)  # ccxt writes into options at run time
        ex.throttler = Throttler(ex.tokenBucket, ex.asyncio_loop)  # ccxt's per-key pacing
        ex.markets_loading = None
        ex.reloading_markets = False
        ex.apiKey = secrets.api_key if secrets else ""
        ex.secret = secrets.secret if secrets else ""
        ex.password = (secrets.passphrase or "") if secrets else ""
        return ex

    def exchange(self, account: CexAccountConfig, cred_id: str) -> Any:
        """The pooled client for one credential (built on first use; rebuilt if its secret changed).

        Raises:
            ConfigError: unknown credential or unreadable secret.
        """
        secrets = _secrets(account, credential(account, cred_id), self.base_dir)
        key = (account.venue, account.base_url or "", cred_id, secrets.fingerprint)
        ex = self._clients.get(key)
        if ex is None:
            ex = self._clients[key] = self._new(account, secrets)
        return ex

    async def markets(self, account: CexAccountConfig) -> MarketBook:
        """The venue's markets (one load per venue and base URL, shared by every account, and by every
        pool of the process for :data:`MARKETS_TTL_S`)."""
        self._bind()
        key = (account.venue, account.base_url or "")
        fut = self._markets.get(key)
        if fut is None or (fut.done() and (fut.cancelled() or fut.exception() is not None)):
            fut = self._markets[key] = asyncio.ensure_future(self._load_markets(account))
        return await asyncio.shield(fut)

    async def _load_markets(self, account: CexAccountConfig) -> MarketBook:
        key = (account.venue, account.base_url or "")
        cached = _MARKET_BOOKS.get(key)
        if cached is not None and time.monotonic() - cached[0] < MARKETS_TTL_S:
            return cached[1]  # loaded by another pool of this process (the collector's, a lever's)
        ex = self._new(account, None)
        self._clients[(account.venue, account.base_url or "", "", "public")] = ex
        try:
            markets = await ex.load_markets()
            book = market_book(account.venue, markets)
        except Exception as exc:
            raise translate(exc, account.venue) from None
        _MARKET_BOOKS[key] = (time.monotonic(), book)
        return book

    def forget_markets(self, account: CexAccountConfig) -> None:
        """Drop cached markets, in this pool and for the process (a position named an unknown
        instrument: reload next time)."""
        self._markets.pop((account.venue, account.base_url or ""), None)
        _MARKET_BOOKS.pop((account.venue, account.base_url or ""), None)

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        clients = [*self._clients.values(), *self._templates.values()]
        self._clients.clear()
        self._templates.clear()
        for fut in self._markets.values():
            if not fut.done():
                fut.cancel()
        await asyncio.gather(*(ex.close() for ex in clients), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
