"""Risk parameters: what the policy tells the risk engine. Built by ``policy`` from a policy
version, consumed by ``risk``. All thresholds are ``Decimal`` fractions (0.8 = 80 %).

Every field added after the first version has a default, so a policy that does not know about it
still builds valid parameters (docs/risk.md lists the defaults and why they are conservative).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from primeguard.domain.model import PriceSourceKind

# Asset classes for liquidation-cost assumptions. Unknown assets are "alt": thin books.
STABLE = "stable"
MAJOR = "major"
ALT = "alt"


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
class LiquidityClass:
    """Liquidation assumptions for one asset class.

    ``depth_1pct_usd`` is the notional one venue's book absorbs within 1 % of the mid (the "1 %
    depth" market-data vendors quote). With a book of even depth, selling ``N`` moves the price by
    ``1 % × N / depth`` and fills on average half way there, so the slippage fraction is
    ``half_spread + 0.5 % × N / depth``, capped at ``max_slippage``.
    """

    half_spread: Decimal
    depth_1pct_usd: Decimal
    max_slippage: Decimal = Decimal("0.5")

    def slippage(self, notional: Decimal) -> Decimal:
        """Expected fractional cost of selling ``notional`` USD at once (exact)."""
        slip = self.half_spread + Decimal("0.005") * abs(notional) / self.depth_1pct_usd
        return min(slip, self.max_slippage)


DEFAULT_LIQUIDITY: Mapping[str, LiquidityClass] = MappingProxyType({
    STABLE: LiquidityClass(Decimal("0.0001"), Decimal("50000000")),
    MAJOR: LiquidityClass(Decimal("0.0005"), Decimal("10000000")),
    ALT: LiquidityClass(Decimal("0.002"), Decimal("250000")),
})
DEFAULT_STABLECOINS = frozenset({"USD", "USDC", "USDT", "DAI", "FDUSD", "PYUSD"})
DEFAULT_NEAR_LIQUIDATION = Decimal("0.10")
DEFAULT_MAJORS = frozenset({"BTC", "ETH", "WBTC", "WETH", "SOL"})


@dataclass(frozen=True, slots=True)
class RiskParameters:
    """Everything ``risk`` needs to value one client and place it on the ladder."""

    ladder: LadderBands
    haircuts: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))
    default_haircut: Decimal = Decimal("0.5")  # unknown assets count at half value
    # DeFi position haircut class -> haircut of the position's supplied legs (replaces the asset's);
    # a class not listed is not counted as collateral (see pipeline.evaluate).
    defi_haircuts: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))
    max_leverage: Decimal | None = None
    max_net_delta_ratio: Decimal | None = None  # Σ |net delta USD| / equity
    max_drawdown: Decimal | None = None  # fraction from peak equity
    max_concentration: Decimal | None = None  # largest single non-stable asset / gross collateral
    low_liquidity_assets: frozenset[str] = frozenset()
    oracle_max_deviation: Decimal = Decimal("0.02")  # between price sources
    price_max_age_s: int = 3600  # default when neither the feed nor its kind has a budget
    price_source_priority: tuple[PriceSourceKind, ...] = (
        PriceSourceKind.ORACLE,
        PriceSourceKind.DYDX_ORACLE,
        PriceSourceKind.VENUE_MARK,
    )
    # --- added with issue E (all optional) ---
    # Freshness budget per source kind; a feed's own heartbeat (passed to select_prices) wins.
    price_max_age_by_source: Mapping[PriceSourceKind, int] = field(default_factory=lambda: MappingProxyType({}))
    # Not shocked in stress scenarios and left out of net delta. Still priced from quotes.
    stablecoins: frozenset[str] = DEFAULT_STABLECOINS
    near_liquidation: Decimal = DEFAULT_NEAR_LIQUIDATION  # finding when a position is closer than this
    max_low_liquidity_share: Decimal | None = None  # low-liquidity exposure / equity
    majors: frozenset[str] = DEFAULT_MAJORS
    asset_classes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # asset -> class
    liquidity: Mapping[str, LiquidityClass] = field(default_factory=lambda: DEFAULT_LIQUIDITY)
    # --- added with issue P (all optional) ---
    max_loan_to_collateral: Decimal | None = None  # loan / the client's own collateral (net equity)
    max_gross_leverage: Decimal | None = None  # gross exposure / own collateral
    max_stress_shortfall: Decimal | None = None  # USD: worst scenario's loan − stressed haircut collateral
    # venue label (or prefix before ":", or "*") -> largest share of the client's collateral there
    max_venue_share: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))

    def venue_share_limit(self, venue: str) -> Decimal | None:
        """The client-share limit for ``venue``: its own entry, its prefix's (``evm``), or ``*``."""
        return venue_limit(self.max_venue_share, venue)

    def haircut(self, asset: str) -> Decimal:
        return self.haircuts.get(asset, self.default_haircut)

    def asset_class(self, asset: str) -> str:
        """Explicit class, else stable / alt (low-liquidity list) / major / alt (unknown)."""
        explicit = self.asset_classes.get(asset)
        if explicit is not None:
            return explicit
        if asset in self.stablecoins:
            return STABLE
        if asset in self.low_liquidity_assets:
            return ALT
        return MAJOR if asset in self.majors else ALT

    def liquidity_of(self, asset: str) -> LiquidityClass:
        """Liquidation assumptions for ``asset``; an unknown class gets the thinnest one."""
        cls = self.liquidity.get(self.asset_class(asset))
        return cls if cls is not None else self.liquidity.get(ALT, DEFAULT_LIQUIDITY[ALT])


def venue_limit(limits: Mapping[str, Decimal], venue: str) -> Decimal | None:
    """``limits[venue]``, else ``limits[prefix]`` (the part before ``:``), else ``limits["*"]``."""
    for key in (venue, venue.split(":", 1)[0], "*"):
        hit = limits.get(key)
        if hit is not None:
            return hit
    return None
