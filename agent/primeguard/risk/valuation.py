"""Value one client across every venue: collateral, loan, LTV, delta, leverage, concentration.

Conventions (docs/risk.md):
- Equity = Σ balances × collateral price + Σ unrealized PnL of positions, where a position's PnL is
  ``size × (price − entry)`` at the conservative price (longs at the collateral price, shorts at the
  liability price). Adapters hand over balances that exclude unrealized PnL (Binance wallet
  balance; dYdX quote balance adjusted so that balance + PnL = the venue's equity).
- Haircut-adjusted collateral applies each asset's haircut to balances; a positive PnL is haircut
  like its underlying, a negative PnL counts in full.
- LTV = (principal + accrued interest) / haircut-adjusted collateral. Collateral ≤ 0 with a loan
  → LTV is infinite. No loan → LTV 0.
- Blind: an account could not be read or an asset held has no fresh price. The LTV shown then
  excludes what could not be seen or priced (an upper bound if the unseen part is collateral);
  withdrawals are denied and the ladder does not move down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import Balance, Client, Loan, Position
from primeguard.risk.interest import accrued_interest
from primeguard.risk.params import RiskParameters
from primeguard.risk.pricing import PriceBook

INFINITE = Decimal("Infinity")
STABLECOINS = frozenset({"USDC", "USDT", "USD", "DAI"})
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ClientBook:
    """Everything seen of one client in one sweep."""

    client: Client
    loan: Loan | None
    balances: tuple[Balance, ...]
    positions: tuple[Position, ...]
    blind_accounts: tuple[str, ...] = ()
    account_venues: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    peak_equity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PositionRisk:
    account_id: str
    instrument: str
    size: Decimal
    notional: Decimal
    pnl: Decimal
    liquidation_distance: Decimal | None  # |price − liq| / price


@dataclass(frozen=True)
class ClientValuation:
    client_id: str
    tier: str
    gross_collateral: Decimal
    haircut_collateral: Decimal
    unrealized_pnl: Decimal
    equity: Decimal
    loan: Decimal
    accrued_interest: Decimal
    ltv: Decimal | None
    coverage: Decimal | None
    net_delta: Mapping[str, Decimal]  # underlying -> USD
    net_delta_ratio: Decimal | None
    gross_notional: Decimal
    leverage: Decimal | None
    concentration: Decimal | None
    low_liquidity_share: Decimal | None
    drawdown: Decimal | None
    by_venue: Mapping[str, Decimal]  # venue -> gross collateral + PnL in USD
    positions: tuple[PositionRisk, ...]
    findings: tuple[Finding, ...]
    blind: bool
    prices_used: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        def s(x: Decimal | None) -> str | None:
            if x is None:
                return None
            return "inf" if x == INFINITE else format(x.normalize() if x else x, "f")

        return {
            "client": self.client_id, "tier": self.tier, "blind": self.blind,
            "gross_collateral": s(self.gross_collateral), "haircut_collateral": s(self.haircut_collateral),
            "unrealized_pnl": s(self.unrealized_pnl), "equity": s(self.equity), "loan": s(self.loan),
            "accrued_interest": s(self.accrued_interest), "ltv": s(self.ltv), "coverage": s(self.coverage),
            "net_delta": {k: s(v) for k, v in self.net_delta.items()}, "net_delta_ratio": s(self.net_delta_ratio),
            "gross_notional": s(self.gross_notional), "leverage": s(self.leverage),
            "concentration": s(self.concentration), "low_liquidity_share": s(self.low_liquidity_share),
            "drawdown": s(self.drawdown), "by_venue": {k: s(v) for k, v in self.by_venue.items()},
            "positions": [{"account": p.account_id, "instrument": p.instrument, "size": s(p.size),
                           "notional": s(p.notional), "pnl": s(p.pnl),
                           "liquidation_distance": s(p.liquidation_distance)} for p in self.positions],
            "prices": dict(self.prices_used),
            "findings": [{"code": f.code.value, "severity": f.severity.name.lower(), "message": f.message}
                         for f in self.findings],
        }


def valuate(book: ClientBook, prices: PriceBook, params: RiskParameters, now: datetime,
            *, tier: str = "standard") -> ClientValuation:
    cid = book.client.id
    findings: list[Finding] = []
    blind = bool(book.blind_accounts)
    for acct in book.blind_accounts:
        findings.append(Finding(FindingCode.BLIND_SPOT, Severity.CRITICAL, cid,
                                f"{cid}: account {acct} could not be read; withdrawals are denied",
                                client_id=cid, details={"account": acct}))
    gross = haircut = pnl_total = gross_notional = low_liq = ZERO
    per_asset: dict[str, Decimal] = {}
    delta: dict[str, Decimal] = {}
    by_venue: dict[str, Decimal] = {}
    used: dict[str, Any] = {}
    unpriced: set[str] = set()
    for b in book.balances:
        if b.quantity == 0:
            continue
        price = Decimal(1) if b.asset == "USD" else prices.collateral(b.asset)
        if price is None:
            unpriced.add(b.asset)
            continue
        value = b.quantity * price
        gross += value
        haircut += value * (1 - params.haircut(b.asset))
        per_asset[b.asset] = per_asset.get(b.asset, ZERO) + value
        venue = book.account_venues.get(b.account_id, "?")
        by_venue[venue] = by_venue.get(venue, ZERO) + value
        if b.asset not in STABLECOINS:
            delta[b.asset] = delta.get(b.asset, ZERO) + value
        if b.asset in params.low_liquidity_assets:
            low_liq += value
    risks: list[PositionRisk] = []
    for p in book.positions:
        price = prices.collateral(p.underlying) if p.size > 0 else prices.liability(p.underlying)
        if price is None:
            unpriced.add(p.underlying)
            continue
        pnl = p.size * (price - p.entry_price)
        notional = abs(p.size) * price
        pnl_total += pnl
        gross_notional += notional
        haircut += pnl if pnl < 0 else pnl * (1 - params.haircut(p.underlying))
        delta[p.underlying] = delta.get(p.underlying, ZERO) + p.size * price
        venue = book.account_venues.get(p.account_id, p.venue.value)
        by_venue[venue] = by_venue.get(venue, ZERO) + pnl
        if p.underlying in params.low_liquidity_assets:
            low_liq += notional
        dist = None if p.liquidation_price is None or price == 0 else abs(price - p.liquidation_price) / price
        risks.append(PositionRisk(p.account_id, p.instrument, p.size, notional, pnl, dist))
        if dist is not None and dist < Decimal("0.1"):
            findings.append(Finding(FindingCode.NEAR_LIQUIDATION, Severity.HIGH, f"{p.account_id}:{p.instrument}",
                                    f"{cid}: {p.instrument} on {venue} is {dist:.1%} from liquidation",
                                    venue=venue, client_id=cid))
    for asset in sorted(unpriced):
        blind = True
        findings.append(Finding(FindingCode.PRICE_MISSING, Severity.CRITICAL, f"{cid}:{asset}",
                                f"{cid} holds {asset} but no fresh price exists for it", client_id=cid))
    for asset in sorted(set(per_asset) | {p.underlying for p in book.positions}):
        if asset in prices.picks:
            used[asset] = prices.picks[asset].to_json()
    equity = gross + pnl_total
    interest = accrued_interest(book.loan, now) if book.loan else ZERO
    owed = (book.loan.principal + interest) if book.loan else ZERO
    if owed == 0:
        ltv: Decimal | None = ZERO
    elif haircut <= 0:
        ltv = INFINITE
    else:
        ltv = owed / haircut
    coverage = None if owed == 0 else (haircut / owed if haircut > 0 else ZERO)
    net_ratio = (sum((abs(v) for v in delta.values()), ZERO) / equity) if equity > 0 else None
    leverage = (gross_notional / equity) if equity > 0 else None
    concentration = (max(per_asset.values()) / gross) if gross > 0 and per_asset else None
    low_share = (low_liq / gross) if gross > 0 else None
    drawdown: Decimal | None = None
    if book.peak_equity is not None and book.peak_equity > 0:
        drawdown = max(ZERO, 1 - equity / book.peak_equity)
    checks: tuple[tuple[Decimal | None, Decimal | None, FindingCode, str], ...] = (
             (params.max_leverage, leverage, FindingCode.LEVERAGE_EXCEEDED, "gross leverage"),
              (params.max_net_delta_ratio, net_ratio, FindingCode.NET_DELTA_EXCEEDED, "|net delta| / equity"),
              (params.max_drawdown, drawdown, FindingCode.DRAWDOWN_EXCEEDED, "drawdown from peak"),
              (params.max_concentration, concentration, FindingCode.CONCENTRATION_EXCEEDED, "concentration"))
    for limit, metric, code, what in checks:
        if limit is not None and metric is not None and metric > limit:
            findings.append(Finding(code, Severity.HIGH, cid, f"{cid}: {what} {metric:.4f} above limit {limit}",
                                    client_id=cid, details={"value": str(metric), "limit": str(limit)}))
    if low_liq > 0:
        findings.append(Finding(FindingCode.LOW_LIQUIDITY_EXPOSURE, Severity.INFO, cid,
                                f"{cid}: {low_liq:.2f} USD in low-liquidity assets", client_id=cid))
    return ClientValuation(
        cid, tier, gross, haircut, pnl_total, equity, owed, interest, ltv, coverage,
        MappingProxyType(delta), net_ratio, gross_notional, leverage, concentration, low_share, drawdown,
        MappingProxyType(by_venue), tuple(risks), tuple(findings), blind, MappingProxyType(used))
