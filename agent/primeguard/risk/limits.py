"""Limits that bite: the stressed shortfall, venue exposure per client and for the whole book, and
what a withdrawal would do to the financing ratio and the stressed shortfall. Pure, exact Decimal.

- **Stressed shortfall** of a scenario = max(0, loan − stressed haircut collateral); the worst over
  the scenarios is compared with the tier's ``max_stress_shortfall`` (USD).
- **Venue share** of a client = what sits on the venue (its balances + the PnL of its positions,
  negative amounts counted as zero) ÷ the same summed over all the client's venues. The book's
  share sums every client that could be fully valued.
- **After a withdrawal** of ``amount`` of ``asset`` from one account: the loan stays, the client's
  own collateral (net equity) falls by the USD value, and the stress scenarios are re-run on the
  book without the withdrawn units.
- **After a new loan draw**: the loan grows by the amount and so does the cash on the client's
  account; the client is revalued exactly (LTV, loan ÷ own collateral) and stress re-run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import Balance, LoanEvent
from primeguard.risk.params import RiskParameters, venue_limit
from primeguard.risk.pricing import PriceBook, dec_str
from primeguard.risk.stress import StressResult, StressScenario, default_scenarios, stress
from primeguard.risk.valuation import INFINITE, ZERO, ClientBook, ClientValuation, valuate


def scenario_shortfall(r: StressResult) -> Decimal:
    """max(0, loan − stressed haircut collateral) for one scenario result."""
    return max(ZERO, r.loan - r.haircut_collateral)


def worst_shortfall(results: Iterable[StressResult]) -> tuple[Decimal, str | None]:
    """The largest shortfall over ``results`` and its scenario (0 and None when there are none)."""
    worst, name = ZERO, None
    for r in results:
        x = scenario_shortfall(r)
        if name is None or x > worst:
            worst, name = x, r.scenario
    return worst, name


def stress_findings(client_id: str, results: Sequence[StressResult], params: RiskParameters) -> list[Finding]:
    """A finding when the worst scenario's shortfall is above the tier's limit (none without one)."""
    limit = params.max_stress_shortfall
    if limit is None or not results:
        return []
    worst, name = worst_shortfall(results)
    if worst <= limit:
        return []
    return [Finding(FindingCode.STRESS_SHORTFALL_EXCEEDED, Severity.HIGH, client_id,
                    f"{client_id}: under '{name}' the loan exceeds stressed haircut collateral by "
                    f"${worst:,.2f}, above the tier's limit ${limit:,.2f}; withdrawals that add to it are denied",
                    client_id=client_id,
                    details={"shortfall": dec_str(worst), "limit": dec_str(limit), "scenario": name})]


def venue_shares(val: ClientValuation) -> Mapping[str, Decimal]:
    """Venue → its share of the client's collateral (negative venue values count as zero)."""
    values = {v: max(ZERO, x) for v, x in val.by_venue.items()}
    total = sum(values.values(), ZERO)
    if total <= 0:
        return MappingProxyType({})
    return MappingProxyType({v: x / total for v, x in sorted(values.items())})


def venue_findings(val: ClientValuation, params: RiskParameters) -> list[Finding]:
    """A finding per venue whose share of the client's collateral is above its limit."""
    if not params.max_venue_share or val.blind:
        return []
    out: list[Finding] = []
    for venue, share in venue_shares(val).items():
        limit = params.venue_share_limit(venue)
        if limit is not None and share > limit:
            out.append(Finding(FindingCode.VENUE_CONCENTRATION, Severity.HIGH, f"{val.client_id}:{venue}",
                               f"{val.client_id}: {share:.2%} of its collateral sits on {venue} "
                               f"(limit {limit:.2%}): a venue failure would take it with it",
                               venue=venue, client_id=val.client_id,
                               details={"share": dec_str(share), "limit": dec_str(limit), "scope": "client"}))
    return out


@dataclass(frozen=True)
class BookExposure:
    """The whole book's collateral per venue (USD, clients that could be valued) and the shares."""

    by_venue: Mapping[str, Decimal]
    total: Decimal
    blind_clients: tuple[str, ...] = ()
    shares: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))

    def to_json_dict(self) -> dict[str, Any]:
        return {"total_usd": dec_str(self.total), "blind_clients": list(self.blind_clients),
                "venues": {v: {"usd": dec_str(x), "share": dec_str(self.shares.get(v))}
                           for v, x in sorted(self.by_venue.items())}}


def book_exposure(valuations: Iterable[ClientValuation]) -> BookExposure:
    """Sum each valued client's collateral per venue; blind clients are listed, not summed."""
    by: dict[str, Decimal] = {}
    blind: list[str] = []
    for val in valuations:
        if val.blind:
            blind.append(val.client_id)
            continue
        for v, x in val.by_venue.items():
            by[v] = by.get(v, ZERO) + max(ZERO, x)
    total = sum(by.values(), ZERO)
    shares = {v: x / total for v, x in by.items()} if total > 0 else {}
    return BookExposure(MappingProxyType(dict(sorted(by.items()))), total, tuple(sorted(blind)),
                        MappingProxyType(shares))


def book_venue_findings(exposure: BookExposure, limits: Mapping[str, Decimal]) -> list[Finding]:
    """A finding per venue whose share of the whole book is above its ``max_book_share``."""
    out: list[Finding] = []
    for venue, share in sorted(exposure.shares.items()):
        limit = venue_limit(limits, venue)
        if limit is not None and share > limit:
            partial = f" ({len(exposure.blind_clients)} client(s) could not be valued)" if exposure.blind_clients \
                else ""
            out.append(Finding(FindingCode.VENUE_CONCENTRATION, Severity.HIGH, f"book:{venue}",
                               f"the book has {share:.2%} of its collateral (${exposure.by_venue[venue]:,.2f}) on "
                               f"{venue}, above the {limit:.2%} limit{partial}", venue=venue,
                               details={"share": dec_str(share), "limit": dec_str(limit), "scope": "book",
                                        "usd": dec_str(exposure.by_venue[venue])}))
    return out


def withdrawn(book: ClientBook, account_id: str, asset: str, amount: Decimal, at: datetime) -> ClientBook:
    """The book with ``amount`` of ``asset`` gone from ``account_id`` (a negative row if it is not there)."""
    rows = list(book.balances)
    for i, b in enumerate(rows):
        if b.account_id == account_id and b.asset == asset:
            rows[i] = replace(b, quantity=b.quantity - amount)
            break
    else:
        rows.append(Balance(account_id, asset, -amount, at, "withdrawal"))
    return replace(book, balances=tuple(rows))


@dataclass(frozen=True, slots=True)
class AfterWithdrawal:
    """What a withdrawal would leave: loan / own collateral and the worst stressed shortfall."""

    loan_to_collateral: Decimal
    stress_shortfall: Decimal
    stress_scenario: str | None


def after_withdrawal(val: ClientValuation, account_id: str, asset: str, amount: Decimal, usd: Decimal,
                     now: datetime, scenarios: Sequence[StressScenario] | None = None) -> AfterWithdrawal | None:
    """The financing ratio and worst stressed shortfall once ``amount`` of ``asset`` (worth ``usd``)
    has left ``account_id``. None when the valuation has no book or prices to re-run stress on."""
    book, ctx = val.book, val.context
    if book is None or ctx is None:
        return None
    net = val.net_equity - usd
    ratio = ZERO if val.loan == 0 else (val.loan / net if net > 0 else INFINITE)
    after = withdrawn(book, account_id, asset, amount, now)
    if scenarios is None:
        scenarios = default_scenarios(set(after.account_venues.values()))
    prices: PriceBook = ctx.prices
    worst, name = worst_shortfall(stress(after, prices, ctx.params, now, sc) for sc in scenarios)
    return AfterWithdrawal(ratio, worst, name)


@dataclass(frozen=True, slots=True)
class AfterDraw:
    """What a new loan draw would leave: LTV, loan / own collateral and the worst stressed shortfall."""

    ltv: Decimal
    loan_to_collateral: Decimal
    stress_shortfall: Decimal
    stress_scenario: str | None


def drawn(book: ClientBook, amount: Decimal, at: datetime) -> ClientBook | None:
    """The book after a draw of ``amount`` (loan asset units) at ``at``: the loan grows by it and the
    cash lands on the account already holding the loan asset (else the book's first account). None
    without a loan or an account."""
    loan = book.loan
    if loan is None:
        return None
    rows = list(book.balances)
    target = next((b.account_id for b in rows if b.asset == loan.asset), None)
    if target is None:
        target = next(iter(book.account_venues), None) or next((b.account_id for b in rows), None)
    if target is None:
        return None
    events = tuple(sorted((*loan.events, LoanEvent(at, amount)), key=lambda e: e.at))
    after = withdrawn(book, target, loan.asset, -amount, at)  # a negative withdrawal is a deposit
    return replace(after, loan=replace(loan, events=events))


def after_draw(val: ClientValuation, amount: Decimal, now: datetime,
               scenarios: Sequence[StressScenario] | None = None) -> AfterDraw | None:
    """Revalue the client as if ``amount`` more of its loan were drawn now (exact, same prices and
    parameters): the LTV, loan ÷ own collateral and the worst stressed shortfall after the draw.
    None when the valuation has no book, prices or loan to redo it on."""
    book, ctx = val.book, val.context
    if book is None or ctx is None:
        return None
    after = drawn(book, amount, now)
    if after is None:
        return None
    post = valuate(after, ctx.prices, ctx.params, now, tier=val.tier)
    if post.ltv is None:
        return None
    net = post.net_equity
    ratio = ZERO if post.loan == 0 else (post.loan / net if net > 0 else INFINITE)
    if scenarios is None:
        scenarios = default_scenarios(set(after.account_venues.values()))
    worst, name = worst_shortfall(stress(after, ctx.prices, ctx.params, now, sc) for sc in scenarios)
    return AfterDraw(post.ltv, ratio, worst, name)
