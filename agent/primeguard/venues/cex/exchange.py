"""The one interface the shared CEX code uses to talk to an exchange.

Everything specific to one exchange lives in its own module (``binance.py``, ``okx.py``,
``bybit.py``) as a subclass of :class:`CexExchange`; the shared modules (``client`` for the ccxt
clients and their pool, ``collect`` for the read orchestration, ``levers`` for the idempotent lever
loops, ``errors`` for the typed classification, ``limits`` for request pacing, ``capabilities`` for
the findings vocabulary) call only the methods below and look an exchange up in
:data:`primeguard.venues.cex.registry.EXCHANGES` by its configured venue name. None of them
branches on an exchange's name.

Adding an exchange = one module with a :class:`CexExchange` subclass + one line in the registry.

Conventions every implementation keeps:

- Numbers from the venue go through :func:`primeguard.domain.money.to_decimal` (never float); a body
  of the wrong shape raises :class:`VenueBadResponse`, never a bare ``KeyError``.
- Errors are classified by the venue's documented code (:meth:`CexExchange.error_kind`), never by
  message text.
- Nothing here retries a write; nothing logs or returns a secret.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any, Literal

from primeguard.domain.errors import VenueError
from primeguard.domain.observation import WhitelistStatus
from primeguard.venues.cex.errors import translate
from primeguard.venues.cex.limits import VenueLimits

if TYPE_CHECKING:
    from primeguard.config.schema import CexAccountConfig
    from primeguard.venues.cex.markets import MarketBook, MarketInfo
    from primeguard.venues.cex.normalize import KeyInfo, MonitorRead

Status = Literal["done", "already_done", "failed"]
ErrorKind = type[VenueError]


@dataclass(frozen=True)
class LeverItem:
    """What a lever did to one target (an order book, a position leg, a key)."""

    target: str
    status: Status
    detail: str = ""
    order_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "status": self.status, "detail": self.detail, "order_id": self.order_id}


@dataclass(frozen=True)
class OpenPosition:
    """One open position leg as the close loop needs it.

    ``key`` names the leg in lever targets and client order ids: the unified symbol (OKX: its
    instrument id), with ``#long``/``#short`` appended for a hedge-mode leg so that the two legs
    of one instrument get distinct ids. ``size`` is absolute, in the venue's order unit (base units;
    contracts on OKX). ``leg`` is the venue's own position-side value in hedge mode (Binance
    ``LONG``/``SHORT``, OKX ``long``/``short``, Bybit ``1``/``2``) and None in one-way mode.
    ``problem`` set: the leg cannot be closed by primeguard (the loop reports it as failed).
    """

    key: str
    venue_id: str
    size: Decimal
    close_side: Literal["buy", "sell"]
    mark: Decimal
    leg: str | None = None
    market: MarketInfo | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    problem: str | None = None


@dataclass(frozen=True)
class CloseFill:
    """The venue's answer to a close order: ``filled`` in the order unit, or None when the venue
    closes at market without reporting a fill (``detail`` then says what was done)."""

    filled: Decimal | None
    status: str
    detail: str = ""


class WhitelistAccess(enum.Enum):
    """How the withdrawal address book can be read."""

    MONITOR = "monitor"  # with the monitoring key, alongside balances
    WITHDRAW_KEY = "withdraw_key"  # only with a key that has the withdraw permission
    NONE = "none"  # the venue has no endpoint: always unverifiable


PublicKeyOf = Callable[[str], str]  # credential id -> its (public) api key; raises ConfigError


class CexExchange(abc.ABC):
    """One exchange: its ccxt wiring, its answers' meaning, its reads and its levers.

    Instances are stateless singletons (one per module); every method receives the ccxt client
    (``ex``) it must use. Methods that take ``ex`` do I/O; the others are pure.
    """

    #: configured venue name and ccxt exchange id
    name: str = ""
    #: the exchange's API keys come with a passphrase (the client refuses to build without one)
    needs_passphrase: bool = False
    #: venue codes that mean "this API key has expired" (the key can do nothing)
    expired_codes: frozenset[str] = frozenset()
    #: venue codes with which the venue refuses a key for what the key is (deleted, disabled, bound to
    #: other addresses) rather than for a fault; the collector asks :meth:`refused_key_state` to confirm
    refused_codes: frozenset[str] = frozenset()
    #: how the withdrawal address book is read; see :class:`WhitelistAccess`
    whitelist_access: WhitelistAccess = WhitelistAccess.NONE
    #: why the whitelist cannot be verified when ``whitelist_access`` is NONE
    no_whitelist_reason: str = ""
    #: the venue's withdrawal statuses (as strings) → (``pending`` | ``confirmed`` | ``failed``, label);
    #: a status missing here is unknown to primeguard (a blind spot, never a success)
    withdrawal_states: Mapping[str, tuple[str, str]] = {}
    #: the field of the venue's raw withdrawal record holding that status, and the one holding the
    #: venue's failure reason (None: the venue gives none, the status label stands for it)
    withdrawal_status_field: str = "status"
    withdrawal_reason_field: str | None = None

    # --- ccxt wiring -----------------------------------------------------------------------------

    @abc.abstractmethod
    def ccxt_options(self) -> dict[str, Any]:
        """ccxt ``options`` for a minimal market load and no clock sync (a fresh dict each call)."""

    @abc.abstractmethod
    def point_at(self, ex: Any, scheme: str, netloc: str) -> None:
        """Aim a ccxt client at ``scheme://netloc`` following ccxt's URL layout for this exchange.
        Never calls ``set_sandbox_mode`` (it would swap real testnet URLs back in)."""

    @abc.abstractmethod
    def exact(self, market: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None, Decimal]:
        """(tick, step, contract size) from the venue's own fields of a ccxt market; None for a
        size the venue fields do not give (the caller falls back to ccxt's precision).

        Raises:
            InputError: a field that is not a number.
        """

    # --- errors ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def error_code(self, response: Any) -> tuple[str | None, str]:
        """(venue error code, message) of a decoded answer; code None when it is a success."""

    #: The venue's error codes and the typed error each means (keys as the venue documents them:
    #: numbers for Binance and Bybit, strings for OKX).
    codes: Mapping[Any, ErrorKind] = {}

    def error_kind(self, code: str) -> ErrorKind | None:
        """The typed error a venue code means (looked up in :attr:`codes` as given, then as an
        integer), None when the code is not in the table."""
        kind = self.codes.get(code)
        if kind is not None:
            return kind
        try:
            return self.codes.get(int(code))
        except (TypeError, ValueError):
            return None

    def special_error(self, code: str, response: Any, where: str,
                      make: Callable[[ErrorKind, str, str], VenueError]) -> VenueError | None:
        """An error the generic rule cannot build (e.g. a batch answer with per-item codes), or None.

        ``make(kind, message, code)`` builds a typed error with the request's headers applied."""
        return None

    def limiter_path(self, ex: Any, api: Any, path: str) -> str:
        """The URL path the venue weighs a request by ("" when it has no weight budget)."""
        return ""

    def request_weight(self, path: str, query: str) -> tuple[str | None, int]:
        """(budget prefix, weight) of a request; (None, 0) when the exchange has no weight budget."""
        return None, 0

    def default_limits(self) -> VenueLimits:
        """How hard one process may use the exchange by default: 16 requests in flight, no weight
        budget (an exchange with published weights overrides this)."""
        return VenueLimits(16)

    async def write(self, ex: Any, call: Awaitable[Any]) -> Any:
        """Await a write (order, key change, withdrawal) and return its answer; an exchange whose
        answer to a missing permission is ambiguous refines it here. Never retries."""
        return await call

    # --- reads -----------------------------------------------------------------------------------

    @abc.abstractmethod
    async def inspect_key(self, ex: Any) -> KeyInfo:
        """What the key behind ``ex`` may do, as the venue tells the key itself.

        Raises:
            VenueError: the venue refused or gave an unusable answer.
        """

    @abc.abstractmethod
    async def read_account(self, ex: Any, book: MarketBook, account_id: str, at: datetime,
                           read: MonitorRead) -> None:
        """Balances and positions of the sub-account behind the monitoring key, into ``read``.

        Raises:
            VenueError: any read failed or gave an unusable answer (``read`` is then discarded).
        """

    async def read_whitelist(self, ex: Any) -> WhitelistStatus:
        """The withdrawal address book (only called when ``whitelist_access`` is not NONE).

        Raises:
            VenueError: unreadable.
        """
        return WhitelistStatus(enabled=None)

    async def refused_key_state(self, ex: Any, account: CexAccountConfig, api_key: str) -> str | None:
        """Through the key-managing client ``ex`` (key_admin or master): why the client key ``api_key``
        of ``account`` can do nothing any more (e.g. "deleted"), or None when the venue shows it live
        or cannot say. Only a confirmed answer turns a refused key into a fact.

        Raises:
            VenueError: the key-management read failed.
        """
        return None

    # --- levers ----------------------------------------------------------------------------------

    @abc.abstractmethod
    async def cancel_all(self, ex: Any) -> list[LeverItem]:
        """Cancel every open spot and futures order; one item per symbol/scope/order touched, none
        when nothing was open. Idempotent. Never raises for a venue fault on one item (it becomes
        a failed item); raises VenueError when the open orders cannot even be listed."""

    @abc.abstractmethod
    async def open_positions(self, ex: Any, book: MarketBook) -> list[OpenPosition]:
        """Every open futures position leg (both legs in hedge mode), zero-size rows left out.

        Raises:
            VenueError: the positions cannot be listed.
        """

    async def prior_close(self, ex: Any, pos: OpenPosition, cid: str) -> str | None:
        """Status of an order with client id ``cid`` on the venue, None when there is none."""
        return None

    @abc.abstractmethod
    def close_guard(self, pos: OpenPosition, cap: Decimal) -> tuple[Decimal | None, str | None]:
        """(limit price, None) to close within ``cap`` of the mark, (None, None) to close at market,
        or (None, reason) to refuse. Pure."""

    @abc.abstractmethod
    async def place_close(self, ex: Any, pos: OpenPosition, cid: str, price: Decimal | None) -> CloseFill:
        """Send one reduce-only close for ``pos`` with client id ``cid`` (the leg's side in hedge
        mode). Sent at most once; never retried.

        Raises:
            ReduceOnlyRejected / DuplicateClientOrderId / VenueNotFound: nothing left to close, or
                an earlier run sent it (the loop counts these as already done); other VenueError.
        """

    @abc.abstractmethod
    async def disable_client_keys(self, ex: Any, account: CexAccountConfig,
                                  public_key: PublicKeyOf) -> list[LeverItem]:
        """Stop every client-held key of ``account`` with the master key behind ``ex``; checks the
        current state first (idempotent). One item per key or sub-account; none when the account has
        no client key. Never raises for a venue fault (a failed item instead)."""

    # --- liquidation: spot sales and the sweep to the PB's master account ---------------------------

    async def spot_free(self, ex: Any) -> dict[str, Decimal]:
        """Free (not locked) spot balances of the sub-account, asset → units, zero rows left out.

        Raises:
            VenueError: unreadable.
        """
        raise VenueError(f"{self.name}: spot balances are not implemented", venue=self.name)

    async def reference_price(self, ex: Any, book: MarketBook, base: str, quote: str) -> Decimal:
        """The venue's mark price of the ``base``/``quote`` linear perpetual: the anchor of a spot
        sale's slippage cap (never the spot book the order will hit).

        Raises:
            VenueError: no mark price (no such perpetual, or unreadable).
        """
        raise VenueError(f"{self.name}: mark prices are not implemented", venue=self.name)

    async def prior_spot_order(self, ex: Any, market: MarketInfo, cid: str) -> CloseFill | None:
        """The spot order with client id ``cid`` (its fill and status), None when the venue has none."""
        return None

    async def place_spot_sell(self, ex: Any, market: MarketInfo, qty: Decimal, price: Decimal,
                              cid: str) -> CloseFill:
        """Send one limit IOC sell of ``qty`` base units at no less than ``price`` with client id
        ``cid``; sent at most once, never retried.

        Raises:
            VenueError subclasses, classified by code.
        """
        raise VenueError(f"{self.name}: spot sales are not implemented", venue=self.name)

    async def consolidate(self, ex: Any, asset: str) -> str | None:
        """Bring the sub-account's withdrawable ``asset`` from its other wallets into the one the
        sweep sends from; says what moved, None when nothing had to (a unified account never has
        to). Idempotent by state: an empty wallet moves nothing.

        Raises:
            VenueError subclasses (VenuePermissionDenied for a key without transfer power...).
        """
        return None

    async def prior_transfer(self, ex: Any, account: CexAccountConfig, asset: str, transfer_id: str) -> str | None:
        """The venue's id of the sub→master transfer made with our ``transfer_id``, None when there
        is none (or the venue takes no client transfer id: then the balance read is the guard)."""
        return None

    async def transfer_to_master(self, ex: Any, account: CexAccountConfig, asset: str, amount: Decimal,
                                 transfer_id: str) -> str:
        """Move ``amount`` of ``asset`` from the sub-account to the PB's master account with the
        operator key behind ``ex`` (``transfer_id`` is the venue's client transfer id where it has
        one); returns the venue's transfer id. Sent at most once, never retried.

        Raises:
            VenueError subclasses (VenuePermissionDenied for a key without transfer power...).
        """
        raise VenueError(f"{self.name}: transfers to the master account are not implemented", venue=self.name)

    @abc.abstractmethod
    async def submit_withdrawal(self, ex: Any, *, asset: str, amount: Decimal, address: str, network: str,
                                request_id: str) -> str | None:
        """Send one withdrawal of ``amount`` (``asset`` units, > 0) and return the venue's id (None
        when the answer carries none). Sent at most once; ``request_id`` is the venue's client id
        where it has one.

        Raises:
            VenueError subclasses, classified by code (AddressNotWhitelisted, InsufficientFunds...).
        """


def fail_item(target: str, exc: BaseException, venue: str) -> LeverItem:
    """A failed lever item naming the typed error (never a secret: errors carry none)."""
    err = translate(exc, venue)
    return LeverItem(target, "failed", f"{type(err).__name__}: {err}"[:300])


def hedge_key(symbol: str, leg: Literal["long", "short"] | None) -> str:
    """The lever key of a position leg: the symbol alone in one-way mode, ``symbol#long`` or
    ``symbol#short`` for a hedge-mode leg (so both legs get their own client order id)."""
    return symbol if leg is None else f"{symbol}#{leg}"


def limit_price(mark: Decimal, side: str, cap: Decimal, tick: Decimal) -> Decimal:
    """The worst acceptable price: sells at mark·(1−cap) rounded up, buys at mark·(1+cap) rounded down
    to the tick. Pure; prices in quote units."""
    if side == "sell":
        raw, rounding = mark * (1 - cap), ROUND_CEILING
    else:
        raw, rounding = mark * (1 + cap), ROUND_FLOOR
    return (raw / tick).to_integral_value(rounding=rounding) * tick


def limit_guard(pos: OpenPosition, cap: Decimal) -> tuple[Decimal | None, str | None]:
    """:meth:`CexExchange.close_guard` for exchanges closing with a limit IOC order at the cap."""
    if pos.market is None:
        return None, "instrument unknown to primeguard"
    return limit_price(pos.mark, pos.close_side, cap, pos.market.tick), None
