"""The escalation ladder: normal → warn → margin call → halt → liquidate.

Upward moves are immediate. Downward moves need the LTV to stay below the current band's
threshold minus the hysteresis for ``cooldown_s`` without interruption; then the client drops to
the level its LTV (plus hysteresis) warrants. A margin call that is not cured by its deadline
escalates to halt. A blind client never moves down: we cannot see that it got better.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import IntEnum

from primeguard.risk.params import LadderBands


class LadderState(IntEnum):
    NORMAL = 0
    WARN = 1
    MARGIN_CALL = 2
    HALT = 3
    LIQUIDATE = 4

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class LadderStatus:
    state: LadderState
    entered_at: datetime
    below_since: datetime | None = None  # when LTV first went below the band's lower edge
    deadline: datetime | None = None  # margin call cure deadline

    def to_json(self) -> dict[str, str | None]:
        return {"state": self.state.label, "entered_at": self.entered_at.isoformat(),
                "below_since": None if self.below_since is None else self.below_since.isoformat(),
                "deadline": None if self.deadline is None else self.deadline.isoformat()}


def thresholds(bands: LadderBands) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    return (bands.warn, bands.margin_call, bands.halt, bands.liquidate)


def level_for(ltv: Decimal, bands: LadderBands, *, margin: Decimal = Decimal(0)) -> LadderState:
    """The highest level whose threshold (minus ``margin``) the LTV reaches."""
    level = LadderState.NORMAL
    for i, t in enumerate(thresholds(bands), start=1):
        if ltv >= t - margin:
            level = LadderState(i)
    return level


def step(prev: LadderStatus, ltv: Decimal | None, now: datetime, bands: LadderBands, *,
         blind: bool = False) -> LadderStatus:
    """Advance the ladder with one observation. ``ltv`` None (unknown) holds the current state."""
    if ltv is None:
        return replace(prev, below_since=None)
    target = level_for(ltv, bands)
    deadline_passed = prev.deadline is not None and now >= prev.deadline
    if prev.state == LadderState.MARGIN_CALL and deadline_passed and target >= LadderState.MARGIN_CALL:
        target = LadderState.HALT  # not cured in time
    if target > prev.state:
        return _enter(target, now, bands)
    if target == prev.state or blind:
        # Same band, or cannot see whether it improved: the cooldown clock restarts.
        return replace(prev, below_since=None)
    # Candidate for moving down: LTV must sit below this band's edge minus the hysteresis.
    edge = thresholds(bands)[prev.state - 1] - bands.hysteresis
    if ltv >= edge:
        return replace(prev, below_since=None)
    since = prev.below_since or now
    if now - since < timedelta(seconds=bands.cooldown_s):
        return replace(prev, below_since=since)
    return _enter(level_for(ltv, bands, margin=-bands.hysteresis), now, bands)


def _enter(state: LadderState, now: datetime, bands: LadderBands) -> LadderStatus:
    deadline = now + timedelta(seconds=bands.margin_call_deadline_s) if state == LadderState.MARGIN_CALL else None
    return LadderStatus(state, now, None, deadline)


def initial(now: datetime) -> LadderStatus:
    return LadderStatus(LadderState.NORMAL, now)
