"""Loan interest: simple interest, ACT/365, exact in Decimal."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from primeguard.domain.model import Loan

SECONDS_PER_YEAR = Decimal(365 * 86400)


def accrued_interest(loan: Loan, now: datetime) -> Decimal:
    """Interest accrued from ``loan.start`` to ``now`` (ACT/365, simple); never negative."""
    seconds = Decimal(str(max(0.0, (now - loan.start).total_seconds())))
    return loan.principal * loan.annual_rate * seconds / SECONDS_PER_YEAR


def utilization_rate(utilization: Decimal, *, base: Decimal, slope1: Decimal, slope2: Decimal,
                     kink: Decimal) -> Decimal:
    """Kinked utilization curve (pool-style): ``base + slope1·u`` up to ``kink``, steeper after."""
    if utilization <= kink:
        return base + slope1 * utilization
    return base + slope1 * kink + slope2 * (utilization - kink)


def amount_owed(loan: Loan, now: datetime) -> Decimal:
    return loan.principal + accrued_interest(loan, now)
