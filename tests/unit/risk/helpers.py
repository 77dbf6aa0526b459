"""Shared builders for the risk tests: one clock, one tier, short constructors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D  # noqa: N817 - short for readable worked examples

from primeguard.domain import money  # noqa: F401  (installs the prec-80 Decimal context)
from primeguard.domain.model import Balance, Client, Loan, Position, PriceQuote, PriceSourceKind, VenueKind
from primeguard.risk.params import LadderBands, RiskParameters
from primeguard.risk.pricing import PriceBook, select_prices
from primeguard.risk.valuation import ClientBook

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BANDS = LadderBands(warn=D("0.5"), margin_call=D("0.6"), halt=D("0.7"), liquidate=D("0.8"),
                    hysteresis=D("0.02"), cooldown_s=300, margin_call_deadline_s=4 * 3600)
PARAMS = RiskParameters(ladder=BANDS, haircuts={"USDC": D(0), "USDT": D(0), "BTC": D("0.1"), "ETH": D("0.15")})


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def q(asset: str, price: str, source: PriceSourceKind = PriceSourceKind.ORACLE, age: int = 0,
      sid: str | None = None) -> PriceQuote:
    return PriceQuote(asset, D(price), source, sid or f"{source.value}:{asset}", T0 - timedelta(seconds=age), T0)


def book_prices(**prices: str) -> PriceBook:
    """One fresh oracle quote per asset."""
    return select_prices([q(a, p) for a, p in prices.items()], T0, PARAMS)


PRICES = book_prices(BTC="60000", ETH="3000", USDC="1", USDT="1")


def bal(acct: str, asset: str, qty: str) -> Balance:
    return Balance(acct, asset, D(qty), T0, "test")


def perp(acct: str, underlying: str, size: str, entry: str, venue: VenueKind = VenueKind.DYDX,
         liq: str | None = None) -> Position:
    return Position(acct, venue, f"{underlying}-USD", underlying, D(size), D(entry), D(entry), T0, "test",
                    liquidation_price=None if liq is None else D(liq))


def book(cid: str, balances: Iterable[Balance], positions: Iterable[Position] = (), loan: str | None = None,
         venues: Mapping[str, str] | None = None, blind: Iterable[str] = (), rate: str = "0",
         loan_asset: str = "USDC", start: datetime = T0, peak: str | None = None) -> ClientBook:
    return ClientBook(Client(cid, cid), None if loan is None else Loan(cid, D(loan), loan_asset, D(rate), start),
                      tuple(balances), tuple(positions), tuple(blind), venues or {},
                      None if peak is None else D(peak))
