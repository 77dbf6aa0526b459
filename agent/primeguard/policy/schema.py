"""The policy language: one pydantic model per file ``kind``, unknown keys rejected.

Every policy file starts with the same header::

    version: 1
    kind: withdrawal_allowlist      # risk_limits | haircuts | withdrawal_allowlist |
                                    # withdrawal_limits | approvals | capability_rules | ladder_plan
    id: allowlist-main              # unique across the policy set; other files refer to it
    description: free text

Files refer to each other by ``id`` (``withdrawal_limits.allowlists``, ``.risk_limits``,
``.approvals``; ``risk_limits.haircuts``); the loader's integrity pass checks every reference,
every rule id's uniqueness and every client/tier name. Models here check one file's shape only.

Money is ``Decimal`` (the YAML reader never produces floats), fractions are ``0..1``, durations
are whole seconds, times must carry a timezone.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from primeguard.domain.errors import InputError
from primeguard.domain.findings import FindingCode
from primeguard.domain.model import FUND_MOVING, Capability, Holder, VenueKind
from primeguard.domain.money import parse_address


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    return value


Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")]
# Assets are compared upper-cased; files may write USDC.e, it becomes USDC.E.
AssetSymbol = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]
# Chain / network names as the policy spells them ("ethereum", "arbitrum", "tron"); lower case so
# that "Ethereum" and "ethereum" cannot become two different allowlist scopes.
ChainName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Usd = Annotated[Decimal, Field(ge=0), AfterValidator(_finite)]
Fraction = Annotated[Decimal, Field(ge=0, le=1), AfterValidator(_finite)]
PositiveDecimal = Annotated[Decimal, Field(gt=0), AfterValidator(_finite)]
Role = Literal["viewer", "treasury", "compliance", "admin"]
SeverityName = Literal["info", "warning", "high", "critical"]

# Ladder state names the risk engine reports (LadderBands fields plus "normal").
LADDER_STATES: tuple[str, ...] = ("normal", "warn", "margin_call", "halt", "liquidate")
LadderState = Literal["normal", "warn", "margin_call", "halt", "liquidate"]

KINDS: tuple[str, ...] = (
    "risk_limits", "haircuts", "withdrawal_allowlist", "withdrawal_limits", "approvals", "capability_rules",
    "ladder_plan",
)

# How a planned action runs: recorded only; a person approves first; at once; or recorded with what
# it would have done, as if automatic, and never executed.
ActionMode = Literal["dry_run", "needs_approval", "automatic", "shadow"]
ACTION_MODES: tuple[str, ...] = ("dry_run", "needs_approval", "automatic", "shadow")
# Rungs a plan can act at (a client at normal has nothing to act on).
PLAN_RUNGS: tuple[str, ...] = ("warn", "margin_call", "halt", "liquidate")
# The lever kinds primeguard's playbooks implement (``policy lint`` warns about any other: the daemon
# has no lever for it and skips it). Adding a lever kind means adding it here.
LEVER_KINDS: tuple[str, ...] = (
    "margin_call", "halt_vault", "halt_cex", "liquidate_cex", "halt_dydx", "liquidate_dydx", "revoke_approval",
    "revoke_grant", "sell_spot_cex", "sweep_to_master_cex",
)


def checked_address(value: str) -> str:
    """EVM addresses (0x + 40 hex) must pass EIP-55 when mixed case; others are opaque text."""
    text = value.strip()
    if text != value or not text:
        raise ValueError("address must be non-empty and carry no surrounding spaces")
    if text.lower().startswith("0x"):
        try:
            parse_address(text, what="address")
        except InputError as exc:
            raise ValueError(str(exc).removeprefix("address: ")) from None
        return text  # keep as written: lint warns about all-lowercase (unchecksummed) entries
    if any(c.isspace() for c in text) or len(text) > 128:
        raise ValueError(f"{text[:40]!r} is not an address (spaces or too long)")
    return text


Address = Annotated[str, AfterValidator(checked_address)]


class Strict(BaseModel):
    """Base: unknown keys rejected, values immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FileHeader(Strict):
    version: Literal[1]
    id: Identifier
    description: str = ""


# --- haircuts ----------------------------------------------------------------------------------


class HaircutEntry(Strict):
    """``haircut`` is the fraction of market value *removed*: 0.1 counts BTC at 90 %."""

    asset: AssetSymbol
    haircut: Fraction
    low_liquidity: StrictBool = False  # low-cap altcoin: thinner books, larger liquidation slippage
    note: str = ""


class VolatilitySpec(Strict):
    """Haircuts that follow volatility: ``max(floor, k × σ)`` where the floor is the asset's listed
    haircut and σ the standard deviation of daily log returns over ``window_days`` of stored price
    history. With fewer than ``min_points`` returns the floor applies and a finding says so."""

    k: PositiveDecimal
    window_days: int = Field(default=30, ge=2, le=3650)
    min_points: int = Field(default=20, ge=2, le=3650)
    assets: tuple[AssetSymbol, ...] | None = Field(default=None, min_length=1)  # None: every listed asset
    # Too little history: keep the listed haircut ("floor") or count the asset at nothing ("full").
    short_history: Literal["floor", "full"] = "floor"


class DefiHaircutClass(Strict):
    """The haircut of every DeFi position of one class (a config position's ``haircut_class``, by
    default its protocol: ``erc4626``, ``aave_v3``, ``wsteth``). It *replaces* the underlying asset's
    haircut for the position's supplied legs (protocol risk and the asset's own); borrowed legs count
    in full. A position whose class is not listed is not counted as collateral (fail closed)."""

    name: Identifier
    haircut: Fraction
    note: str = ""


class HaircutsFile(FileHeader):
    kind: Literal["haircuts"]
    default: Fraction  # assets not listed; they are also unknown to the withdrawal path
    assets: tuple[HaircutEntry, ...] = Field(min_length=1)
    volatility: VolatilitySpec | None = None
    defi_classes: tuple[DefiHaircutClass, ...] = ()  # DeFi position haircut classes (issue M)


# --- risk limits: tiers, ladders, oracle -------------------------------------------------------


class LadderSpec(Strict):
    """LTV escalation bands: warn < margin_call < halt < liquidate."""

    warn: PositiveDecimal
    margin_call: PositiveDecimal
    halt: PositiveDecimal
    liquidate: PositiveDecimal
    hysteresis: Fraction = Decimal("0.02")
    cooldown_s: int = Field(default=300, ge=0)
    margin_call_deadline_s: int = Field(default=4 * 3600, gt=0)

    def order_problem(self) -> tuple[str, str] | None:
        """``(band, message)`` when the bands do not ascend. Checked by the loader's integrity pass
        (not a model validator) so the error can point at the offending band's own line: a ladder
        out of order would make "halt" fire before "warn"."""
        bands = [("warn", self.warn), ("margin_call", self.margin_call), ("halt", self.halt),
                 ("liquidate", self.liquidate)]
        for (lo_name, lo), (hi_name, hi) in pairwise(bands):
            if lo >= hi:
                return hi_name, f"bands must ascend: {hi_name} ({hi}) must be above {lo_name} ({lo})"
        return None


class OracleSpec(Strict):
    max_age_s: int = Field(gt=0)  # a price older than this is stale
    max_deviation: Fraction  # sources disagreeing by more than this fraction: no price


class TierSpec(Strict):
    """A financing tier. ``max_loan_to_collateral`` 1 = 1:1 (2x gross), 2 = 3x, 9 = 10x."""

    id: Identifier
    description: str = ""
    max_loan_to_collateral: PositiveDecimal
    min_track_record_days: int = Field(default=0, ge=0)
    max_leverage: PositiveDecimal | None = None  # exchange position leverage
    max_net_delta_ratio: Fraction | None = None  # |net delta USD| / equity
    max_drawdown: Fraction | None = None
    max_concentration: Fraction | None = None
    ladder: LadderSpec
    # Financing: gross exposure (positions + non-stable holdings) / the client's own collateral.
    max_gross_leverage: PositiveDecimal | None = None
    # Stress: the worst scenario's shortfall, loan − stressed haircut collateral, in USD.
    max_stress_shortfall_usd: Usd | None = None
    max_low_liquidity_share: PositiveDecimal | None = None  # low-liquidity exposure / equity
    near_liquidation: Fraction | None = None  # finding when a position is closer than this (default 0.10)
    # Track record needed to be proposed for this tier (``tiers review``), besides the days.
    max_track_record_drawdown: Fraction | None = None  # worst drawdown over the record
    min_realised_pnl_usd: Decimal | None = None  # equity change net of loan flows over the record


class LiquidityClassSpec(Strict):
    """Liquidation assumptions for an asset class (see ``risk.params.LiquidityClass``)."""

    half_spread: Fraction
    depth_1pct_usd: PositiveDecimal
    max_slippage: Fraction = Decimal("0.5")


class LiquiditySpec(Strict):
    """Liquidity classes and which assets belong to them. Classes not named keep the built-in
    ``stable``/``major``/``alt`` assumptions; an asset not listed is classed as before (stablecoin,
    low-liquidity list, majors, else alt)."""

    classes: dict[Identifier, LiquidityClassSpec] = Field(default_factory=dict, max_length=64)
    assets: dict[AssetSymbol, Identifier] = Field(default_factory=dict, max_length=10_000)


class VenueLimitSpec(Strict):
    """Exposure limits per venue label (``binance``, ``dydx``, ``evm:ethereum``; ``evm`` matches
    every chain; ``"*"`` every venue without its own entry): the largest share of one client's
    collateral, and of the whole book's, that may sit there."""

    venue: Annotated[str, Field(pattern=r"^(\*|[a-z0-9][a-z0-9_:-]{0,63})$")]
    max_client_share: Fraction | None = None
    max_book_share: Fraction | None = None

    @model_validator(mode="after")
    def _has_limit(self) -> VenueLimitSpec:
        if self.max_client_share is None and self.max_book_share is None:
            raise ValueError("a venue limit needs max_client_share, max_book_share or both")
        return self


class ClientAssignment(Strict):
    id: Identifier
    tier: Identifier
    name: str = ""
    since: AwareDatetime | None = None
    note: str = ""


class RiskLimitsFile(FileHeader):
    kind: Literal["risk_limits"]
    haircuts: Identifier  # reference to a haircuts file
    oracle: OracleSpec
    default_tier: Identifier
    tiers: tuple[TierSpec, ...] = Field(min_length=1)
    clients: tuple[ClientAssignment, ...] = ()
    liquidity: LiquiditySpec | None = None
    venue_limits: tuple[VenueLimitSpec, ...] = ()


# --- withdrawal allowlist ----------------------------------------------------------------------


class AllowlistEntrySpec(Strict):
    id: Identifier
    client: Identifier
    venue: VenueKind
    chain: ChainName
    asset: AssetSymbol | None = None
    assets: tuple[AssetSymbol, ...] | None = Field(default=None, min_length=1)
    address: Address
    memo: str | None = None  # destination tag / memo where the network has one
    label: str = Field(min_length=1)
    added_by: Identifier
    added_at: AwareDatetime
    expires_at: AwareDatetime

    @model_validator(mode="after")
    def _one_asset_form(self) -> AllowlistEntrySpec:
        if (self.asset is None) == (self.assets is None):
            raise ValueError("give exactly one of 'asset' or 'assets'")
        return self

    @property
    def asset_list(self) -> tuple[str, ...]:
        return (self.asset,) if self.asset is not None else tuple(self.assets or ())


class AllowlistFile(FileHeader):
    kind: Literal["withdrawal_allowlist"]
    # A new destination becomes usable only ``timelock_s`` after ``added_at``: a compromised
    # compliance account cannot add an address and drain to it in the same minute.
    timelock_s: int = Field(default=0, ge=0)
    entries: tuple[AllowlistEntrySpec, ...] = ()


# --- withdrawal limits and guards --------------------------------------------------------------


class Scope(Strict):
    """Which withdrawals a rule applies to. An omitted list means "any"."""

    clients: tuple[Identifier, ...] | None = Field(default=None, min_length=1)
    tiers: tuple[Identifier, ...] | None = Field(default=None, min_length=1)
    venues: tuple[VenueKind, ...] | None = Field(default=None, min_length=1)
    chains: tuple[ChainName, ...] | None = Field(default=None, min_length=1)
    assets: tuple[AssetSymbol, ...] | None = Field(default=None, min_length=1)


class VelocitySpec(Strict):
    window_s: int = Field(gt=0)
    max_usd: Usd


class LimitRule(Strict):
    id: Identifier
    description: str = ""
    scope: Scope = Scope()
    per_tx_usd: Usd | None = None
    velocity: VelocitySpec | None = None
    shadow: StrictBool = False

    @model_validator(mode="after")
    def _has_limit(self) -> LimitRule:
        if self.per_tx_usd is None and self.velocity is None:
            raise ValueError("a limit rule needs per_tx_usd, velocity or both")
        return self


class PriceGuard(Strict):
    id: Identifier
    max_age_s: int = Field(gt=0)
    shadow: StrictBool = False

    @field_validator("shadow")
    @classmethod
    def _never_shadow(cls, value: StrictBool) -> StrictBool:
        if value:
            raise ValueError("the price guard cannot be shadowed: missing or stale input always denies")
        return value


class LadderGuard(Strict):
    id: Identifier
    # Withdrawals only from these ladder states; any other (or an unknown name) denies.
    allow_states: tuple[LadderState, ...] = Field(min_length=1)
    shadow: StrictBool = False


class LtvGuard(Strict):
    id: Identifier
    # Post-withdrawal LTV must stay below this band of the client's tier (or this number).
    max_post_ltv: Literal["warn", "margin_call", "halt"] | PositiveDecimal
    shadow: StrictBool = False


class WhitelistGuard(Strict):
    id: Identifier
    # Venues whose address book cannot be read (OKX v5): an unknown whitelist state is accepted there.
    unverifiable_venues: tuple[VenueKind, ...] = ()
    shadow: StrictBool = False


ScreeningSource = Annotated[str, Field(pattern=r"^(oracle:[A-Za-z0-9_.-]{1,64}|lists|list:[A-Za-z0-9_.-]{1,64})$")]


class ScreeningGuard(Strict):
    """Which screening sources only advise: one that cannot answer does not deny (a hit from any
    source always denies). Every other source is authoritative: when it cannot answer, destinations
    are refused (fail closed). Sources: ``oracle:<chain>``, ``lists`` (every imported list) or
    ``list:<name>``. Without this guard the config's ``screening.advisory`` applies."""

    id: Identifier
    advisory: tuple[ScreeningSource, ...] = Field(default=(), max_length=64)


class FinancingGuard(Strict):
    """After the withdrawal, loan ÷ the client's own collateral must stay within its tier's
    ``max_loan_to_collateral``. Unknown inputs deny."""

    id: Identifier
    shadow: StrictBool = False


class StressGuard(Strict):
    """After the withdrawal, the worst stress scenario's shortfall must stay within the tier's
    ``max_stress_shortfall_usd`` (tiers without one are not checked). Unknown inputs deny."""

    id: Identifier
    shadow: StrictBool = False


class Guards(Strict):
    price: PriceGuard
    ladder: LadderGuard
    ltv: LtvGuard
    venue_whitelist: WhitelistGuard
    financing: FinancingGuard | None = None
    stress: StressGuard | None = None
    screening: ScreeningGuard | None = None


class WithdrawalLimitsFile(FileHeader):
    kind: Literal["withdrawal_limits"]
    risk_limits: Identifier
    approvals: Identifier | None = None
    allowlists: tuple[Identifier, ...] = Field(min_length=1)
    guards: Guards
    limits: tuple[LimitRule, ...] = ()


# --- approvals ---------------------------------------------------------------------------------


class ApprovalRule(Strict):
    """Above ``above_usd``: ``required`` distinct approvers (never the requester) with one of
    ``roles``, and from ``approvers`` when that list (the M of "N of M") is given."""

    id: Identifier
    description: str = ""
    above_usd: Usd
    required: int = Field(ge=1, le=20)
    roles: tuple[Role, ...] = Field(min_length=1)
    approvers: tuple[Identifier, ...] | None = Field(default=None, min_length=1)
    scope: Scope = Scope()
    shadow: StrictBool = False


class ApprovalsFile(FileHeader):
    kind: Literal["approvals"]
    rules: tuple[ApprovalRule, ...] = Field(min_length=1)


# --- capability rules --------------------------------------------------------------------------


CAPABILITY_SETS: dict[str, frozenset[Capability]] = {"fund_moving": FUND_MOVING}


def _capability_names(values: tuple[str, ...]) -> tuple[str, ...]:
    known = {c.value for c in Capability}
    for v in values:
        if v not in known and v not in CAPABILITY_SETS:
            raise ValueError(
                f"unknown capability {v!r} (known: {', '.join(sorted(known | set(CAPABILITY_SETS)))})"
            )
    return values


CapabilityNames = Annotated[tuple[str, ...], Field(min_length=1), AfterValidator(_capability_names)]


class Applies(Strict):
    holders: tuple[Holder, ...] | None = Field(default=None, min_length=1)
    venues: tuple[VenueKind, ...] | None = Field(default=None, min_length=1)
    kinds: tuple[str, ...] | None = Field(default=None, min_length=1)
    chains: tuple[ChainName, ...] | None = Field(default=None, min_length=1)
    clients: tuple[Identifier, ...] | None = Field(default=None, min_length=1)


class KnownSpender(Strict):
    address: Address
    label: str = Field(min_length=1)
    chain: ChainName | None = None  # None: on every chain


class KnownDelegate(KnownSpender):
    """An EIP-7702 delegate contract the broker trusts: an EOA delegating to it is an ``info``
    finding and is not proposed for clearing; any other delegate is critical."""


CHECK_KEYS: tuple[str, ...] = (
    "forbid", "allow_only", "require_ip_bound", "forbid_present",
    "unlimited_approvals_only_to_known_spenders", "safe_min_threshold", "safe_allowed_modules",
)


class CapabilityRule(Strict):
    """One check on credentials matching ``applies_to``. Exactly one check key per rule, so a
    rule's id names one thing that can be wrong."""

    id: Identifier
    description: str = ""
    applies_to: Applies
    severity: SeverityName = "high"
    shadow: StrictBool = False
    finding: FindingCode | None = None  # override the finding code derived from the check
    forbid: CapabilityNames | None = None
    allow_only: CapabilityNames | None = None
    require_ip_bound: Literal[True] | None = None
    forbid_present: Literal[True] | None = None
    unlimited_approvals_only_to_known_spenders: Literal[True] | None = None
    safe_min_threshold: int | None = Field(default=None, ge=1)
    safe_allowed_modules: tuple[Address, ...] | None = None

    @model_validator(mode="after")
    def _one_check(self) -> CapabilityRule:
        given = [k for k in CHECK_KEYS if getattr(self, k) is not None]
        if len(given) != 1:
            what = ", ".join(given) if given else "none"
            raise ValueError(f"a capability rule needs exactly one check among {', '.join(CHECK_KEYS)} (got {what})")
        return self

    @property
    def check(self) -> str:
        return next(k for k in CHECK_KEYS if getattr(self, k) is not None)


class CapabilityRulesFile(FileHeader):
    kind: Literal["capability_rules"]
    known_spenders: tuple[KnownSpender, ...] = ()
    known_delegates: tuple[KnownDelegate, ...] = ()
    rules: tuple[CapabilityRule, ...] = Field(min_length=1)


class PlanStep(Strict):
    """One planned action: pull ``lever`` (a lever kind) in ``mode``; optionally only for some tiers or clients."""

    id: Identifier
    lever: Identifier
    mode: ActionMode
    description: str = ""
    tiers: tuple[Identifier, ...] = ()  # empty: every tier
    clients: tuple[Identifier, ...] = ()  # empty: every client


class LadderPlanFile(FileHeader):
    """The contingency plan: per rung, the levers to pull and how (``rungs``); and the actions taken
    on capability-scan results (``capability``, e.g. revoking an unknown unlimited approval). A rung
    lists everything it does: nothing is inherited from the rung below."""

    kind: Literal["ladder_plan"]
    rungs: dict[Literal["warn", "margin_call", "halt", "liquidate"], tuple[PlanStep, ...]] = Field(default_factory=dict)
    capability: tuple[PlanStep, ...] = ()


PolicyFile = (
    RiskLimitsFile | HaircutsFile | AllowlistFile | WithdrawalLimitsFile | ApprovalsFile | CapabilityRulesFile
    | LadderPlanFile
)

MODEL_BY_KIND: dict[str, type[BaseModel]] = {
    "risk_limits": RiskLimitsFile,
    "haircuts": HaircutsFile,
    "withdrawal_allowlist": AllowlistFile,
    "withdrawal_limits": WithdrawalLimitsFile,
    "approvals": ApprovalsFile,
    "capability_rules": CapabilityRulesFile,
    "ladder_plan": LadderPlanFile,
}


def field_vocabulary(roots: tuple[type[BaseModel], ...] = ()) -> frozenset[str]:
    """Every key the models know (default: all policy file kinds), for "did you mean" hints."""
    seen: set[str] = set()
    todo: list[type[BaseModel]] = list(roots or MODEL_BY_KIND.values())
    done: set[type[BaseModel]] = set()
    while todo:
        model = todo.pop()
        if model in done:
            continue
        done.add(model)
        for name, info in model.model_fields.items():
            seen.add(name)
            todo.extend(_models_in(info.annotation))
    return frozenset(seen)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    for arg in getattr(annotation, "__args__", ()) or ():
        found.extend(_models_in(arg))
    return found
