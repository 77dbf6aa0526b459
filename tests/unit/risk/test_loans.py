"""Loans from the config: a required start, draws and repayments, fixed or utilization-kink interest
(ACT/365, simple or compounded), accrued interest in the LTV and in the JSON a sweep prints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN
from decimal import Decimal as D  # noqa: N817
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from primeguard.config import load_config
from primeguard.config.schema import LoanConfig
from primeguard.domain.errors import ConfigError
from primeguard.domain.model import Client, Loan, LoanEvent
from primeguard.risk.interest import InterestTerms, UtilizationCurve, loan_state
from primeguard.risk.valuation import ClientBook, valuate
from tests.unit.risk.helpers import PARAMS, book_prices

MAR1 = datetime(2026, 3, 1, tzinfo=UTC)
CENT = D("0.01")

# The second seed's pool-style curve, as a credit line: 2 % base, +10 % per unit of utilization up
# to the optimal 80 %, +100 % per unit above it. Utilization = drawn / facility limit.
KINK_LOAN = {
    "principal": "6000000", "asset": "USDC", "start": "2026-03-01T00:00:00Z",
    "draws": [{"at": "2026-03-11T00:00:00Z", "amount": "3000000"}],
    "interest": {"kind": "utilization", "base_rate": "0.02", "slope_below": "0.10", "slope_above": "1.00",
                 "optimal_utilization": "0.80", "facility_limit": "10000000"},
}


def cents(x: D) -> D:
    return x.quantize(CENT, rounding=ROUND_HALF_EVEN)


def test_utilization_kink_loan_accrues_a_month_to_the_cent() -> None:
    loan, terms = LoanConfig.model_validate(KINK_LOAN).to_loan("firm-a")
    # Hand computation, ACT/365:
    #   1-11 March:  6M drawn, u = 0.6 → 2 % + 10 % × 0.6 = 8 %     → 6,000,000 × 0.08 × 10/365
    #   11 March-1 April: 9M drawn, u = 0.9 → 2 % + 10 % × 0.8 + 100 % × 0.1 = 20 % → 9M × 0.20 × 21/365
    #   = (4,800,000 + 37,800,000) / 365 = 116,712.3287...  → 116,712.33
    st = loan_state(loan, datetime(2026, 4, 1, tzinfo=UTC), terms)
    assert cents(st.interest) == D("116712.33")
    assert abs(st.interest - D(42_600_000) / D(365)) < D("1e-60")  # exact up to Decimal's 80 digits
    assert st.principal == D(9_000_000) and st.rate == D("0.20") and st.utilization == D("0.9")
    assert st.drawn == D(3_000_000)


def test_kink_rate_below_and_above_the_optimal_utilization() -> None:
    curve = UtilizationCurve(D("0.02"), D("0.10"), D("1.00"), D("0.80"))
    assert curve.rate(D(0)) == D("0.02")
    assert curve.rate(D("0.80")) == D("0.10")
    assert curve.rate(D("0.95")) == D("0.25")


def test_repayment_pays_interest_first_then_principal() -> None:
    start = MAR1
    loan = Loan("x", D(1_000_000), "USDC", D("0.073"), start, (LoanEvent(start + timedelta(days=1), D(-1200)),))
    st = loan_state(loan, start + timedelta(days=1))
    assert st.interest == 0 and st.principal == D(999_000) and st.repaid == D(1200)
    st2 = loan_state(loan, start + timedelta(days=2))
    assert st2.interest == D("199.8")  # 999,000 × 7.3 % / 365


def test_draw_changes_the_principal_from_its_instant() -> None:
    loan = Loan("x", D(1_000_000), "USDC", D("0.073"), MAR1, (LoanEvent(MAR1 + timedelta(hours=12), D(1_000_000)),))
    st = loan_state(loan, MAR1 + timedelta(days=1))
    assert st.principal == D(2_000_000) and st.interest == D(100) + D(200)


def test_daily_compounding_counts_periods_from_the_start_across_a_draw() -> None:
    # 36.5 % a year = 0.1 % a day, compounded daily. A draw at day 1.5 splits the second period.
    loan = Loan("x", D(1_000_000), "USDC", D("0.365"), MAR1, (LoanEvent(MAR1 + timedelta(hours=36), D(1_000_000)),))
    terms = InterestTerms(compounding_period_s=86400)
    st = loan_state(loan, MAR1 + timedelta(days=2), terms)
    # day 1: 1,000 capitalised; day 2 first half on 1,001,000: 500.5; second half on 2,001,000: 1,000.5
    assert st.interest == D(1000) + D("500.5") + D("1000.5")


def test_fixed_interest_block_and_annual_rate_are_the_same() -> None:
    a, ta = LoanConfig.model_validate({"principal": "1000", "start": "2026-03-01T00:00:00Z",
                                       "annual_rate": "0.0365"}).to_loan("x")
    b, tb = LoanConfig.model_validate({"principal": "1000", "start": "2026-03-01T00:00:00Z",
                                       "interest": {"kind": "fixed", "rate": "0.0365"}}).to_loan("x")
    later = MAR1 + timedelta(days=10)
    assert loan_state(a, later, ta).interest == loan_state(b, later, tb).interest == D(1)


@pytest.mark.parametrize(("loan", "needle"), [
    ({"principal": "1000"}, "start"),
    ({"principal": "1000", "start": "2026-03-01T00:00:00"}, "timezone"),
    ({"principal": "1000", "start": "2026-03-01T00:00:00Z", "draws": [{"at": "2026-02-01T00:00:00Z",
                                                                        "amount": "1"}]}, "before the loan's start"),
    ({"principal": "1000", "start": "2026-03-01T00:00:00Z", "annual_rate": "0.1",
      "interest": {"kind": "fixed", "rate": "0.1"}}, "not both"),
    ({"principal": "1000", "start": "2026-03-01T00:00:00Z",
      "interest": {"kind": "utilization", "base_rate": "0", "slope_below": "0.1", "slope_above": "1",
                   "optimal_utilization": "0.8"}}, "facility_limit or pool_utilization"),
])
def test_bad_loans_are_refused(loan: dict[str, object], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        LoanConfig.model_validate(loan)


def test_a_loan_without_a_start_is_a_config_error_with_file_and_line(tmp_path: Path) -> None:
    cfg = {"version": 1, "clients": [{"id": "alpha"}, {"id": "beta", "loan": {"principal": "1000"}}]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "config.yaml" in text and "start" in text
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "loan:" in t)
    assert f":{line}" in text or f"line {line}" in text


def test_accrued_interest_is_in_the_ltv_and_the_sweep_json() -> None:
    loan, terms = LoanConfig.model_validate(KINK_LOAN).to_loan("firm-a")
    from tests.unit.risk.helpers import bal

    b = ClientBook(Client("firm-a", "Firm A"), loan, (bal("w", "USDC", "12000000"),), (), interest=terms)
    now = datetime(2026, 4, 1, tzinfo=UTC)
    val = valuate(b, book_prices(USDC="1"), PARAMS, now)
    owed = D(9_000_000) + D(42_600_000) / D(365)
    assert abs(val.loan - owed) < D("1e-60") and val.ltv == val.loan / D(12_000_000)
    doc = val.to_json_dict()["loan"]
    assert doc["principal"] == "9000000" and cents(D(doc["accrued_interest"])) == D("116712.33")
    assert doc["rate"] == "0.2"
