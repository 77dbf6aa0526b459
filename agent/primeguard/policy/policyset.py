"""A loaded, validated policy version, compiled for fast decisions.

The loader turns YAML files into the pydantic models of :mod:`primeguard.policy.schema`, runs the
integrity pass, then compiles what the hot path needs into plain frozen values: the allowlist as a
dict keyed by ``(client, venue, chain, asset, address)``, rules with their scopes as frozensets,
and a small memo from ``(client, venue, chain, asset)`` to the limit and approval rules that apply.
A decision is then a handful of dict lookups and ``Decimal`` comparisons.

A :class:`PolicySet` never changes after loading; the memo only caches pure functions of it. It is
data only: decisions are made by :mod:`primeguard.policy.engine` (which imports this module, never
the other way round).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel

from primeguard.domain.errors import PolicyError
from primeguard.domain.model import Capability, VenueKind
from primeguard.domain.money import decimal_str
from primeguard.policy.schema import CapabilityRule, HaircutsFile, RiskLimitsFile, TierSpec, VolatilitySpec
from primeguard.policy.yamlsrc import Source
from primeguard.risk.eligibility import TierRequirement
from primeguard.risk.params import (
    DEFAULT_LIQUIDITY,
    DEFAULT_NEAR_LIQUIDATION,
    LadderBands,
    LiquidityClass,
    RiskParameters,
)

AllowKey = tuple[str, VenueKind, str, str, str]  # (client, venue, chain, ASSET, address)
LaneKey = tuple[str, VenueKind, str, str]  # (client, venue, chain, ASSET)
RuleKind = Literal[
    "builtin", "allowlist_entry", "guard", "limit", "approval", "capability", "tier", "file", "plan_step",
]

# Rules that are not written in any file but still decide; documented in docs/policy.md.
BUILTIN_DEFAULT_DENY = "builtin.default_deny"  # withdrawals are denied unless an entry allows them
BUILTIN_INPUT = "builtin.input"  # malformed request: amount, address, asset
BUILTIN_BLIND = "builtin.blind_spot"  # the client cannot be fully seen
BUILTIN_NO_POLICY = "builtin.no_policy"  # no withdrawal_limits file: nothing can be allowed
BUILTIN_FINANCING = "builtin.financing_cap"  # a new loan draw never passes the tier's max_loan_to_collateral
BUILTIN_RULES: tuple[str, ...] = (BUILTIN_DEFAULT_DENY, BUILTIN_INPUT, BUILTIN_BLIND, BUILTIN_NO_POLICY,
                                  BUILTIN_FINANCING)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a rule is written."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """Every rule id in the set, for explain, coverage and diff."""

    id: str
    kind: RuleKind
    origin: Origin
    description: str = ""
    shadow: bool = False


@dataclass(frozen=True, slots=True)
class CompiledScope:
    clients: frozenset[str] | None = None
    tiers: frozenset[str] | None = None
    venues: frozenset[VenueKind] | None = None
    chains: frozenset[str] | None = None
    assets: frozenset[str] | None = None

    def matches(self, client: str, tier: str, venue: VenueKind, chain: str, asset: str) -> bool:
        return (
            (self.clients is None or client in self.clients)
            and (self.tiers is None or tier in self.tiers)
            and (self.venues is None or venue in self.venues)
            and (self.chains is None or chain in self.chains)
            and (self.assets is None or asset in self.assets)
        )

    def describe(self) -> str:
        parts = []
        for name, values in (("clients", self.clients), ("tiers", self.tiers), ("venues", self.venues),
                             ("chains", self.chains), ("assets", self.assets)):
            if values is not None:
                parts.append(f"{name} {', '.join(sorted(str(v) for v in values))}")
        return "; ".join(parts) if parts else "all withdrawals"


@dataclass(frozen=True, slots=True)
class AllowEntry:
    id: str
    allowlist_id: str
    client: str
    venue: VenueKind
    chain: str
    asset: str
    address: str  # checksummed for EVM addresses, as written otherwise
    written: str  # as written in the file (lint: unchecksummed)
    memo: str | None
    label: str
    added_by: str
    added_at: datetime
    active_from: datetime  # added_at + the allowlist's timelock
    expires_at: datetime
    origin: Origin
    pass_text: str = ""  # the explanation sentence when this entry allows (rendered once at load)

    @property
    def key(self) -> AllowKey:
        return (self.client, self.venue, self.chain, self.asset, self.address)


@dataclass(frozen=True, slots=True)
class LimitRuleC:
    id: str
    description: str
    scope: CompiledScope
    per_tx_usd: Decimal | None
    window_s: int | None
    velocity_max_usd: Decimal | None
    shadow: bool
    origin: Origin
    # Rendered once at load so the hot path formats only the request's own numbers.
    window: timedelta | None = None
    per_tx_text: str = ""
    velocity_text: str = ""
    window_text: str = ""


@dataclass(frozen=True, slots=True)
class ApprovalRuleC:
    id: str
    description: str
    above_usd: Decimal
    required: int
    roles: frozenset[str]
    approvers: frozenset[str] | None
    scope: CompiledScope
    shadow: bool
    origin: Origin
    roles_text: str = ""
    above_text: str = ""
    # Derived once, for the hot path: the end of this rule's "approved by ..." sentence; its "needs
    # approval" sentence for each count of valid approvals short of ``required``; and the key under
    # which rules asking the same roles (and named approvers) share one count of approvals.
    pass_suffix: str = field(init=False, repr=False, compare=False)
    ask_texts: tuple[str, ...] = field(init=False, repr=False, compare=False)
    count_key: tuple[frozenset[str], frozenset[str] | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pass_suffix", f" ({self.required} required above {self.above_text})")
        object.__setattr__(self, "ask_texts", tuple(
            f"above {self.above_text}: {self.required} approval(s) from {self.roles_text} needed, {n} so far"
            for n in range(max(0, min(self.required, 100)))))
        object.__setattr__(self, "count_key", (self.roles, self.approvers))


@dataclass(frozen=True, slots=True)
class GuardsC:
    file_id: str
    price_id: str
    price_max_age_s: int
    ladder_id: str
    allow_states: frozenset[str]
    ladder_shadow: bool
    ltv_id: str
    ltv_max: str | Decimal  # a band name of the client's tier ladder, or a number
    ltv_shadow: bool
    whitelist_id: str
    unverifiable_venues: frozenset[VenueKind]
    whitelist_shadow: bool
    financing_id: str | None = None  # None: no financing guard in the policy
    financing_shadow: bool = False
    stress_id: str | None = None  # None: no stress guard in the policy
    stress_shadow: bool = False
    screening_id: str | None = None  # None: no screening guard (the config's advisory sources apply)
    screening_advisory: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CapabilityRuleC:
    spec: CapabilityRule
    forbidden: frozenset[Capability]  # forbid / allow_only expanded ("fund_moving" → FUND_MOVING)
    known_spenders: frozenset[tuple[str, str | None]]  # (checksummed address, chain or None)
    allowed_modules: frozenset[str]
    origin: Origin

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass(frozen=True, slots=True)
class DefiClassC:
    """A DeFi position haircut class as compiled: its haircut and where it is written."""

    name: str
    haircut: Decimal
    origin: Origin
    note: str = ""


@dataclass(frozen=True, slots=True)
class KnownDelegateC:
    """An EIP-7702 delegate the policy trusts (``chain`` None: on every chain)."""

    address: str  # checksummed
    chain: str | None
    label: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class PlanStepC:
    """A compiled plan step: at ``rung`` (a rung name, or ``"capability"``) pull ``lever`` in ``mode``
    for the clients in scope (empty ``tiers``/``clients``: all)."""

    id: str
    rung: str
    lever: str
    mode: str
    tiers: frozenset[str]
    clients: frozenset[str]
    origin: Origin
    description: str = ""

    def applies_to(self, client_id: str, tier: str) -> bool:
        return (not self.clients or client_id in self.clients) and (not self.tiers or tier in self.tiers)

    def describe(self) -> str:
        """In words: ``"halt_vault (needs_approval) at halt"``, with its scope when it has one."""
        scope = [f"tiers {', '.join(sorted(self.tiers))}"] if self.tiers else []
        scope += [f"clients {', '.join(sorted(self.clients))}"] if self.clients else []
        where = "on capability findings" if self.rung == "capability" else f"at {self.rung}"
        return f"{self.lever} ({self.mode}) {where}" + (f" for {'; '.join(scope)}" if scope else "")


@dataclass(frozen=True, slots=True)
class LadderPlanC:
    """The compiled ``ladder_plan`` file: rung steps in file order, then capability steps."""

    file_id: str
    steps: tuple[PlanStepC, ...]


_NO_ENTRIES: Mapping[str, AllowEntry] = MappingProxyType({})
_CEX_VENUES = frozenset(v for v in VenueKind if v.is_cex)


@dataclass(frozen=True, slots=True)
class Lane:
    """What a withdrawal decision needs for one ``(client, venue, chain, ASSET)``, compiled once:
    the allowlist entries of that key by address, the limit and approval rules whose scope covers it
    (as :meth:`PolicySet.rules_for`), the client's tier and its LTV ceiling with wording (as
    :meth:`PolicySet.ltv_limit_and_text`; ``None`` and ``""`` without guards), the tier's spec, and
    the venue facts the whitelist guard reads. Pure data derived from the policy."""

    entries: Mapping[str, AllowEntry]
    limits: tuple[LimitRuleC, ...]
    approvals: tuple[ApprovalRuleC, ...]
    tier: str
    ltv_cap: Decimal | None
    ltv_cap_text: str
    spec: TierSpec | None
    cex: bool
    whitelist_unverifiable: bool


@dataclass(frozen=True)
class PolicySet:
    """One policy version: the files it was loaded from, their content hash, compiled rules."""

    hash: str
    files: Mapping[str, str]
    sources: Mapping[str, Source]
    file_ids: Mapping[str, str]  # file id -> relative path
    kinds: Mapping[str, str]  # file id -> kind
    models: Mapping[str, BaseModel]  # file id -> validated file model (schema.*File)
    risk: RiskLimitsFile
    tiers: Mapping[str, TierSpec]
    client_tiers: Mapping[str, str]
    haircuts: Mapping[str, Decimal]
    low_liquidity_assets: frozenset[str]
    default_haircut: Decimal
    known_assets: frozenset[str]
    entries: tuple[AllowEntry, ...]
    allowlist: Mapping[AllowKey, AllowEntry]
    guards: GuardsC | None
    limits: tuple[LimitRuleC, ...]
    approval_rules: tuple[ApprovalRuleC, ...]
    capability_rules: tuple[CapabilityRuleC, ...]
    rules: Mapping[str, RuleInfo]
    root: str = ""
    defi_classes: Mapping[str, DefiClassC] = field(default_factory=lambda: MappingProxyType({}))
    known_delegates: tuple[KnownDelegateC, ...] = ()
    plan: LadderPlanC | None = None  # None: the policy has no ladder_plan file
    _memo: dict[tuple[str, VenueKind, str, str], tuple[tuple[LimitRuleC, ...], tuple[ApprovalRuleC, ...]]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _risk_cache: dict[str, RiskParameters] = field(default_factory=dict, repr=False, compare=False)
    _ltv_cache: dict[str, tuple[Decimal, str]] = field(default_factory=dict, repr=False, compare=False)
    # Per client named in a rule scope: the positions (file order) of the limit and approval rules
    # scoped to it; under "": the rules without a client scope. Built once, so a first decision for
    # a (client, venue, chain, asset) only looks at the rules that can apply to that client.
    _by_client: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(
        init=False, repr=False, compare=False)
    # (client, venue, chain, ASSET) -> the allowlist's entries with that key, by address.
    _lane_entries: dict[LaneKey, Mapping[str, AllowEntry]] = field(init=False, repr=False, compare=False)
    # (client, venue, chain, ASSET) -> its Lane. Built at construction for every key the allowlist
    # has (so no decision on an allowlisted lane computes one, the first after a load included);
    # other keys are added on first use (bounded).
    _lanes: dict[LaneKey, Lane] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, tuple[list[int], list[int]]] = {}
        scopes = ([r.scope for r in self.limits], [r.scope for r in self.approval_rules])
        for kind, of_kind in enumerate(scopes):
            for i, scope in enumerate(of_kind):
                for c in scope.clients if scope.clients is not None else ("",):
                    index.setdefault(c, ([], []))[kind].append(i)
        object.__setattr__(self, "_by_client", {c: (tuple(lim), tuple(appr)) for c, (lim, appr) in index.items()})
        by_key: dict[LaneKey, dict[str, AllowEntry]] = {}
        for (client, venue, chain, asset, address), entry in self.allowlist.items():
            by_key.setdefault((client, venue, chain, asset), {})[address] = entry
        object.__setattr__(self, "_lane_entries", by_key)  # plain dicts: read-only by contract, faster than a proxy
        object.__setattr__(self, "_lanes", {})
        for key in self._lane_entries:
            try:
                self._lanes[key] = self._build_lane(*key)
            except (KeyError, PolicyError):  # a tier the policy lacks: the decision meets it, as it always did
                continue

    # --- lookups -------------------------------------------------------------------------------

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    def plan_for(self, client_id: str, rung: str) -> tuple[PlanStepC, ...]:
        """The plan steps for ``client_id`` at ``rung`` (or ``"capability"``), in file order; empty
        without a plan or when nothing is planned there."""
        if self.plan is None:
            return ()
        tier = self.tier_of(client_id)
        return tuple(s for s in self.plan.steps if s.rung == rung and s.applies_to(client_id, tier))

    def tier_of(self, client_id: str) -> str:
        """The client's financing tier; clients the policy does not list get ``default_tier``."""
        return self.client_tiers.get(client_id, self.risk.default_tier)

    @property
    def max_velocity_window_s(self) -> int:
        """How much withdrawal history callers must pass in ``WithdrawalContext.recent``."""
        return max((r.window_s for r in self.limits if r.window_s is not None), default=0)

    def rules_for(
        self, client: str, venue: VenueKind, chain: str, asset: str
    ) -> tuple[tuple[LimitRuleC, ...], tuple[ApprovalRuleC, ...]]:
        """Limit and approval rules whose scope covers this withdrawal (memoised)."""
        key = (client, venue, chain, asset)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        tier = self.tier_of(client)
        # Candidates: the rules scoped to this client and the rules without a client scope, in file order.
        unscoped = self._by_client.get("", ((), ()))
        scoped = self._by_client.get(client, ((), ())) if client else ((), ())
        lim_at = sorted(scoped[0] + unscoped[0]) if scoped[0] else unscoped[0]
        appr_at = sorted(scoped[1] + unscoped[1]) if scoped[1] else unscoped[1]
        limits = tuple(r for r in (self.limits[i] for i in lim_at)
                       if r.scope.matches(client, tier, venue, chain, asset))
        # Ascending thresholds: the engine stops at the first rule the amount does not exceed.
        approvals = tuple(sorted((r for r in (self.approval_rules[i] for i in appr_at)
                                  if r.scope.matches(client, tier, venue, chain, asset)), key=lambda r: r.above_usd))
        if len(self._memo) > 100_000:  # bounded: scopes are few, odd inputs must not grow memory
            self._memo.clear()
        self._memo[key] = (limits, approvals)
        return limits, approvals

    def lane(self, client: str, venue: VenueKind, chain: str, asset: str) -> Lane:
        """The :class:`Lane` of ``(client, venue, chain, asset)`` (``chain`` lower-case, ``asset``
        upper-case, as the allowlist keys them): built at load for the allowlist's keys, on first use
        (then memoised, bounded) for others.

        Raises:
            KeyError: the client's tier is not defined (a policy that passed validation has them all).
        """
        key = (client, venue, chain, asset)
        hit = self._lanes.get(key)
        if hit is not None:
            return hit
        lane = self._build_lane(client, venue, chain, asset)
        if len(self._lanes) > 100_000 + len(self._lane_entries):  # bounded: odd inputs must not grow memory
            self._lanes.clear()
        self._lanes[key] = lane
        return lane

    def _build_lane(self, client: str, venue: VenueKind, chain: str, asset: str) -> Lane:
        entries = self._lane_entries.get((client, venue, chain, asset), _NO_ENTRIES)
        limits, approvals = self.rules_for(client, venue, chain, asset)
        tier = self.tier_of(client)
        cap, cap_text = self.ltv_limit_and_text(tier) if self.guards is not None else (None, "")
        unverifiable = self.guards is not None and venue in self.guards.unverifiable_venues
        return Lane(entries, limits, approvals, tier, cap, cap_text, self.tiers.get(tier), venue in _CEX_VENUES,
                    unverifiable)

    def ltv_limit(self, tier: str) -> Decimal:
        """The post-withdrawal LTV ceiling for ``tier`` (a band of its ladder or a fixed number)."""
        assert self.guards is not None
        cap = self.guards.ltv_max
        if isinstance(cap, Decimal):
            return cap
        ladder = self.tiers[tier].ladder
        value: Decimal = getattr(ladder, cap)
        return value

    def ltv_limit_and_text(self, tier: str) -> tuple[Decimal, str]:
        """:meth:`ltv_limit` and its wording ("0.75 (warn band of tier standard)"), memoised."""
        hit = self._ltv_cache.get(tier)
        if hit is None:
            cap = self.ltv_limit(tier)
            assert self.guards is not None
            what = f"{self.guards.ltv_max} band" if isinstance(self.guards.ltv_max, str) else "fixed cap"
            hit = (cap, f"{decimal_str(cap)} ({what} of tier {tier})")
            self._ltv_cache[tier] = hit
        return hit

    def risk_parameters(self, tier: str) -> RiskParameters:
        """What ``risk`` needs to value a client of ``tier`` and place it on the ladder.

        Raises:
            PolicyError: the tier is not defined in this policy.
        """
        cached = self._risk_cache.get(tier)
        if cached is not None:
            return cached
        spec = self.tiers.get(tier)
        if spec is None:
            raise PolicyError(f"unknown tier {tier!r} (this policy defines: {', '.join(sorted(self.tiers))})")
        lad = spec.ladder
        liq = self.risk.liquidity
        liquidity = dict(DEFAULT_LIQUIDITY)
        if liq is not None:
            liquidity.update({name: LiquidityClass(c.half_spread, c.depth_1pct_usd, c.max_slippage)
                              for name, c in liq.classes.items()})
        params = RiskParameters(
            ladder=LadderBands(
                warn=lad.warn, margin_call=lad.margin_call, halt=lad.halt, liquidate=lad.liquidate,
                hysteresis=lad.hysteresis, cooldown_s=lad.cooldown_s, margin_call_deadline_s=lad.margin_call_deadline_s,
            ),
            haircuts=MappingProxyType(dict(self.haircuts)),
            default_haircut=self.default_haircut,
            defi_haircuts=MappingProxyType({n: c.haircut for n, c in self.defi_classes.items()}),
            max_leverage=spec.max_leverage,
            max_net_delta_ratio=spec.max_net_delta_ratio,
            max_drawdown=spec.max_drawdown,
            max_concentration=spec.max_concentration,
            low_liquidity_assets=self.low_liquidity_assets,
            oracle_max_deviation=self.risk.oracle.max_deviation,
            price_max_age_s=self.risk.oracle.max_age_s,
            max_low_liquidity_share=spec.max_low_liquidity_share,
            asset_classes=MappingProxyType({a.upper(): c for a, c in liq.assets.items()} if liq else {}),
            liquidity=MappingProxyType(liquidity),
            max_loan_to_collateral=spec.max_loan_to_collateral,
            max_gross_leverage=spec.max_gross_leverage,
            max_stress_shortfall=spec.max_stress_shortfall_usd,
            max_venue_share=MappingProxyType({v.venue: v.max_client_share for v in self.risk.venue_limits
                                              if v.max_client_share is not None}),
            near_liquidation=DEFAULT_NEAR_LIQUIDATION if spec.near_liquidation is None else spec.near_liquidation,
        )
        self._risk_cache[tier] = params
        return params

    @property
    def book_venue_limits(self) -> Mapping[str, Decimal]:
        """Venue label (prefix, or ``*``) → the largest share of the whole book's collateral there."""
        return MappingProxyType({v.venue: v.max_book_share for v in self.risk.venue_limits
                                 if v.max_book_share is not None})

    @property
    def volatility(self) -> VolatilitySpec | None:
        """The haircuts file's volatility rule, if it has one."""
        hair = self.models.get(self.risk.haircuts)
        return hair.volatility if isinstance(hair, HaircutsFile) else None

    def volatility_assets(self) -> tuple[str, ...]:
        """The assets whose haircut follows volatility: the rule's list, else every listed asset."""
        spec = self.volatility
        if spec is None:
            return ()
        return tuple(a.upper() for a in spec.assets) if spec.assets else tuple(sorted(self.haircuts))

    def tier_requirements(self) -> tuple[TierRequirement, ...]:
        """Each tier's track-record requirements (``tiers review``), ranked by financing
        (``max_loan_to_collateral``)."""
        return tuple(TierRequirement(t.id, t.max_loan_to_collateral, t.min_track_record_days,
                                     t.max_track_record_drawdown, t.min_realised_pnl_usd)
                     for t in self.tiers.values())

    def client_since(self, client_id: str) -> datetime | None:
        """When the policy put the client in its tier (``since``), if it says."""
        return next((c.since for c in self.risk.clients if c.id == client_id), None)

    def risk_parameters_for_client(self, client_id: str) -> RiskParameters:
        return self.risk_parameters(self.tier_of(client_id))

    def is_known_delegate(self, address: str, chain: str) -> bool:
        """``address`` (checksummed) is a known EIP-7702 delegate on ``chain`` in this policy."""
        return any(d.address == address and d.chain in (None, chain) for d in self.known_delegates)

    def origin(self, rule_id: str) -> Origin | None:
        info = self.rules.get(rule_id)
        return info.origin if info else None
