"""Track record earns tiers: is a client eligible for a financing tier, from its stored history?

Pure: the caller passes the history (one point per sweep: equity and loan in USD, ladder state,
blind or not), the tiers' requirements and ``now``. Fail closed everywhere:

- No history, or a latest point older than ``max_gap``: eligible for nothing (reason stated).
- The **record** is the stretch of history that counts: it starts at the latest of the client's
  ``since`` (its tier assignment), the first seen point, the end of the last margin call (a point at
  ``margin_call`` or above: the record restarts after it), and the end of the last gap longer than
  ``max_gap`` between two seen points (an unseen stretch proves nothing). Blind points are not seen.
- ``days`` = ``now − record start``; a tier needs at least its ``min_days``.
- Drawdown and PnL are on the client's own money, **net equity** = equity − loan owed (so a loan
  draw, which raises equity and loan alike, is neither a gain nor a loss): the worst drawdown from
  the running peak over the record (a peak at or below zero counts as a full drawdown), and the
  realised PnL = last net equity − first net equity of the record.

A promotion is proposed to the highest eligible tier above the current one. A demotion is proposed
on evidence only (a margin call since the client entered its tier, or a drawdown or PnL outside the
current tier's own limits), to the highest eligible tier below, else the lowest tier. Too little
history is never evidence for a demotion: it only denies a promotion.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from primeguard.risk.pricing import dec_str

ZERO = Decimal(0)
ONE = Decimal(1)
MARGIN_CALL_STATES = frozenset({"margin_call", "halt", "liquidate"})
DEFAULT_MAX_GAP = timedelta(days=1)
DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One stored sweep of one client: equity and loan owed in USD, its ladder state label."""

    at: datetime
    equity: Decimal
    loan: Decimal
    ladder_state: str
    blind: bool = False

    @property
    def net_equity(self) -> Decimal:
        return self.equity - self.loan


@dataclass(frozen=True, slots=True)
class TierRequirement:
    """What a tier asks of a track record. ``rank`` orders tiers (higher = more financing)."""

    tier: str
    rank: Decimal
    min_days: int = 0
    max_drawdown: Decimal | None = None
    min_pnl_usd: Decimal | None = None


@dataclass(frozen=True, slots=True)
class TrackRecord:
    """The record measured from the history (``start`` None: no usable history, ``problem`` says why)."""

    start: datetime | None
    points: int
    days: Decimal
    worst_drawdown: Decimal | None
    realised_pnl: Decimal | None
    last_margin_call: datetime | None
    problem: str | None = None

    def to_json_dict(self) -> dict[str, object]:
        return {"start": None if self.start is None else self.start.isoformat(), "points": self.points,
                "days": dec_str(self.days), "worst_drawdown": dec_str(self.worst_drawdown),
                "realised_pnl_usd": dec_str(self.realised_pnl),
                "last_margin_call": None if self.last_margin_call is None else self.last_margin_call.isoformat(),
                "problem": self.problem}


@dataclass(frozen=True, slots=True)
class TierCheck:
    """Whether the record meets one tier's requirements, and every reason it does not."""

    tier: str
    eligible: bool
    reasons: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, object]:
        return {"tier": self.tier, "eligible": self.eligible, "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class TierReview:
    """One client's review: its record, every tier checked, and what is proposed
    (``action`` ``promote``, ``demote`` or ``hold``; ``proposed_tier`` the tier after it)."""

    client: str
    tier: str
    since: datetime | None
    record: TrackRecord
    checks: tuple[TierCheck, ...]
    action: str
    proposed_tier: str
    why: tuple[str, ...] = field(default=())

    def eligible_for(self, tier: str) -> bool:
        return any(c.tier == tier and c.eligible for c in self.checks)

    def to_json_dict(self) -> dict[str, object]:
        return {"client": self.client, "tier": self.tier,
                "since": None if self.since is None else self.since.isoformat(),
                "record": self.record.to_json_dict(), "tiers": [c.to_json_dict() for c in self.checks],
                "action": self.action, "proposed_tier": self.proposed_tier, "why": list(self.why)}


def track_record(points: Iterable[HistoryPoint], now: datetime, *, since: datetime | None = None,
                 max_gap: timedelta = DEFAULT_MAX_GAP) -> TrackRecord:
    """Measure the record (see the module docstring) from ``points`` (any order)."""
    seen = sorted((p for p in points if not p.blind and p.at <= now), key=lambda p: p.at)
    seen_since = [p for p in seen if p.at >= since] if since is not None else seen
    last_mc = max((p.at for p in seen_since if p.ladder_state in MARGIN_CALL_STATES), default=None)
    if not seen:
        return TrackRecord(None, 0, ZERO, None, None, last_mc, "no stored history")
    if now - seen[-1].at > max_gap:
        return TrackRecord(None, 0, ZERO, None, None, last_mc,
                           f"history stale: last seen sweep at {seen[-1].at.isoformat()}")
    start = seen[0].at if since is None else max(since, seen[0].at)
    prev: HistoryPoint | None = None
    for p in seen:
        if p.ladder_state in MARGIN_CALL_STATES or (prev is not None and p.at - prev.at > max_gap):
            start = max(start, p.at)
        prev = p
    record = [p for p in seen if p.at >= start]
    if last_mc is not None and last_mc >= start:
        record = [p for p in record if p.at > last_mc] or record[-1:]
        start = max(start, last_mc)
    days = Decimal(int((now - start).total_seconds())) / DAY_S
    if not record:  # in the tier since after the last seen sweep
        return TrackRecord(start, 0, days, None, None, last_mc, f"no seen sweep since {start.isoformat()}")
    worst = ZERO
    peak: Decimal | None = None
    for p in record:
        ne = p.net_equity
        peak = ne if peak is None else max(peak, ne)
        dd = ONE if peak <= 0 else max(ZERO, ONE - ne / peak)
        worst = max(worst, dd)
    pnl = record[-1].net_equity - record[0].net_equity
    return TrackRecord(start, len(record), days, worst, pnl, last_mc)


def check_tier(record: TrackRecord, req: TierRequirement) -> TierCheck:
    """Every requirement of ``req`` the record misses (none: eligible)."""
    if record.problem is not None or record.worst_drawdown is None or record.realised_pnl is None:
        return TierCheck(req.tier, False, (record.problem or "no usable history",))
    reasons = []
    if record.days < req.min_days:
        reasons.append(f"{_days(record.days)} days of track record, {req.tier} needs {req.min_days}")
    if req.max_drawdown is not None and record.worst_drawdown > req.max_drawdown:
        reasons.append(f"worst drawdown {_pct(record.worst_drawdown)} above {_pct(req.max_drawdown)}")
    if req.min_pnl_usd is not None and record.realised_pnl < req.min_pnl_usd:
        reasons.append(f"realised PnL {dec_str(record.realised_pnl)} USD below {dec_str(req.min_pnl_usd)}")
    return TierCheck(req.tier, not reasons, tuple(reasons))


def review(client: str, tier: str, tiers: Sequence[TierRequirement], points: Iterable[HistoryPoint],
           now: datetime, *, since: datetime | None = None, max_gap: timedelta = DEFAULT_MAX_GAP) -> TierReview:
    """Check every tier against the client's record and propose a promotion, a demotion or a hold
    (rules in the module docstring). ``tier`` must be one of ``tiers``."""
    ordered = sorted(tiers, key=lambda r: r.rank)
    by_id = {r.tier: r for r in ordered}
    current = by_id[tier]
    record = track_record(points, now, since=since, max_gap=max_gap)
    checks = tuple(check_tier(record, r) for r in ordered)
    ok = {c.tier for c in checks if c.eligible}
    above = [r for r in ordered if r.rank > current.rank and r.tier in ok]
    if above:
        target = above[-1]
        return TierReview(client, tier, since, record, checks, "promote", target.tier,
                          (f"eligible for {target.tier}: {_days(record.days)} days without a margin call, worst "
                           f"drawdown {_pct(record.worst_drawdown or ZERO)}, realised PnL "
                           f"{dec_str(record.realised_pnl)} USD",))
    evidence = _demotion_evidence(record, current, since)
    below = [r for r in ordered if r.rank < current.rank]
    if evidence and below:
        eligible_below = [r for r in below if r.tier in ok]
        target = eligible_below[-1] if eligible_below else below[0]
        return TierReview(client, tier, since, record, checks, "demote", target.tier, evidence)
    return TierReview(client, tier, since, record, checks, "hold", tier,
                      evidence or _hold_reasons(checks, ordered, current, ok))


def _hold_reasons(checks: tuple[TierCheck, ...], ordered: list[TierRequirement], current: TierRequirement,
                  ok: set[str]) -> tuple[str, ...]:
    """Why nothing moves: the current tier's own misses, else what the next tier up still needs."""
    by_tier = {c.tier: c for c in checks}
    if current.tier not in ok:
        return by_tier[current.tier].reasons
    nxt = next((r for r in ordered if r.rank > current.rank), None)
    if nxt is None:
        return ("already in the highest tier",)
    return tuple(f"{nxt.tier}: {x}" for x in by_tier[nxt.tier].reasons)


def _demotion_evidence(record: TrackRecord, current: TierRequirement, since: datetime | None) -> tuple[str, ...]:
    out = []
    if record.last_margin_call is not None and (since is None or record.last_margin_call >= since):
        out.append(f"margin call at {record.last_margin_call.isoformat()} while in {current.tier}")
    if record.problem is None and record.worst_drawdown is not None and record.realised_pnl is not None:
        if current.max_drawdown is not None and record.worst_drawdown > current.max_drawdown:
            out.append(f"worst drawdown {_pct(record.worst_drawdown)} above {current.tier}'s "
                       f"{_pct(current.max_drawdown)}")
        if current.min_pnl_usd is not None and record.realised_pnl < current.min_pnl_usd:
            out.append(f"realised PnL {dec_str(record.realised_pnl)} USD below {current.tier}'s "
                       f"{dec_str(current.min_pnl_usd)}")
    return tuple(out)


def _days(days: Decimal) -> str:
    return str(int(days))


def _pct(x: Decimal) -> str:
    return f"{(x * 100).quantize(Decimal('0.01'))}%"
