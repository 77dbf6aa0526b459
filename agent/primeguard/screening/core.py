"""The pure part of screening: what sources answered, what that means, and a TTL cache.

A hit from any source denies (reason ``sanctioned``). A source that could not answer denies
(``screening_unavailable``) unless it is marked advisory. No source at all is "could not answer":
nothing unscreened is ever allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from primeguard.domain.decision import Decision, Outcome, ReasonCode


class SourceStatus(StrEnum):
    CLEAR = "clear"
    HIT = "hit"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class SourceAnswer:
    """One source's answer about one address (``source``: ``oracle:<chain>`` or ``list:<name>``)."""

    source: str
    status: SourceStatus
    detail: str = ""


class VerdictStatus(StrEnum):
    CLEAR = "clear"
    SANCTIONED = "sanctioned"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Screening:
    """Every source's answer about ``address`` on ``chain`` at ``checked_at``."""

    address: str
    chain: str
    answers: tuple[SourceAnswer, ...]
    checked_at: datetime

    def verdict(self, advisory: frozenset[str] = frozenset()) -> VerdictStatus:
        """Sanctioned if any source hit; unavailable if no source answered or a non-advisory one
        could not; clear otherwise."""
        if any(a.status is SourceStatus.HIT for a in self.answers):
            return VerdictStatus.SANCTIONED
        if not self.answers:
            return VerdictStatus.UNAVAILABLE
        if any(a.status is SourceStatus.UNAVAILABLE and not _advisory(a.source, advisory) for a in self.answers):
            return VerdictStatus.UNAVAILABLE
        return VerdictStatus.CLEAR

    def explain(self) -> str:
        if not self.answers:
            return f"no screening source is configured for {self.chain}"
        return "; ".join(f"{a.source}: {a.status.value}" + (f" ({a.detail})" if a.detail else "")
                         for a in self.answers)

    def json(self, advisory: frozenset[str] = frozenset()) -> dict[str, object]:
        return {"address": self.address, "chain": self.chain, "verdict": self.verdict(advisory).value,
                "checked_at": self.checked_at.isoformat(),
                "sources": [{"source": a.source, "status": a.status.value, "detail": a.detail} for a in self.answers]}


def _advisory(source: str, advisory: frozenset[str]) -> bool:
    return source in advisory or source.split(":", 1)[0] in advisory or (
        source.startswith("list:") and "lists" in advisory)


def screening_decision(s: Screening, advisory: frozenset[str] = frozenset(), *, what: str = "destination"
                       ) -> Decision | None:
    """``None`` when clear; otherwise the denial (``sanctioned`` or ``screening_unavailable``)."""
    v = s.verdict(advisory)
    if v is VerdictStatus.CLEAR:
        return None
    if v is VerdictStatus.SANCTIONED:
        hits = ", ".join(a.source + (f" ({a.detail})" if a.detail else "") for a in s.answers
                         if a.status is SourceStatus.HIT)
        return Decision.deny(ReasonCode.SANCTIONED, f"{what} {s.address} is sanctioned according to {hits}",
                             rule_ids=("screening",))
    return Decision.deny(ReasonCode.SCREENING_UNAVAILABLE,
                         f"{what} {s.address} could not be screened ({s.explain()}): failing closed",
                         rule_ids=("screening",))


def merge(base: Decision, extra: Decision | None) -> Decision:
    """``base`` unless ``extra`` denies; then a denial carrying both decisions' reasons."""
    if extra is None or extra.outcome is not Outcome.DENY:
        return base
    if base.outcome is Outcome.DENY:
        reasons = tuple(dict.fromkeys((*extra.reasons, *base.reasons)))
        return Decision(Outcome.DENY, reasons, (*extra.rule_ids, *base.rule_ids),
                        f"{extra.explanation}; {base.explanation}", base.policy_hash, base.shadow)
    return Decision(Outcome.DENY, extra.reasons, extra.rule_ids, extra.explanation, base.policy_hash, base.shadow)


class ScreeningCache:
    """Screenings kept ``ttl`` per (chain, address); only clear and sanctioned results are kept
    (a source that could not answer is asked again next time)."""

    def __init__(self, ttl_s: int) -> None:
        self.ttl = timedelta(seconds=ttl_s)
        self._items: dict[tuple[str, str], Screening] = {}

    def get(self, chain: str, address: str, now: datetime) -> Screening | None:
        hit = self._items.get((chain, address.lower()))
        if hit is None or now - hit.checked_at >= self.ttl or now < hit.checked_at:
            return None
        return hit

    def put(self, s: Screening) -> None:
        if any(a.status is SourceStatus.UNAVAILABLE for a in s.answers) or not s.answers:
            return
        self._items[(s.chain, s.address.lower())] = s


__all__ = ["Screening", "ScreeningCache", "SourceAnswer", "SourceStatus", "VerdictStatus", "merge",
           "screening_decision"]
