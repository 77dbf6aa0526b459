"""Risk parameters: what the policy tells the risk engine. Built by ``policy`` from a policy
version, consumed by ``risk``. All thresholds are ``Decimal`` fractions (0.8 = 80 %)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from primeguard.domain.model import PriceSourceKind


@dataclass(frozen=True, slots=True)
class LadderBands:
    """LTV thresholds for the escalation ladder, ascending: warn < margin_call < halt < liquidate.

    Moving up is immediate. Moving down needs LTV below ``threshold - hysteresis`` for
    ``cooldown_s`` seconds. A margin call gives the client ``margin_call_deadline_s`` to cure.
    """

    warn: Decimal
    margin_call: Decimal
    halt: Decimal
    liquidate: Decimal
    hysteresis: Decimal = Decimal("0.02")
    cooldown_s: int = 300
    margin_call_deadline_s: int = 4 * 3600


@dataclass(frozen=True, slots=True)
class RiskParameters:
    """Everything ``risk`` needs to value one client and place it on the ladder."""

    ladder: LadderBands
    haircuts: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))
    default_haircut: Decimal = Decimal("0.5")  # unknown assets count at half value
    max_leverage: Decimal | None = None
    max_net_delta_ratio: Decimal | None = None  # |net delta USD| / equity
    max_drawdown: Decimal | None = None  # fraction from peak equity
    max_concentration: Decimal | None = None  # largest single asset / gross collateral
    low_liquidity_assets: frozenset[str] = frozenset()
    oracle_max_deviation: Decimal = Decimal("0.02")  # between price sources
    price_max_age_s: int = 3600  # default when a source has no heartbeat of its own
    price_source_priority: tuple[PriceSourceKind, ...] = (
        PriceSourceKind.ORACLE,
        PriceSourceKind.DYDX_ORACLE,
        PriceSourceKind.VENUE_MARK,
    )

    def haircut(self, asset: str) -> Decimal:
        return self.haircuts.get(asset, self.default_haircut)
