"""Per-venue request limits on top of ccxt's per-instance throttle.

ccxt's ``enableRateLimit`` throttles each exchange *instance*; we keep one instance per API key,
which matches venues whose limits are per account / UID but not venues whose weight limits are
per IP across every key we use. So each venue also gets:

- a cap on requests in flight (``max_in_flight``), and
- token buckets over the venue's documented request weights per minute, where it has them (the
  exchange module gives the weights: :meth:`CexExchange.request_weight`), allowing the bursts the
  venue's minute windows allow;
- a venue-wide pause when the venue says ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

Weigh = Callable[[str, str], tuple[str | None, int]]  # (url path, query) -> (budget prefix, weight)


@dataclass(frozen=True)
class VenueLimits:
    """How hard primeguard may use one venue from one process."""

    max_in_flight: int = 16
    weight_budgets: dict[str, int] = field(default_factory=dict)  # path prefix -> weight per minute

    @property
    def accounts_in_flight(self) -> int:
        """Accounts collected at once: enough to keep ``max_in_flight`` requests busy."""
        return self.max_in_flight * 4


def _unweighted(path: str, query: str) -> tuple[str | None, int]:
    return None, 0


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

    def __init__(self, venue: str, limits: VenueLimits, weigh: Weigh = _unweighted) -> None:
        self.venue = venue
        self._weigh = weigh
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
        prefix, weight = self._weigh(path, query)
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
