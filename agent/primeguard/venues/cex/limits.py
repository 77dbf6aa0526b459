"""Per-venue request limits on top of ccxt's per-instance throttle.

ccxt's ``enableRateLimit`` throttles each exchange *instance*; we keep one instance per API key,
which matches OKX and Bybit (their limits are per account / UID) but not Binance, whose weight
limits are per IP across every key we use. So each venue also gets:

- a cap on requests in flight (``max_in_flight``), and
- for Binance, token buckets over the documented request weights per minute (``/api`` 6000,
  ``/fapi`` 2400, ``/sapi`` 12000), allowing the bursts the venue's minute windows allow;
- a venue-wide pause when the venue says ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

# Binance request weights (documented per endpoint); unknown paths weigh 1.
BINANCE_WEIGHTS: dict[str, int] = {
    "/api/v3/account": 20, "/api/v3/exchangeInfo": 20, "/api/v3/openOrders": 6, "/api/v3/order": 1,
    "/fapi/v3/account": 5, "/fapi/v3/positionRisk": 5, "/fapi/v1/exchangeInfo": 1, "/fapi/v1/openOrders": 1,
    "/fapi/v1/leverageBracket": 1, "/fapi/v1/order": 1, "/fapi/v1/allOpenOrders": 1,
    "/sapi/v1/capital/withdraw/address/list": 10, "/sapi/v1/account/apiRestrictions": 1,
    "/sapi/v1/capital/withdraw/apply": 1, "/sapi/v1/sub-account/subAccountApi/ipRestriction": 20,
    "/sapi/v2/sub-account/subAccountApi/ipRestriction": 20,
}
BINANCE_NO_SYMBOL_WEIGHTS: dict[str, int] = {"/api/v3/openOrders": 80, "/fapi/v1/openOrders": 40}
BINANCE_BUDGETS: dict[str, int] = {"/api/": 6000, "/fapi/": 2400, "/sapi/": 12000}


@dataclass(frozen=True)
class VenueLimits:
    """How hard primeguard may use one venue from one process."""

    max_in_flight: int = 16
    weight_budgets: dict[str, int] = field(default_factory=dict)  # path prefix -> weight per minute

    @property
    def accounts_in_flight(self) -> int:
        """Accounts collected at once: enough to keep ``max_in_flight`` requests busy."""
        return self.max_in_flight * 4


DEFAULT_LIMITS: dict[str, VenueLimits] = {
    "binance": VenueLimits(16, dict(BINANCE_BUDGETS)),
    "okx": VenueLimits(16),
    "bybit": VenueLimits(16),
}


def request_weight(venue: str, path: str, query: str) -> tuple[str | None, int]:
    """(budget prefix, weight) of a request; (None, 0) when the venue has no weight budget."""
    if venue != "binance":
        return None, 0
    prefix = next((p for p in BINANCE_BUDGETS if path.startswith(p)), None)
    if prefix is None:
        return None, 0
    if path in BINANCE_NO_SYMBOL_WEIGHTS and "symbol=" not in query:
        return prefix, BINANCE_NO_SYMBOL_WEIGHTS[path]
    return prefix, BINANCE_WEIGHTS.get(path, 1)


class _Bucket:
    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.tokens = float(per_minute)
        self.rate = per_minute / 60.0
        self.stamp = time.monotonic()

    def wait_for(self, weight: int) -> float:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= weight:
            self.tokens -= weight
            return 0.0
        return (weight - self.tokens) / self.rate


class VenueLimiter:
    """Limits for one venue inside one event loop."""

    def __init__(self, venue: str, limits: VenueLimits) -> None:
        self.venue = venue
        self.limits = limits
        self._sem = asyncio.Semaphore(limits.max_in_flight)
        self._buckets = {p: _Bucket(n) for p, n in limits.weight_budgets.items()}
        self._blocked_until = 0.0
        self.requests = 0
        self.weight_used = 0

    def block(self, seconds: float) -> None:
        """Pause the whole venue (the venue said Retry-After)."""
        self._blocked_until = max(self._blocked_until, time.monotonic() + seconds)

    @contextlib.asynccontextmanager
    async def slot(self, path: str, query: str = "") -> AsyncIterator[None]:
        pause = self._blocked_until - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        prefix, weight = request_weight(self.venue, path, query)
        bucket = self._buckets.get(prefix) if prefix else None
        while bucket is not None:
            delay = bucket.wait_for(weight)
            if delay <= 0:
                break
            await asyncio.sleep(delay)
        async with self._sem:
            self.requests += 1
            self.weight_used += weight
            yield
