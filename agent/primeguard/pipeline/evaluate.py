"""From an Observation to per-client valuations, ladder moves and findings (no I/O here).

The policy decides the parameters (tier ladder, haircuts, limits) and judges credentials; risk
does the maths. Without an active policy everything fails closed: clients are valued with the
strictest built-in ladder and a POLICY_MISSING finding is raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from math import isfinite
from types import MappingProxyType
from typing import Any

from primeguard.config.schema import PrimeguardConfig
from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import Client, Credential, Loan, PriceSourceKind
from primeguard.domain.observation import AccountSnapshot, DataGap, Observation, account_venue, snapshot_gaps
from primeguard.pipeline.haircuts import PriceHistory, volatility_haircuts, with_volatility
from primeguard.policy.policyset import PolicySet
from primeguard.risk.interest import InterestTerms
from primeguard.risk.ladder import LadderState, LadderStatus, initial, step
from primeguard.risk.limits import BookExposure, book_exposure, book_venue_findings, stress_findings, venue_findings
from primeguard.risk.params import LadderBands, RiskParameters
from primeguard.risk.portfolio import gc_paused
from primeguard.risk.pricing import PriceBook, select_prices
from primeguard.risk.stress import (
    SCREEN_TOLERANCE,
    ShockedBooks,
    StressScenario,
    default_scenarios,
    screen_ltv,
    screen_stress,
    stress,
)
from primeguard.risk.valuation import INFINITE, ZERO, ClientBook, ClientValuation, ValuationContext, loan_due, valuate
from primeguard.risk.volatility import VolatilityHaircut

# Used only when no policy is active: strict on purpose.
FALLBACK_PARAMS = RiskParameters(ladder=LadderBands(Decimal("0.4"), Decimal("0.5"), Decimal("0.6"), Decimal("0.7")))


@dataclass(frozen=True)
class LadderMove:
    """A client whose ladder rung changed in this evaluation (LTV as a ``Decimal`` ratio, ``None`` if unknown)."""

    client_id: str
    previous: LadderStatus
    current: LadderStatus
    ltv: Decimal | None


@dataclass
class Evaluation:
    """The result of :func:`evaluate`: per-client valuations, ladder rungs, moves, findings, stress results and
    risk parameters, and the book's exposure per venue."""

    valuations: dict[str, ClientValuation] = field(default_factory=dict)
    ladder: dict[str, LadderStatus] = field(default_factory=dict)
    moves: list[LadderMove] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    stress: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    params: dict[str, RiskParameters] = field(default_factory=dict)
    book_exposure: BookExposure | None = None  # the whole book's collateral per venue
    volatility: dict[str, VolatilityHaircut] = field(default_factory=dict)  # haircuts that follow volatility
    reference_prices: dict[str, Decimal] = field(default_factory=dict)  # fresh reference price per quoted asset
    # How each client's stress was computed: "exact" (Decimal, every figure) or "float_screen"
    # (far from every threshold on the float grid: approximate LTVs only, no money figures).
    stress_method: dict[str, str] = field(default_factory=dict)
    stress_tolerance_usd: dict[str, float] = field(default_factory=dict)  # the screen's margin per screened client
    # Clients the ladder screen settled (``evaluate(ladder_bases=...)``): their float LTV (analytics
    # only). They have a rung in ``ladder`` (the previous one, unchanged) and nothing else: no
    # valuation, no findings.
    ladder_screened: dict[str, float] = field(default_factory=dict)


def loan_of(cfg: PrimeguardConfig, client_id: str) -> tuple[Loan, InterestTerms] | None:
    """The client's loan and its interest terms from the config (the start is required there)."""
    c = next((c for c in cfg.clients if c.id == client_id), None)
    return _loan(c) if c is not None else None


def _loan(c: Any) -> tuple[Loan, InterestTerms] | None:
    return None if c.loan is None else c.loan.to_loan(c.id)


class _PriceBooks:
    """One price book and valuation context per set of risk parameters, for one evaluation.

    Valuation reads only the picks and the book-wide per-asset findings (a missing price is restated
    per client by ``valuate``), so every client valued with the same parameters shares one book
    chosen from every quote, instead of choosing prices again per client."""

    def __init__(self, obs: Observation, heartbeats: Mapping[str, int]) -> None:
        self._obs = obs
        self._heartbeats = heartbeats
        self._books: dict[int, tuple[RiskParameters, PriceBook, ValuationContext]] = {}

    def of(self, params: RiskParameters) -> tuple[PriceBook, ValuationContext]:
        hit = self._books.get(id(params))
        if hit is None or hit[0] is not params:
            book = select_prices(self._obs.prices, self._obs.taken_at, params, max_age_s=self._heartbeats)
            hit = (params, book, ValuationContext(book, params))
            self._books[id(params)] = hit
        return hit[1], hit[2]


def evaluate(cfg: PrimeguardConfig, obs: Observation, *, policy: PolicySet | None,
             ladder: Mapping[str, LadderStatus], peaks: Mapping[str, Decimal],
             loan_start: datetime | None = None, clients: set[str] | None = None,
             extra_credentials: tuple[Credential, ...] = (), with_stress: bool = True,
             price_history: PriceHistory | None = None, screen_stress_first: bool = True,
             ladder_bases: Mapping[str, ClientValuation] | None = None) -> Evaluation:
    """Value every client of ``cfg`` seen in ``obs`` under ``policy``. ``loan_start`` is ignored
    (kept for callers): a loan's start is part of its config. ``price_history`` (stored daily
    closes per asset) feeds the policy's volatility haircuts; without it they fall back as the
    policy says (:mod:`primeguard.pipeline.haircuts`).

    Stress (``with_stress``): with ``screen_stress_first`` (the daemon's path) every client's
    scenarios run on the float grid first and only clients near a threshold, or not plainly
    screenable, get the exact Decimal stress (:func:`~primeguard.risk.stress.screen_stress`); the
    findings are those of the exact path either way. ``ev.stress_method`` says which ran per
    client. ``screen_stress_first=False`` runs the exact stress for everyone (reports).

    Ladder screen (``ladder_bases``, the oracle fast path: a client's last exact valuation): a
    client whose book is the one its base valued (same balances, positions, loan, accounts, gaps)
    is first valued on floats at this observation's prices
    (:func:`~primeguard.risk.stress.screen_ltv`, the stress screen's margin); when that float LTV
    is certainly on the same side of every band and hysteresis exit as the exact one, and the
    ladder step from it leaves the client's status exactly as it was (no move, no calm run started
    or ended, no deadline passed), the exact step would too: the client keeps its rung, appears
    in ``ladder_screened``, and gets no valuation and no findings. Everyone else (no base, a
    changed book, blind, unpriced, near a threshold, a status that would change) is valued
    exactly. Pass it only where findings are not wanted (the fast path discards them).

    The cyclic garbage collector is paused meanwhile (:func:`~primeguard.risk.portfolio.gc_paused`):
    the evaluation allocates mostly acyclic objects (freed by reference counting; a cycle waits for
    the collector's next pass), and each full pass would walk the whole observation."""
    with gc_paused():
        return _evaluate(cfg, obs, policy=policy, ladder=ladder, peaks=peaks, clients=clients,
                         extra_credentials=extra_credentials, with_stress=with_stress, price_history=price_history,
                         screen_stress_first=screen_stress_first, ladder_bases=ladder_bases)


def _evaluate(cfg: PrimeguardConfig, obs: Observation, *, policy: PolicySet | None,
              ladder: Mapping[str, LadderStatus], peaks: Mapping[str, Decimal], clients: set[str] | None,
              extra_credentials: tuple[Credential, ...], with_stress: bool, price_history: PriceHistory | None,
              screen_stress_first: bool, ladder_bases: Mapping[str, ClientValuation] | None) -> Evaluation:
    now = obs.taken_at
    out = Evaluation()
    out.volatility = volatility_haircuts(policy, price_history, now)
    out.findings.extend(v.finding for v in out.volatility.values() if v.finding is not None)
    tier_params: dict[str, RiskParameters] = {}
    if policy is None:
        out.findings.append(Finding(FindingCode.POLICY_VIOLATION, Severity.CRITICAL, "policy",
                                    "no active approved policy: withdrawals are denied and the strictest "
                                    "built-in ladder is used", details={"reason": "policy_missing"}))
    heartbeats = cfg.feed_budgets()
    gaps = GapIndex(cfg, obs)
    books = _PriceBooks(obs, heartbeats)
    per_client: list[tuple[str, list[Finding]]] = []  # findings in client order, stress ones added last
    stress_todo: list[tuple[str, ClientBook, PriceBook, RiskParameters, list[StressScenario]]] = []
    todo: list[tuple[Any, str, RiskParameters, ClientBook, PriceBook, ValuationContext, list[Finding]]] = []
    # The standard scenarios per set of venues, built once (frozen values, shared between clients).
    scenario_sets: dict[frozenset[str], list[StressScenario]] = {}
    for client in cfg.clients:
        if clients is not None and client.id not in clients:
            continue
        found: list[Finding] = []
        tier = policy.tier_of(client.id) if policy is not None else client.tier
        try:
            params = policy.risk_parameters(tier) if policy is not None else FALLBACK_PARAMS
        except Exception as exc:  # unknown tier in the policy: fail closed with the strict ladder
            found.append(Finding(FindingCode.POLICY_VIOLATION, Severity.HIGH, client.id, str(exc),
                                 client_id=client.id))
            params = FALLBACK_PARAMS
        else:
            if tier not in tier_params:
                tier_params[tier] = with_volatility(params, out.volatility)
            params = tier_params[tier]
        out.params[client.id] = params
        snaps = gaps.snapshots(client.id)
        balances = tuple(b for s in snaps if s.ok for b in s.balances)
        positions = tuple(p for s in snaps if s.ok for p in s.positions)
        venues = {s.account.id: account_venue(s) for s in snaps}
        loan_terms = _loan(client)
        loan, terms = loan_terms if loan_terms is not None else (None, None)
        keeps, class_gaps = defi_keeps(cfg, snaps, params)
        book = ClientBook(Client(client.id, client.name or client.id, tier), loan,
                          balances, positions, tuple(s.account.id for s in snaps if not s.ok), venues,
                          peaks.get(client.id), interest=terms,
                          gaps=gaps.of(client.id, snaps, balances, positions, loan) + class_gaps,
                          account_keep=keeps)
        prices, context = books.of(params)
        todo.append((client, tier, params, book, prices, context, found))
    settled = _screen_ladder(todo, ladder_bases, ladder, now) if ladder_bases else {}
    for client, tier, params, book, prices, context, found in todo:
        if client.id in settled:
            out.ladder_screened[client.id] = settled[client.id]
            out.ladder[client.id] = ladder[client.id]
            continue
        per_client.append((client.id, found))
        val = valuate(book, prices, params, now, tier=tier, context=context)
        out.valuations[client.id] = val
        found.extend(val.findings)
        prev = ladder.get(client.id) or initial(now)
        # A blind client holds its rung: the visible LTV is only a bound, and halting or liquidating
        # on a data outage does harm of its own. The blind-spot alert brings a person in instead.
        cur = step(prev, None if val.blind else val.ltv, now, params.ladder, blind=val.blind)
        out.ladder[client.id] = cur
        if cur.state != prev.state:
            out.moves.append(LadderMove(client.id, prev, cur, val.ltv))
        if cur.state >= LadderState.WARN:
            code = {LadderState.WARN: FindingCode.LTV_WARNING, LadderState.MARGIN_CALL: FindingCode.LTV_MARGIN_CALL,
                    LadderState.HALT: FindingCode.LTV_HALT, LadderState.LIQUIDATE: FindingCode.LTV_LIQUIDATE}[cur.state]
            sev = {LadderState.WARN: Severity.WARNING, LadderState.MARGIN_CALL: Severity.HIGH}.get(
                cur.state, Severity.CRITICAL)
            rung = cur.state.label.replace("_", " ")
            found.append(Finding(code, sev, client.id, f"{client.id}: LTV {_pct(val.ltv)} puts it at {rung}",
                                 client_id=client.id, details={"ltv": str(val.ltv)}))
        found.extend(venue_findings(val, params))
        if with_stress:  # analytics: skipped on the oracle fast path, where only reaction time matters
            venues = frozenset(book.account_venues.values())
            scs = scenario_sets.get(venues)
            if scs is None:
                scs = scenario_sets[venues] = default_scenarios(venues)
            stress_todo.append((client.id, book, prices, params, list(scs)))
    stress_found = _run_stress(out, stress_todo, now, screen=screen_stress_first) if stress_todo else {}
    for cid, found in per_client:
        out.findings.extend(found)
        out.findings.extend(stress_found.get(cid, ()))
    out.book_exposure = book_exposure(out.valuations.values())
    out.reference_prices = reference_prices(obs, next(iter(tier_params.values()), FALLBACK_PARAMS),
                                            cfg.feed_budgets())
    if policy is not None and clients is None:  # book-wide limits need the whole book
        out.findings.extend(book_venue_findings(out.book_exposure, policy.book_venue_limits))
    if policy is not None:
        out.findings.extend(_capability_findings(cfg, obs, policy, extra_credentials, now))
    return out


def _same_book(a: ClientBook, b: ClientBook) -> bool:
    """Whether ``a`` and ``b`` are the same book but for the peak equity (the base's peak may be
    older). ``dataclasses.replace`` only when the peaks differ (it is most of the comparison)."""
    if a is b:
        return True
    if a.peak_equity == b.peak_equity:
        return a == b
    return replace(a, peak_equity=b.peak_equity) == b


def _screen_ladder(todo: list[tuple[Any, str, RiskParameters, ClientBook, PriceBook, ValuationContext, list[Finding]]],
                   bases: Mapping[str, ClientValuation], ladder: Mapping[str, LadderStatus],
                   now: datetime) -> dict[str, float]:
    """The clients of ``todo`` the ladder screen settles (see :func:`evaluate`), with their float
    LTV: per price context, :func:`screen_ltv` on the bases whose book is this one, then the
    ladder step from the float must leave the client's previous status exactly unchanged."""
    groups: dict[int, tuple[ValuationContext, list[tuple[ClientValuation, Decimal]]]] = {}
    for client, _, _, book, _, context, _ in todo:
        base, prev = bases.get(client.id), ladder.get(client.id)
        if base is None or prev is None or base.book is None:
            continue
        if not _same_book(base.book, book):  # not the book the base valued
            continue
        owed = ZERO
        if book.loan is not None:
            lt = context.terms(book.loan.asset)
            if lt is None:
                continue
            outstanding, interest, _ = loan_due(book, now)
            owed = (outstanding + interest) * lt.high
        groups.setdefault(id(context), (context, []))[1].append((base, owed))
    out: dict[str, float] = {}
    for context, pairs in groups.values():
        for cid, x in screen_ltv(pairs, context, tolerance=SCREEN_TOLERANCE).items():
            prev = ladder[cid]
            if step(prev, Decimal(x) if isfinite(x) else INFINITE, now, context.params.ladder) == prev:
                out[cid] = x
    return out


def _run_stress(out: Evaluation, todo: list[tuple[str, ClientBook, PriceBook, RiskParameters, list[StressScenario]]],
                now: datetime, *, screen: bool) -> dict[str, list[Finding]]:
    """Stress every client of ``todo`` into ``out.stress`` / ``out.stress_method``; return the
    stress findings per client. With ``screen``, clients far from every threshold on the float
    grid (per parameter set: one grid per price context) keep the float results and skip the
    exact path; everyone else, and everyone without ``screen``, gets :func:`stress` (exact)."""
    screened: dict[str, Any] = {}
    if screen:
        groups: dict[int, tuple[RiskParameters, list[ClientValuation]]] = {}
        for cid, _, _, params, _ in todo:
            groups.setdefault(id(params), (params, []))[1].append(out.valuations[cid])
        scenarios = {cid: scs for cid, _, _, _, scs in todo}
        for params, vals in groups.values():
            screened.update(screen_stress(vals, scenarios, params, tolerance=SCREEN_TOLERANCE))
    shocked = ShockedBooks()
    found: dict[str, list[Finding]] = {}
    for cid, book, prices, params, scs in todo:
        fast = screened.get(cid)
        if fast is not None:
            out.stress[cid] = fast.to_json()
            out.stress_method[cid] = "float_screen"
            out.stress_tolerance_usd[cid] = fast.tolerance_usd
            continue
        results = [stress(book, prices, params, now, sc, books=shocked) for sc in scs]
        out.stress[cid] = [r.to_json() for r in results]
        out.stress_method[cid] = "exact"
        found[cid] = stress_findings(cid, results, params)
    return found


def defi_keeps(cfg: PrimeguardConfig, snaps: tuple[AccountSnapshot, ...],
               params: RiskParameters) -> tuple[Mapping[str, Decimal], tuple[DataGap, ...]]:
    """Per DeFi position account read this sweep: (1 − the haircut of its class in the policy),
    which replaces the underlying asset's haircut. A class the policy does not list counts for
    nothing (keep 0; borrowed legs still count in full) and is a gap that blinds the client
    (``defi_haircut_class_unknown``). Pure."""
    if not cfg.defi_positions:
        return MappingProxyType({}), ()
    decls = {d.id: d for d in cfg.defi_positions}
    keeps: dict[str, Decimal] = {}
    out: list[DataGap] = []
    for snap in snaps:
        decl = decls.get(snap.account.id)
        if decl is None or not snap.ok:
            continue
        haircut = params.defi_haircuts.get(decl.klass)
        if haircut is None:
            keeps[decl.id] = Decimal(0)
            out.append(DataGap(account_venue(snap), decl.id,
                               f"haircut class {decl.klass!r} is not in the policy's defi_classes: the position is "
                               f"not counted as collateral", FindingCode.DEFI_HAIRCUT_CLASS_UNKNOWN))
        else:
            keeps[decl.id] = Decimal(1) - haircut
    return MappingProxyType(keeps), tuple(out)


def reference_prices(obs: Observation, params: RiskParameters, budgets: Mapping[str, int]) -> dict[str, Decimal]:
    """The fresh reference price of every quoted asset (what the price history keeps). Pure."""
    book = select_prices(obs.prices, obs.taken_at, params, wanted={q.asset for q in obs.prices}, max_age_s=budgets)
    return {a: p.reference for a, p in book.picks.items() if p.reference is not None}


class GapIndex:
    """Per client, every venue whose data this sweep is missing or partial (see :class:`DataGap`).

    One rule for every venue kind, built once per evaluation:

    - a configured account (wallet, vault, CEX sub-account, dYdX address) with no snapshot at all;
    - a snapshot read only in part: any blind-spot finding on it (``snapshot_gaps``), e.g. a dYdX
      node that could not list authenticators or a CEX key that could not be inspected;
    - a configured oracle feed that gave no valid round this sweep (unreadable, stale, bad round,
      its chain down or on the wrong chain) for an asset the client holds, owes or trades.

    Snapshots not read at all (``ok=False``) are the book's blind accounts, not gaps.
    """

    def __init__(self, cfg: PrimeguardConfig, obs: Observation) -> None:
        self._snaps: dict[str, list[AccountSnapshot]] = {}
        for snap in obs.snapshots:
            self._snaps.setdefault(snap.account.client_id, []).append(snap)
        self._expected: dict[str, list[tuple[str, str]]] = {}
        wallets = {(w.chain, w.address.lower()) for w in cfg.wallets}
        for w in cfg.wallets:
            self._expected.setdefault(w.client, []).append((w.id, f"evm:{w.chain}"))
        for v in cfg.vaults:
            if (v.chain, v.address.lower()) not in wallets:  # a vault nobody reads is collateral unseen
                self._expected.setdefault(v.client, []).append((v.id, f"evm:{v.chain}"))
        for c in cfg.cex_accounts:
            self._expected.setdefault(c.client, []).append((c.id, c.venue))
        for d in cfg.dydx_accounts:
            self._expected.setdefault(d.client, []).append((d.id, "dydx"))
        self._feeds = _feed_gaps(cfg, obs)

    def snapshots(self, client_id: str) -> tuple[AccountSnapshot, ...]:
        """The client's snapshots of this observation, in observation order."""
        return tuple(self._snaps.get(client_id, ()))

    def of(self, client_id: str, snaps: tuple[AccountSnapshot, ...], balances: tuple[Any, ...],
           positions: tuple[Any, ...], loan: Loan | None) -> tuple[DataGap, ...]:
        """The client's gaps, in a stable order (accounts as configured, then feeds by asset)."""
        out: list[DataGap] = []
        seen = {s.account.id for s in snaps}
        for account_id, venue in self._expected.get(client_id, ()):
            if account_id not in seen:
                out.append(DataGap(venue, account_id, "no snapshot this sweep: the account was not read at all"))
        for snap in snaps:
            out.extend(snapshot_gaps(snap))
        if self._feeds:
            used = {b.asset for b in balances if b.quantity} | {p.underlying for p in positions if p.size}
            if loan is not None:
                used.add(loan.asset)
            for asset in sorted(used & self._feeds.keys()):
                out.extend(self._feeds[asset])
        return tuple(out)


def _feed_gaps(cfg: PrimeguardConfig, obs: Observation) -> dict[str, list[DataGap]]:
    """Configured oracle feeds without a valid quote this sweep, by priced asset, with the cause."""
    quoted = {q.source_id for q in obs.prices if q.source is PriceSourceKind.ORACLE}
    out: dict[str, list[DataGap]] = {}
    for f in cfg.feeds:
        if f"{f.chain}:{f.address}" in quoted:
            continue
        cause = next((x for x in obs.findings if x.chain == f.chain
                      and str(x.details.get("feed", "")).lower() == f.address.lower()), None)
        if cause is None:  # no feed finding: the whole chain was not read (down, wrong chain id)
            cause = next((x for x in obs.findings if x.subject == f"chain:{f.chain}"), None)
        why = cause.message if cause is not None else "no valid round this sweep"
        out.setdefault(f.asset, []).append(DataGap(
            f"oracle:{f.chain}", f.address, f"{f.asset}/USD feed gave no valid price: {why}",
            cause.code if cause is not None else FindingCode.ORACLE_UNREADABLE))
    return out


def _capability_findings(cfg: PrimeguardConfig, obs: Observation, policy: PolicySet,
                         extra: tuple[Credential, ...], now: datetime) -> list[Finding]:
    from primeguard.policy.engine import evaluate_capabilities
    from primeguard.policy.inputs import CapabilityInput

    creds = [c for s in obs.snapshots for c in s.credentials] + list(extra)
    accounts = {s.account.id: s.account for s in obs.snapshots}
    result = evaluate_capabilities(policy, CapabilityInput(credentials=creds, accounts=accounts))
    return list(result.findings)


def _pct(x: Decimal | None) -> str:
    if x is None:
        return "unknown"
    if x == Decimal("Infinity"):
        return "infinite"
    return f"{x * 100:.2f}%"
