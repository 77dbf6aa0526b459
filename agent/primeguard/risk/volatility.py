"""Haircuts that follow volatility: ``haircut = min(1, max(floor, k × σ))``.

σ is the sample standard deviation of daily log returns ``ln(close_d / close_{d−1})`` over the
last ``window_days`` days of price history, one close per UTC day (the last price seen that day).
Days without a price are skipped, not filled. With fewer than ``min_points`` returns the haircut
stays at its ``floor`` and a ``HAIRCUT_HISTORY_SHORT`` finding says so. Decimal throughout
(``ln`` and ``sqrt`` at the context's precision): same history, same haircut.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.risk.pricing import dec_str

ZERO = Decimal(0)
ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class VolatilityHaircut:
    """The haircut used for ``asset`` and its inputs, to show next to it."""

    asset: str
    haircut: Decimal
    floor: Decimal
    k: Decimal
    sigma: Decimal | None  # None: too little history
    returns: int  # daily log returns used
    window_days: int
    finding: Finding | None = None

    def to_json_dict(self) -> dict[str, object]:
        return {"asset": self.asset, "haircut": dec_str(self.haircut), "floor": dec_str(self.floor),
                "k": dec_str(self.k), "sigma": dec_str(self.sigma), "returns": self.returns,
                "window_days": self.window_days, "fallback": self.sigma is None}


def daily_closes(points: Iterable[tuple[datetime, Decimal]], now: datetime, window_days: int) -> list[Decimal]:
    """One close per UTC day (the latest price of the day) for the ``window_days`` days up to ``now``,
    oldest first. Non-positive prices are ignored."""
    since = now - timedelta(days=window_days)
    last: dict[date, tuple[datetime, Decimal]] = {}
    for at, price in points:
        if at <= since or at > now or not price.is_finite() or price <= 0:
            continue
        d = at.date()
        cur = last.get(d)
        if cur is None or at >= cur[0]:
            last[d] = (at, price)
    return [last[d][1] for d in sorted(last)]


def sigma_of(closes: list[Decimal]) -> Decimal | None:
    """Sample standard deviation of the daily log returns; None with fewer than two returns."""
    rets = [(b / a).ln() for a, b in pairwise(closes)]
    n = len(rets)
    if n < 2:
        return None
    mean = sum(rets, ZERO) / n
    var = sum(((r - mean) ** 2 for r in rets), ZERO) / (n - 1)
    return var.sqrt()


def volatility_haircut(asset: str, floor: Decimal, k: Decimal, points: Iterable[tuple[datetime, Decimal]],
                       now: datetime, *, window_days: int, min_points: int,
                       short_history_haircut: Decimal | None = None) -> VolatilityHaircut:
    """``min(1, max(floor, k × σ))`` from ``points`` (time, price); with fewer than ``min_points``
    daily returns in the window, ``short_history_haircut`` (default: the floor; 1 counts the asset
    at nothing) and a finding."""
    closes = daily_closes(points, now, window_days)
    returns = max(0, len(closes) - 1)
    sigma = sigma_of(closes) if returns >= min_points else None
    if sigma is None:
        used = floor if short_history_haircut is None else short_history_haircut
        what = f"stays at its floor {floor}" if used == floor else f"is {used} until history builds up"
        finding = Finding(FindingCode.HAIRCUT_HISTORY_SHORT, Severity.WARNING, asset,
                          f"{asset}: {returns} daily returns in the last {window_days} days (need {min_points}); "
                          f"the haircut {what}", details={"asset": asset, "returns": returns,
                                                          "min_points": min_points, "floor": dec_str(floor),
                                                          "haircut": dec_str(used)})
        return VolatilityHaircut(asset, used, floor, k, None, returns, window_days, finding)
    return VolatilityHaircut(asset, min(ONE, max(floor, k * sigma)), floor, k, sigma, returns, window_days)
