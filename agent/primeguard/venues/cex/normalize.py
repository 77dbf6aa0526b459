"""Shared helpers to turn venue JSON (ccxt implicit-method results) into domain values. Pure.

The exchange-specific normalizers live in each exchange's module (``binance.py``, ``okx.py``,
``bybit.py``); this module holds what they share: the read accumulator, the key-inspection result,
the shape guard and the number/time readers.

Every number goes through :func:`primeguard.domain.money.to_decimal` (never float). A field that
is missing or not a number, or a body of the wrong shape, raises :class:`VenueBadResponse` (never a
bare KeyError/TypeError), which the collector reports as a bad response: a malformed answer never
becomes a zero.

Key flags are read by their documented type only: a flag of another type (a boolean sent as a
string, a list sent as a number...) is *unknown*: the key is then treated as able to do anything
(``Capability.UNKNOWN``, IP binding and master status ``None``) and the field is listed in
:attr:`KeyInfo.type_errors` so the collector raises a finding. Numbers arrive as ccxt delivers them
(JSON numbers or numeric strings).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

from primeguard.domain.errors import InputError, VenueBadResponse
from primeguard.domain.model import Balance, Capability, Position, PriceQuote, PriceSourceKind
from primeguard.domain.money import to_decimal

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


def shape(venue: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
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


def bounded(locked: Decimal, total: Decimal) -> Decimal:
    """Locked/frozen amount as far as it exists: venues sharing margin across assets report frozen
    amounts above an asset's own cash balance; what is locked can never exceed what is held."""
    return max(ZERO, min(locked, max(total, ZERO)))


def as_list(raw: Any, what: str, venue: str) -> list[Any]:
    """``raw`` when it is a list. Raises VenueBadResponse otherwise."""
    if not isinstance(raw, list):
        raise VenueBadResponse(f"{what} is not a list", venue=venue)
    return raw


def flag01(raw: Any) -> int | None:
    """A Bybit 0/1 field as ccxt delivers it (JSON number, or numeric string): 0, 1, or None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int) and raw in (0, 1):
        return raw
    if isinstance(raw, str) and raw in ("0", "1"):
        return int(raw)
    return None


def dec(raw: Any, what: str) -> Decimal:
    """An exact number (JSON number or numeric string). Raises InputError otherwise."""
    return to_decimal(raw, what=what)


def opt_dec(raw: Any, what: str) -> Decimal | None:
    """An exact number, or None for a missing/empty field. Raises InputError for a non-number."""
    if raw in (None, ""):
        return None
    value = to_decimal(raw, what=what)
    return value


def ms_time(raw: Any) -> datetime | None:
    """A UTC time from epoch milliseconds; None for absent/0. Raises VenueBadResponse otherwise."""
    if raw in (None, "", 0, "0") or isinstance(raw, bool):
        return None
    try:
        return datetime.fromtimestamp(int(str(raw)) / 1000, UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise VenueBadResponse(f"timestamp {str(raw)[:20]!r} is not milliseconds") from exc


def envelope(resp: Any, key: str, venue: str) -> Any:
    """The payload under ``key`` of an enveloped answer (OKX ``data``, Bybit ``result``).

    Raises:
        VenueBadResponse: the answer is not an object or lacks ``key``.
    """
    if not isinstance(resp, dict):
        raise VenueBadResponse("answer is not an object", venue=venue)
    if key not in resp:
        raise VenueBadResponse(f"answer has no {key!r}", venue=venue)
    return resp[key]


def mark_quote(asset: str, price: Decimal, venue: str, instrument: str, updated: datetime, at: datetime) -> PriceQuote:
    """The venue's mark price of ``instrument`` as a price quote for ``asset``."""
    return PriceQuote(asset=asset, price=price, source=PriceSourceKind.VENUE_MARK, source_id=f"{venue}:{instrument}",
                      updated_at=updated, observed_at=at)
