"""Classify venue answers into primeguard's typed errors, by the venue's own error CODE.

Where a venue gives a code we never look at its message. Two ccxt traps are handled here:

- On non-Binance hosts ccxt skips Binance's per-market error tables, so ``-4035`` (withdrawal
  address not whitelisted) would surface as a bare ``ExchangeError``: we map it ourselves.
- After one successful private call ccxt turns Binance ``-2015`` (invalid key, IP or permission)
  into ``DDoSProtection``, which looks retryable: we map it to :class:`VenueAuthError` (never
  retried). ``-2015`` is also what Binance answers to a key lacking a permission; callers that
  write (orders, withdrawals) refine it with a probe (see ``levers``).

The exchange classes in :mod:`primeguard.venues.cex.client` call :func:`raise_for_response` from
ccxt's ``handle_errors`` hook, so every answer is classified before ccxt's own mapping runs.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

import ccxt

from primeguard.domain.errors import (
    AddressNotWhitelisted,
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

BINANCE_CODES: dict[int, _Kind] = {
    -1000: VenueUnavailable, -1001: VenueUnavailable, -1006: VenueUnavailable, -1007: VenueUnavailable,
    -1008: VenueUnavailable, -1003: VenueRateLimited, -1015: VenueRateLimited,
    -1002: VenuePermissionDenied, -1021: VenueAuthError, -1022: VenueAuthError, -2014: VenueAuthError,
    -2015: VenueAuthError, -2008: VenueAuthError,
    -4035: AddressNotWhitelisted, -2019: InsufficientFunds, -4026: InsufficientFunds,
    -2011: VenueNotFound, -2013: VenueNotFound, -4116: DuplicateClientOrderId, -2022: ReduceOnlyRejected,
}
OKX_CODES: dict[str, _Kind] = {
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
BYBIT_CODES: dict[int, _Kind] = {
    10006: VenueRateLimited, 10018: VenueRateLimited, 10016: VenueUnavailable, 10019: VenueUnavailable,
    10002: VenueAuthError, 10003: VenueAuthError, 10004: VenueAuthError, 10007: VenueAuthError,
    10008: VenueAuthError, 10009: VenueAuthError, 10010: VenueAuthError, 33004: VenueAuthError,
    10005: VenuePermissionDenied, 10024: VenuePermissionDenied, 10027: VenuePermissionDenied,
    131093: AddressNotWhitelisted, 131001: InsufficientFunds, 131212: InsufficientFunds,
    110007: InsufficientFunds, 110004: InsufficientFunds, 110072: DuplicateClientOrderId, 110001: VenueNotFound,
    131207: VenueNotFound, 110017: ReduceOnlyRejected,
}


def _short(text: object, limit: int = 160) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


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


def _by_code(venue: str, code: Any) -> _Kind | None:
    if venue == "binance":
        try:
            return BINANCE_CODES.get(int(code))
        except (TypeError, ValueError):
            return None
    if venue == "okx":
        return OKX_CODES.get(str(code))
    if venue == "bybit":
        try:
            return BYBIT_CODES.get(int(code))
        except (TypeError, ValueError):
            return None
    return None


def _venue_code(venue: str, response: Any) -> tuple[str | None, str]:
    """The venue's error code (None when the answer is a success) and its message."""
    if venue == "binance":
        item = response[0] if isinstance(response, list) and len(response) == 1 else response
        if isinstance(item, dict) and "code" in item and str(item["code"]) not in ("0", "200"):
            return str(item["code"]), str(item.get("msg", ""))
        return None, ""
    if venue == "okx":
        if isinstance(response, dict) and "code" in response and str(response["code"]) != "0":
            return str(response["code"]), str(response.get("msg", ""))
        return None, ""
    if venue == "bybit":
        if isinstance(response, dict):
            code = response.get("retCode", response.get("ret_code"))
            if code is not None and str(code) != "0":
                return str(code), str(response.get("retMsg", response.get("ret_msg", "")))
        return None, ""
    return None, ""


def raise_for_response(venue: str, status: int, headers: Mapping[str, str] | None, body: str, response: Any,
                       path: str) -> None:
    """Raise the typed error an HTTP answer means, or return for a success."""
    code, msg = _venue_code(venue, response)
    where = f"{path}: " if path else ""
    if status in (418, 429):
        return_code = code or str(status)
        raise VenueRateLimited(f"{where}rate limited (HTTP {status}) {_short(msg)}".rstrip(), venue=venue,
                               code=return_code, retry_after=_retry_after(headers))
    if code is not None:
        if venue == "okx" and code in ("1", "2"):
            items = response.get("data") if isinstance(response, dict) else None
            items = items if isinstance(items, list) else []
            codes = [str(i.get("sCode")) for i in items if isinstance(i, dict) and str(i.get("sCode")) != "0"]
            if len(items) == 1 and codes:  # a single-item call: classify by the item's own code
                item = items[0]
                kind = _by_code(venue, codes[0]) or VenueError
                raise _make(kind, f"{where}{_short(item.get('sMsg', msg))}", venue, codes[0], headers)
            raise VenueBatchError(f"{where}{_short(msg)} ({len(codes)} of {len(items)} items failed)", venue=venue,
                                  code=code, items=[i for i in items if isinstance(i, dict)])
        known = _by_code(venue, code)
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
