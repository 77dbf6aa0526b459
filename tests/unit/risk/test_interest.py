"""Interest accrual: ACT/365, simple and compounded, rate fixings, utilization curve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D  # noqa: N817

import pytest

from primeguard.domain.model import Loan
from primeguard.risk.interest import (
    InterestTerms,
    RateFixing,
    UtilizationCurve,
    accrued_interest,
    amount_owed,
    year_fraction,
)
from tests.unit.risk.helpers import T0

LOAN = Loan("x", D("1000000"), "USDC", D("0.073"), T0)


def test_simple_act_365():
    assert accrued_interest(LOAN, T0 + timedelta(days=1)) == D(200)  # 1M × 7.3 % / 365
    assert amount_owed(LOAN, T0 + timedelta(hours=12)) == D(1_000_100)
    assert accrued_interest(LOAN, T0 - timedelta(days=1)) == 0  # before the start: nothing


def test_leap_year_accrues_actual_days_over_365():
    start = datetime(2028, 2, 28, tzinfo=UTC)
    assert year_fraction(start, datetime(2028, 3, 1, tzinfo=UTC)) == D(2) / D(365)
    assert year_fraction(start, datetime(2029, 2, 28, tzinfo=UTC)) == D(366) / D(365)


def test_daily_compounding_exact():
    loan = Loan("x", D("1000000"), "USDC", D("0.365"), T0)  # 0.1 % a day
    terms = InterestTerms(compounding_period_s=86400)
    assert accrued_interest(loan, T0 + timedelta(days=2), terms) == D("2001")  # 1M × (1.001² − 1)
    # 2.5 days: two whole periods, then half a day simple on the grown balance: 1,002,001 × 0.0005
    assert accrued_interest(loan, T0 + timedelta(days=2, hours=12), terms) == D("2001") + D("501.0005")


def test_rate_fixings_apply_from_their_instant():
    terms = InterestTerms(fixings=(RateFixing(T0 + timedelta(days=1), annual_rate=D("0.146")),))
    assert accrued_interest(LOAN, T0 + timedelta(days=2), terms) == D(200) + D(400)
    early = InterestTerms(fixings=(RateFixing(T0 - timedelta(days=9), annual_rate=D("0.146")),))
    assert accrued_interest(LOAN, T0 + timedelta(days=1), early) == D(400)


def test_utilization_curve_sets_the_rate():
    curve = UtilizationCurve(base=D("0.02"), slope1=D("0.1"), slope2=D("1"), kink=D("0.8"))
    assert curve.rate(D("0.5")) == D("0.07")
    assert curve.rate(D("0.9")) == D("0.2")  # 0.02 + 0.08 + 1 × 0.1
    loan = Loan("x", D("365000"), "USDC", D("0"), T0)
    terms = InterestTerms(curve=curve, fixings=(RateFixing(T0, utilization=D("0.9")),))
    assert accrued_interest(loan, T0 + timedelta(days=1), terms) == D(200)


def test_terms_validation():
    with pytest.raises(ValueError, match="exactly one"):
        InterestTerms(fixings=(RateFixing(T0),))
    with pytest.raises(ValueError, match="curve"):
        InterestTerms(fixings=(RateFixing(T0, utilization=D("0.5")),))
    with pytest.raises(ValueError, match="positive"):
        InterestTerms(compounding_period_s=0)
