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
- A credit facility (``InterestTerms.facility_limit``): the utilization is the outstanding
  principal ÷ the facility limit, so every draw or repayment moves the rate along the curve.
- Draws and repayments (``Loan.events``) change the principal from their instant on. A
  repayment pays accrued interest first, then principal; anything beyond what is owed is ignored.
- Compounding periods are counted from ``loan.start``: at each boundary the interest accrued so
  far is capitalised and earns interest from then on.

Nothing here reads the clock: ``now`` is always passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import pairwise

from primeguard.domain.model import Loan, LoanEvent
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
    facility_limit: Decimal | None = None  # utilization = outstanding principal / this limit

    def __post_init__(self) -> None:
        if self.compounding_period_s is not None and self.compounding_period_s <= 0:
            raise ValueError("compounding_period_s must be positive")
        if self.facility_limit is not None:
            if self.curve is None or self.facility_limit <= 0:
                raise ValueError("a facility limit needs a utilization curve and must be positive")
            if self.fixings:
                raise ValueError("a facility's rate follows its own utilization: no rate fixings")
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
    """Constant-rate segments ``(from, to, annual_rate)`` covering ``loan.start`` → ``now`` from the
    loan's rate and the terms' fixings (not the facility curve: see :func:`loan_state`)."""
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


@dataclass(frozen=True, slots=True)
class LoanState:
    """A loan at one instant: outstanding ``principal`` and unpaid ``interest`` (loan asset), the
    annual ``rate`` in force and, for a facility, its ``utilization``."""

    principal: Decimal
    interest: Decimal
    rate: Decimal
    utilization: Decimal | None = None
    drawn: Decimal = ZERO  # Σ draws after the start (the start's principal not included)
    repaid: Decimal = ZERO  # Σ repayments applied (interest and principal)

    @property
    def owed(self) -> Decimal:
        return self.principal + self.interest


def loan_state(loan: Loan, now: datetime, terms: InterestTerms | None = None) -> LoanState:
    """Outstanding principal, unpaid interest and the rate in force at ``now`` (exact Decimal).

    Before ``loan.start`` nothing is owed; at it, the opening principal. Segments are cut at every
    draw, repayment and rate fixing; within one, principal and rate are constant.
    """
    t = terms if terms is not None else SIMPLE
    if now < loan.start:
        return LoanState(ZERO, ZERO, _rate(loan, t, loan.start, loan.principal), _util(t, ZERO))
    fixed = rate_segments(loan, now, t)
    events: list[LoanEvent] = sorted((e for e in loan.events if e.at <= now), key=lambda e: e.at)
    cuts = sorted({loan.start, now, *(e.at for e in events if e.at > loan.start), *(a for a, _, _ in fixed)})
    principal = loan.principal
    capitalised = pending = drawn = repaid = ZERO
    period = t.compounding_period_s
    for e in events:  # events at or before the start adjust the opening principal
        if e.at <= loan.start:
            principal, capitalised, pending, paid = _apply(principal, capitalised, pending, e.amount)
            drawn += max(e.amount, ZERO)
            repaid += paid
    k = len([e for e in events if e.at <= loan.start])
    fi = 0
    for a, b in pairwise(cuts):
        while fi + 1 < len(fixed) and fixed[fi + 1][0] <= a:
            fi += 1
        rate = _rate(loan, t, a, principal, fixed[fi][2] if fixed else loan.annual_rate)
        if period is None:
            pending += principal * rate * exact_seconds(b - a) / SECONDS_PER_YEAR
        else:
            capitalised, pending = _compound(loan.start, a, b, principal, capitalised, pending, rate, period)
        while k < len(events) and events[k].at == b:
            principal, capitalised, pending, paid = _apply(principal, capitalised, pending, events[k].amount)
            drawn += max(events[k].amount, ZERO)
            repaid += paid
            k += 1
    rate_now = _rate(loan, t, now, principal, fixed[-1][2] if fixed else loan.annual_rate)
    return LoanState(principal, capitalised + pending, rate_now, _util(t, principal), drawn, repaid)


def _util(t: InterestTerms, principal: Decimal) -> Decimal | None:
    return None if t.facility_limit is None else principal / t.facility_limit


def _rate(loan: Loan, t: InterestTerms, at: datetime, principal: Decimal, fixed: Decimal | None = None) -> Decimal:
    if t.facility_limit is not None and t.curve is not None:
        return t.curve.rate(principal / t.facility_limit)
    return loan.annual_rate if fixed is None else fixed


def _apply(principal: Decimal, capitalised: Decimal, pending: Decimal,
           amount: Decimal) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """A draw adds to principal; a repayment pays pending, then capitalised interest, then principal."""
    if amount >= 0:
        return principal + amount, capitalised, pending, ZERO
    pay = -amount
    owed = principal + capitalised + pending
    paid = min(pay, owed)
    rest = paid
    for_pending = min(rest, pending)
    pending -= for_pending
    rest -= for_pending
    for_cap = min(rest, capitalised)
    capitalised -= for_cap
    rest -= for_cap
    return principal - rest, capitalised, pending, paid


def _compound(start: datetime, a: datetime, b: datetime, principal: Decimal, capitalised: Decimal,
              pending: Decimal, rate: Decimal, period_s: int) -> tuple[Decimal, Decimal]:
    """Accrue ``a`` → ``b`` at ``rate``, capitalising at every ``start + k·period`` boundary."""
    period = Decimal(period_s)
    offset = exact_seconds(a - start)
    length = exact_seconds(b - a)
    to_boundary = period - offset % period  # in (0, period]: a boundary at ``a`` was applied already
    if to_boundary > length:
        return capitalised, pending + (principal + capitalised) * rate * length / SECONDS_PER_YEAR
    pending += (principal + capitalised) * rate * to_boundary / SECONDS_PER_YEAR
    capitalised += pending
    pending = ZERO
    left = length - to_boundary
    whole = int(left // period)
    rest = left - whole * period
    base = principal + capitalised
    capitalised = base * (1 + rate * period / SECONDS_PER_YEAR) ** whole - principal
    pending = (principal + capitalised) * rate * rest / SECONDS_PER_YEAR
    return capitalised, pending


def accrued_interest(loan: Loan, now: datetime, terms: InterestTerms | None = None) -> Decimal:
    """Unpaid interest from ``loan.start`` to ``now``, in the loan's asset (0 before the start)."""
    if not loan.events and (terms is None or (not terms.fixings and terms.compounding_period_s is None
                                              and terms.facility_limit is None)):
        return loan.principal * (loan.annual_rate * year_fraction(loan.start, now))  # the common case, fast
    return loan_state(loan, now, terms).interest


def amount_owed(loan: Loan, now: datetime, terms: InterestTerms | None = None) -> Decimal:
    """Outstanding principal plus unpaid interest, in the loan's asset (0 before the start)."""
    if now < loan.start:
        return ZERO
    if not loan.events:
        return loan.principal + accrued_interest(loan, now, terms)
    return loan_state(loan, now, terms).owed
