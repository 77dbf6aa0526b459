"""The escalation ladder: normal (healthy) → warn → margin call → halt → liquidate.

A pure state machine over (previous status, LTV, now); no clock is read here.

- **Up is immediate**: the client moves to the highest rung whose threshold its LTV reaches.
- **Down needs calm**: to leave rung *k* the LTV must stay below ``threshold_k − hysteresis``
  (the rung's lower band) without interruption for ``cooldown_s``. The status keeps, per rung
  at or below the current one, since when the LTV has been below that rung's lower band; the
  client drops to just under the lowest rung whose run has lasted the cooldown. One bounce
  above a lower band restarts that rung's clock. Observations are points: between two
  observations below the band the LTV is taken to have stayed below.
- **Margin call deadline**: entering the margin-call rung (from below or from above) sets a cure
  deadline. At or after it, a client still in margin call whose LTV is not below the rung's lower
  band escalates to halt. With no LTV at the deadline we cannot see a cure: halt (fail closed).
- **Blind** (``blind=True`` or ``ltv=None``): never moves down and every calm clock restarts;
  moving up on a given LTV still happens. The daemon alerts on the blind spot instead.

Names: the issue's "healthy"/"warning" are aliases of ``NORMAL``/``WARN``; labels stay
``normal``/``warn`` because stored history and alerts already use them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import IntEnum

from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.risk.params import LadderBands
from primeguard.risk.pricing import dec_str


class LadderState(IntEnum):
    NORMAL = 0
    WARN = 1
    MARGIN_CALL = 2
    HALT = 3
    LIQUIDATE = 4
    HEALTHY = 0  # alias of NORMAL
    WARNING = 1  # alias of WARN

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, label: str) -> LadderState:
        """``"normal"``, ``"healthy"``, ``"margin call"``, ``"MARGIN_CALL"``… → the state."""
        try:
            return cls[label.strip().upper().replace(" ", "_").replace("-", "_")]
        except KeyError:
            raise ValueError(f"unknown ladder state {label!r}") from None


@dataclass(frozen=True, slots=True)
class LadderStatus:
    """Where a client stands. ``below[k-1]``: since when the LTV has been below rung *k*'s lower
    band (k = 1 … state); None when it is not below it."""

    state: LadderState
    entered_at: datetime
    below: tuple[datetime | None, ...] = ()
    deadline: datetime | None = None  # margin call cure deadline

    @property
    def below_since(self) -> datetime | None:
        """Start of the calm run that would let the client leave its current rung."""
        return self.below[self.state - 1] if 0 < self.state <= len(self.below) else None

    @property
    def margin_call_deadline(self) -> datetime | None:
        return self.deadline

    def to_json_dict(self) -> dict[str, str | None]:
        return {"state": self.state.label, "entered_at": self.entered_at.isoformat(),
                "below_since": _iso(self.below_since), "deadline": _iso(self.deadline)}

    to_json = to_json_dict


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def thresholds(bands: LadderBands) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    return (bands.warn, bands.margin_call, bands.halt, bands.liquidate)


def level_for(ltv: Decimal, bands: LadderBands, *, margin: Decimal = Decimal(0)) -> LadderState:
    """The highest rung whose threshold (minus ``margin``) the LTV reaches."""
    level = LadderState.NORMAL
    for i, t in enumerate(thresholds(bands), start=1):
        if ltv >= t - margin:
            level = LadderState(i)
    return level


def initial(now: datetime) -> LadderStatus:
    return LadderStatus(LadderState.NORMAL, now)


def step(prev: LadderStatus, ltv: Decimal | None, now: datetime, bands: LadderBands, *,
         blind: bool = False) -> LadderStatus:
    """Advance the ladder with one observation.

    Args:
        prev: the status after the previous observation (:func:`initial` for a new client).
        ltv: the LTV now; None when unknown. ``Decimal('Infinity')`` reaches every rung.
        now: the observation's instant (must not go backwards).
        bands: the client's tier bands.
        blind: the client could not be fully seen: no downward move.
    """
    edges = thresholds(bands)
    h = bands.hysteresis
    deadline_passed = prev.state == LadderState.MARGIN_CALL and prev.deadline is not None and now >= prev.deadline
    if ltv is None:
        if deadline_passed:
            return _enter(LadderState.HALT, now, bands)
        return replace(prev, below=())
    target = level_for(ltv, bands)
    if deadline_passed and ltv >= edges[LadderState.MARGIN_CALL - 1] - h:
        target = max(target, LadderState.HALT)  # not cured in time
    if target > prev.state:
        return _enter(target, now, bands)
    if blind or prev.state == LadderState.NORMAL:
        return replace(prev, below=())
    runs: list[datetime | None] = []
    for k in range(1, prev.state + 1):
        if ltv < edges[k - 1] - h:
            since = prev.below[k - 1] if k <= len(prev.below) else None
            runs.append(since if since is not None else now)
        else:
            runs.append(None)
    cooldown = timedelta(seconds=bands.cooldown_s)
    for k in range(1, prev.state + 1):
        since = runs[k - 1]
        if since is not None and now - since >= cooldown:
            new = LadderState(k - 1)
            # Calm runs of the rungs still above the new one carry over: that time was real.
            return _enter(new, now, bands, tuple(runs[:new]))
    return replace(prev, below=tuple(runs))


def _enter(state: LadderState, now: datetime, bands: LadderBands,
           below: tuple[datetime | None, ...] = ()) -> LadderStatus:
    deadline = now + timedelta(seconds=bands.margin_call_deadline_s) if state == LadderState.MARGIN_CALL else None
    return LadderStatus(state, now, below, deadline)


def cure_target(bands: LadderBands) -> Decimal:
    """The LTV a client in margin call must get under to be cured: the margin-call rung's lower band."""
    return bands.margin_call - bands.hysteresis


def cure_amounts(ltv: Decimal, loan: Decimal, target: Decimal) -> tuple[Decimal, Decimal] | None:
    """What brings an LTV (loan ÷ haircut-adjusted collateral) down to ``target``: either post this
    much haircut-adjusted collateral (USD), or repay / reduce this much of the loan (USD). ``(0, 0)``
    when already under; None when it cannot be said (no finite positive LTV or no target)."""
    if not ltv.is_finite() or ltv <= 0 or target <= 0 or loan <= 0:
        return None
    collateral = loan / ltv
    post = max(Decimal(0), loan / target - collateral)
    repay = max(Decimal(0), loan - target * collateral)
    return post, repay


_CODES = {LadderState.WARN: (FindingCode.LTV_WARNING, Severity.WARNING),
          LadderState.MARGIN_CALL: (FindingCode.LTV_MARGIN_CALL, Severity.HIGH),
          LadderState.HALT: (FindingCode.LTV_HALT, Severity.CRITICAL),
          LadderState.LIQUIDATE: (FindingCode.LTV_LIQUIDATE, Severity.CRITICAL)}


def ladder_finding(client_id: str, status: LadderStatus, ltv: Decimal | None, bands: LadderBands) -> Finding | None:
    """The one ``LTV_*`` finding for a client on a rung above normal (None when normal)."""
    code_sev = _CODES.get(status.state)
    if code_sev is None:
        return None
    code, sev = code_sev
    shown = "unknown" if ltv is None else ("infinite (no collateral left)" if not ltv.is_finite()
                                           else f"{ltv * 100:.2f}%")
    msg = f"{client_id}: LTV {shown} puts it at {status.state.label.replace('_', ' ')}"
    if status.deadline is not None:
        msg += f" (cure by {status.deadline.isoformat()})"
    threshold = thresholds(bands)[status.state - 1]
    return Finding(code, sev, client_id, msg, client_id=client_id,
                   details={"ltv": dec_str(ltv), "state": status.state.label, "threshold": dec_str(threshold),
                            "entered_at": status.entered_at.isoformat(), "deadline": _iso(status.deadline)})
