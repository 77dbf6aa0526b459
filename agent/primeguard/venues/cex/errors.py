"""Classify venue answers into primeguard's typed errors, by the venue's own error CODE.

Where a venue gives a code we never look at its message. The machinery is shared; each exchange
module holds its own code table (``CODES``) and says where its code sits in an answer
(:meth:`CexExchange.error_code`). Because every code is mapped by us, ccxt's own tables (skipped
on non-production hosts, or remapping an auth failure to a retryable-looking one) never decide.

The exchange classes in :mod:`primeguard.venues.cex.client` call :func:`raise_for_response` from
ccxt's ``handle_errors`` hook, so every answer is classified before ccxt's own mapping runs.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import ccxt

from primeguard.domain.errors import (
    InputError,
    InsufficientFunds,
    VenueAuthError,
    VenueBadResponse,
    VenueError,
    VenuePermissionDenied,
    VenueRateLimited,
    VenueUnavailable,
)
from primeguard.domain.findings import Finding, FindingCode, Severity


class ErrorTable(Protocol):
    """What :func:`raise_for_response` needs of an exchange (:class:`~primeguard.venues.cex.exchange.CexExchange`
    provides it): its name, how it reads its error code from a body, and the typed error per code."""

    name: str

    def error_code(self, response: Any) -> tuple[str | None, str]: ...

    def special_error(self, code: str, response: Any, where: str,
                      make: Callable[[type[VenueError], str, str], VenueError]) -> VenueError | None: ...

    def error_kind(self, code: str) -> type[VenueError] | None: ...


class VenueNotFound(VenueError):
    """The order, position or key the request names does not exist (any more)."""


class DuplicateClientOrderId(VenueError):
    """An order with this client order id exists already: an earlier run placed it."""


class ReduceOnlyRejected(VenueError):
    """A reduce-only order found nothing to reduce."""


class VenueBatchError(VenueError):
    """A batch call failed for some or all items; ``items`` holds the venue's per-item answers."""

    def __init__(self, message: str, *, venue: str = "", code: str | None = None,
                 items: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, venue=venue, code=code)
        self.items = items or []


_Kind = type[VenueError]


def _short(text: object, limit: int = 160) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


short_text = _short


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    low = {k.lower(): v for k, v in headers.items()}
    raw = low.get("retry-after")
    if raw is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            return None
    reset = low.get("x-bapi-limit-reset-timestamp")
    if reset is not None:
        try:
            return max(0.0, int(reset) / 1000 - time.time())
        except ValueError:
            return None
    return None


def _make(kind: _Kind, message: str, venue: str, code: str | None, headers: Mapping[str, str] | None) -> VenueError:
    if issubclass(kind, VenueRateLimited):
        return kind(message, venue=venue, code=code, retry_after=_retry_after(headers))
    return kind(message, venue=venue, code=code)


def raise_for_response(exchange: ErrorTable, status: int, headers: Mapping[str, str] | None, body: str,
                       response: Any, path: str) -> None:
    """Raise the typed error an HTTP answer means, or return for a success.

    The exchange reads its own error code (:meth:`CexExchange.error_code`) and maps it to a typed
    error (:meth:`CexExchange.error_kind`); an unknown code is a plain :class:`VenueError`
    (:class:`VenueUnavailable` on a 5xx). HTTP 418/429 are :class:`VenueRateLimited` with the
    venue's ``Retry-After``. A non-JSON 200 or a 4xx without a code is :class:`VenueBadResponse`.
    Never looks at message text to classify.
    """
    venue = exchange.name
    code, msg = exchange.error_code(response)
    where = f"{path}: " if path else ""
    if status in (418, 429):
        return_code = code or str(status)
        raise VenueRateLimited(f"{where}rate limited (HTTP {status}) {_short(msg)}".rstrip(), venue=venue,
                               code=return_code, retry_after=_retry_after(headers))
    if code is not None:
        special = exchange.special_error(code, response, where,
                                         lambda kind, message, c: _make(kind, message, venue, c, headers))
        if special is not None:
            raise special
        known = exchange.error_kind(code)
        kind = known if known is not None else (VenueUnavailable if status >= 500 else VenueError)
        raise _make(kind, f"{where}{_short(msg)}", venue, code, headers)
    if status >= 500:
        raise VenueUnavailable(f"{where}HTTP {status}", venue=venue, code=str(status))
    if response is None:
        if status == 200 and body:
            raise VenueBadResponse(f"{where}answer is not JSON ({len(body)} bytes)", venue=venue)
        if status >= 400:
            raise VenueBadResponse(f"{where}HTTP {status} without a venue error code", venue=venue, code=str(status))
    elif status >= 400:
        raise VenueBadResponse(f"{where}HTTP {status} without a venue error code", venue=venue, code=str(status))


def translate(exc: BaseException, venue: str) -> VenueError:
    """Map anything raised while talking to a venue to a typed :class:`VenueError`."""
    if isinstance(exc, VenueError):
        return exc
    name = type(exc).__name__
    if isinstance(exc, ccxt.RequestTimeout | asyncio.TimeoutError | TimeoutError):
        return VenueUnavailable(f"request timed out ({name})", venue=venue, code="timeout")
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return VenueRateLimited(f"rate limited ({name})", venue=venue)
    if isinstance(exc, ccxt.NetworkError):
        return VenueUnavailable(f"network error ({name})", venue=venue)
    if isinstance(exc, ccxt.AuthenticationError):
        return VenueAuthError(f"authentication failed ({name})", venue=venue)
    if isinstance(exc, ccxt.PermissionDenied):
        return VenuePermissionDenied(f"permission denied ({name})", venue=venue)
    if isinstance(exc, ccxt.InsufficientFunds):
        return InsufficientFunds(f"insufficient funds ({name})", venue=venue)
    if isinstance(exc, ccxt.BadResponse | ccxt.NullResponse | json.JSONDecodeError | KeyError | TypeError
                  | IndexError | AttributeError | InputError | ValueError):
        return VenueBadResponse(f"unusable answer ({name})", venue=venue)
    if isinstance(exc, ccxt.BaseError):
        return VenueError(f"venue error ({name})", venue=venue)
    return VenueUnavailable(f"unexpected failure ({name})", venue=venue)


FINDING_OF: tuple[tuple[type[VenueError], FindingCode], ...] = (
    (VenueRateLimited, FindingCode.VENUE_RATE_LIMITED),
    (VenueUnavailable, FindingCode.VENUE_UNREACHABLE),
    (VenueAuthError, FindingCode.VENUE_AUTH_FAILED),
    (VenuePermissionDenied, FindingCode.VENUE_AUTH_FAILED),
    (VenueBadResponse, FindingCode.VENUE_BAD_RESPONSE),
)


def finding_for(err: VenueError, *, subject: str, client_id: str | None, what: str,
                severity: Severity = Severity.HIGH) -> Finding:
    """The blind-spot finding for a failed read (no secret ever reaches ``err``'s message)."""
    code = next((fc for cls, fc in FINDING_OF if isinstance(err, cls)), FindingCode.VENUE_BAD_RESPONSE)
    details: dict[str, Any] = {"error": type(err).__name__, "venue_code": err.code}
    if isinstance(err, VenueRateLimited) and err.retry_after is not None:
        details["retry_after_s"] = round(err.retry_after, 3)
    return Finding(code=code, severity=severity, subject=subject, message=f"{what}: {err}", venue=err.venue,
                   client_id=client_id, details=details)
