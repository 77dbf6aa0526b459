"""Loan interest, exact in Decimal.

Day count ACT/365 (fixed): the year fraction between two instants is the exact elapsed seconds
divided by 365 × 86 400, leap years included (a leap year accrues 366/365 of the annual rate).

- Simple (default): ``interest = principal × Σ rate_i × yearfrac_i`` over constant-rate segments.
- Compounded every ``compounding_period_s``: within one constant-rate segment the balance grows
  by ``(1 + r·P/Y)^n × (1 + r·rest/Y)`` where ``n`` whole periods fit in the segment and ``rest``
  is the remainder, accrued simply. Periods are counted from the start of each segment.
- The rate is ``loan.annual_rate`` until the first :class:`RateFixing`; each fixing sets the rate
  from its instant on. A fixing may carry the pool utilization instead of a rate: the terms'
  :class:`UtilizationCurve` turns it into a rate (kinked, pool style).

Nothing here reads the clock: ``now`` is always passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from primeguard.domain.model import Loan
from primeguard.risk.pricing import exact_seconds

SECONDS_PER_YEAR = Decimal(365 * 86400)
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class UtilizationCurve:
    """Kinked rate curve: ``base + slope1·u`` up to ``kink``, then ``+ slope2`` per unit above."""

    base: Decimal
    slope1: Decimal
    slope2: Decimal
    kink: Decimal

    def rate(self, utilization: Decimal) -> Decimal:
        return utilization_rate(utilization, base=self.base, slope1=self.slope1, slope2=self.slope2, kink=self.kink)


@dataclass(frozen=True, slots=True)
class RateFixing:
    """From ``at`` on, the loan pays ``annual_rate`` (or the curve's rate at ``utilization``)."""

    at: datetime
    annual_rate: Decimal | None = None
    utilization: Decimal | None = None


@dataclass(frozen=True, slots=True)
class InterestTerms:
    """How a loan accrues beyond its flat ``annual_rate``. The default is simple interest."""

    compounding_period_s: int | None = None  # None: simple interest
    curve: UtilizationCurve | None = None
    fixings: tuple[RateFixing, ...] = ()

    def __post_init__(self) -> None:
        if self.compounding_period_s is not None and self.compounding_period_s <= 0:
            raise ValueError("compounding_period_s must be positive")
        for f in self.fixings:
            if (f.annual_rate is None) == (f.utilization is None):
                raise ValueError("a rate fixing needs exactly one of annual_rate or utilization")
            if f.utilization is not None and self.curve is None:
                raise ValueError("a utilization fixing needs a utilization curve")

    def rate_of(self, fixing: RateFixing) -> Decimal:
        if fixing.annual_rate is not None:
            return fixing.annual_rate
        assert self.curve is not None and fixing.utilization is not None  # checked in __post_init__
        return self.curve.rate(fixing.utilization)


SIMPLE = InterestTerms()


def utilization_rate(utilization: Decimal, *, base: Decimal, slope1: Decimal, slope2: Decimal,
                     kink: Decimal) -> Decimal:
    """Kinked utilization curve (pool-style): ``base + slope1·u`` up to ``kink``, steeper after."""
    if utilization <= kink:
        return base + slope1 * utilization
    return base + slope1 * kink + slope2 * (utilization - kink)


def year_fraction(start: datetime, end: datetime) -> Decimal:
    """ACT/365 year fraction, exact; zero when ``end`` is not after ``start``."""
    if end <= start:
        return ZERO
    return exact_seconds(end - start) / SECONDS_PER_YEAR


def rate_segments(loan: Loan, now: datetime, terms: InterestTerms = SIMPLE) -> list[tuple[datetime, datetime, Decimal]]:
    """Constant-rate segments ``(from, to, annual_rate)`` covering ``loan.start`` → ``now``."""
    if now <= loan.start:
        return []
    points: list[tuple[datetime, Decimal]] = [(loan.start, loan.annual_rate)]
    for f in sorted(terms.fixings, key=lambda x: x.at):
        if f.at >= now:
            break
        rate = terms.rate_of(f)
        if f.at <= loan.start:
            points[0] = (loan.start, rate)  # fixed before the loan began: it applies from the start
        else:
            points.append((f.at, rate))
    ends = [p[0] for p in points[1:]] + [now]
    return [(start, end, rate) for (start, rate), end in zip(points, ends, strict=True) if end > start]


def accrued_interest(loan: Loan, now: datetime, terms: InterestTerms | None = None) -> Decimal:
    """Interest accrued from ``loan.start`` to ``now``, in the loan's asset (0 before the start)."""
    if terms is None or (not terms.fixings and terms.compounding_period_s is None):
        return loan.principal * (loan.annual_rate * year_fraction(loan.start, now))  # the common case, fast
    t = terms
    segments = rate_segments(loan, now, t)
    if t.compounding_period_s is None:
        return loan.principal * sum((rate * year_fraction(a, b) for a, b, rate in segments), ZERO)
    period = Decimal(t.compounding_period_s)
    growth = Decimal(1)
    for a, b, rate in segments:
        seconds = exact_seconds(b - a)
        whole = int(seconds // period)
        rest = seconds - whole * period
        growth *= (1 + rate * period / SECONDS_PER_YEAR) ** whole * (1 + rate * rest / SECONDS_PER_YEAR)
    return loan.principal * (growth - 1)


def amount_owed(loan: Loan, now: datetime, terms: InterestTerms | None = None) -> Decimal:
    """Principal plus accrued interest, in the loan's asset."""
    return loan.principal + accrued_interest(loan, now, terms)
