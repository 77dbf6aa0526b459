"""The client page's stress LTV cell: exact rows as before, float-screened rows marked approximate."""

from __future__ import annotations

from primeguard.web.pages import _stress_ltv


def test_exact_rows_show_the_exact_ltv_and_screened_rows_an_approximation() -> None:
    assert _stress_ltv({"scenario": "x", "ltv": "0.5"}) == "50.00 %"
    assert _stress_ltv({"scenario": "x", "method": "float_screen", "ltv_approx": "0.302192"}) == "≈ 30.22 %"
    assert _stress_ltv({"scenario": "x", "method": "float_screen", "ltv_approx": None, "ltv_infinite": True}) == "≈ ∞"
    assert _stress_ltv({"scenario": "x", "method": "float_screen", "ltv_approx": None}) == "—"
