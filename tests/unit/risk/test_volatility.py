"""Volatility haircuts from a known price path: max(floor, k × σ of daily log returns)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D  # noqa: N817

from primeguard.domain import money  # noqa: F401  (prec-80 Decimal context)
from primeguard.domain.findings import FindingCode
from primeguard.risk.volatility import daily_closes, sigma_of, volatility_haircut

NOW = datetime(2026, 6, 30, 23, 0, tzinfo=UTC)


def path(prices: list[str]) -> list[tuple[datetime, D]]:
    """One price a day at noon, the last one on NOW's day."""
    start = datetime(2026, 6, 30, 12, tzinfo=UTC) - timedelta(days=len(prices) - 1)
    return [(start + timedelta(days=i), D(p)) for i, p in enumerate(prices)]


def test_alternating_path_has_a_known_sigma() -> None:
    # 100 → 110 → 100 → 110 ...: returns alternate +x, −x with x = ln(1.1). Over 2n returns the mean
    # is 0 and the sample variance 2n·x² / (2n − 1).
    prices = ["100", "110"] * 11  # 22 closes, 21 returns: +x, −x, ..., +x (11 up, 10 down)
    closes = daily_closes(path(prices), NOW, 30)
    assert len(closes) == 22
    x = D("1.1").ln()
    rets = [x if i % 2 == 0 else -x for i in range(21)]
    mean = sum(rets, D(0)) / 21
    expected = (sum(((r - mean) ** 2 for r in rets), D(0)) / 20).sqrt()
    assert sigma_of(closes) == expected
    h = volatility_haircut("ETH", D("0.08"), D(3), path(prices), NOW, window_days=30, min_points=20)
    assert h.sigma == expected and h.haircut == 3 * expected and h.finding is None
    assert D("0.29") < h.haircut < D("0.30")  # 3 × ~0.0976


def test_a_calm_asset_keeps_its_floor() -> None:
    prices = [str(100 + (i % 2) * D("0.1")) for i in range(25)]
    h = volatility_haircut("BTC", D("0.05"), D(3), path(prices), NOW, window_days=30, min_points=20)
    assert h.sigma is not None and h.haircut == D("0.05")


def test_short_history_falls_back_to_the_floor_with_a_finding() -> None:
    h = volatility_haircut("SOL", D("0.15"), D(3), path(["100", "150", "80"] * 3), NOW, window_days=30,
                           min_points=20)
    assert h.haircut == D("0.15") and h.sigma is None and h.returns == 8
    assert h.finding is not None and h.finding.code == FindingCode.HAIRCUT_HISTORY_SHORT
    assert h.to_json_dict()["fallback"] is True


def test_one_close_per_day_and_only_the_window() -> None:
    pts = [(NOW - timedelta(days=40), D(1)), (NOW - timedelta(hours=5), D(2)), (NOW - timedelta(hours=1), D(3)),
           (NOW - timedelta(days=1), D(4))]
    assert daily_closes(pts, NOW, 30) == [D(4), D(3)]


def test_haircut_is_capped_at_one() -> None:
    prices = ["100", "1000"] * 11
    h = volatility_haircut("PEPE", D("0.5"), D(5), path(prices), NOW, window_days=30, min_points=20)
    assert h.haircut == 1
