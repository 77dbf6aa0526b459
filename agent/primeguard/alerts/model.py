"""Value types of the alert pipeline. Pure: no I/O.

- :class:`LadderEvent`: a client moved on the escalation ladder (input, like a finding).
- :class:`AlertItem`: one thing that can be alerted on, built from a finding or from the ladder.
- :class:`AlertRecord`: what the store remembers about one item on one channel.
- :class:`Send`: one step :func:`primeguard.alerts.plan.plan` decided (a notice, or silent bookkeeping).
- :class:`Delivery`: what happened when a notice was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from primeguard.config.alerts import LADDER_CODE
from primeguard.domain.errors import InputError
from primeguard.domain.findings import Finding, Severity

LADDER_LEVELS: tuple[str, ...] = ("normal", "warn", "margin_call", "halt", "liquidate")
"""Ladder states, lowest first (the same as ``primeguard.policy.schema.LADDER_STATES``)."""

LADDER_SEVERITY: Mapping[str, Severity] = MappingProxyType({
    "normal": Severity.INFO,
    "warn": Severity.WARNING,
    "margin_call": Severity.HIGH,
    "halt": Severity.CRITICAL,
    "liquidate": Severity.CRITICAL,
})


@dataclass(frozen=True, slots=True)
class LadderEvent:
    """A client's ladder state changed from ``previous`` to ``current`` at ``at`` (LTV as a decimal string)."""

    client_id: str
    previous: str
    current: str
    ltv: str | None
    at: datetime

    def __post_init__(self) -> None:
        for level in (self.previous, self.current):
            if level not in LADDER_LEVELS:
                raise InputError(f"unknown ladder level {level!r}: use one of {', '.join(LADDER_LEVELS)}")
        if not self.client_id:
            raise InputError("ladder event needs a client_id")
        if self.at.tzinfo is None:
            raise InputError("ladder event time must be timezone-aware")


class ItemKind(StrEnum):
    FINDING = "finding"
    LADDER = "ladder"


@dataclass(frozen=True, slots=True)
class AlertItem:
    """Something open that channels may be told about. ``level`` is what is stored in the alerts
    table and compared for escalation: the severity name for findings, the ladder state for the ladder."""

    key: str
    kind: ItemKind
    code: str
    severity: Severity
    level: str
    subject: str
    message: str
    client_id: str | None = None
    venue: str = ""
    chain: str | None = None
    blind_spot: bool = False
    ladder: LadderEvent | None = None
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def rank(self) -> int:
        return level_rank(self.kind, self.level)

    @property
    def is_open(self) -> bool:
        return not (self.kind is ItemKind.LADDER and self.level == "normal")

    @classmethod
    def from_finding(cls, f: Finding) -> AlertItem:
        return cls(
            key=f.key, kind=ItemKind.FINDING, code=str(f.code), severity=f.severity, level=f.severity.name,
            subject=f.subject, message=f.message, client_id=f.client_id, venue=f.venue, chain=f.chain,
            blind_spot=f.is_blind_spot, details=f.details,
        )

    @classmethod
    def for_ladder(cls, client_id: str, level: str, event: LadderEvent | None = None) -> AlertItem:
        if event is not None:
            ltv = f" (LTV {event.ltv})" if event.ltv is not None else ""
            message = f"client {client_id}: ladder {event.previous} → {event.current}{ltv}"
        else:
            message = f"client {client_id}: ladder state {level}"
        return cls(
            key=ladder_key(client_id), kind=ItemKind.LADDER, code=LADDER_CODE, severity=LADDER_SEVERITY[level],
            level=level, subject=client_id, message=message, client_id=client_id, ladder=event,
        )


def ladder_key(client_id: str) -> str:
    return f"{LADDER_CODE}:{client_id}"


def ladder_client(key: str) -> str | None:
    """The client of a ladder key, or None when ``key`` is a finding key."""
    prefix = f"{LADDER_CODE}:"
    return key[len(prefix):] or None if key.startswith(prefix) else None  # no finding code is "ladder"


def level_rank(kind: ItemKind, level: str) -> int:
    """Order of levels for escalation; an unknown stored level ranks lowest (so anything rises above it)."""
    if kind is ItemKind.LADDER:
        return LADDER_LEVELS.index(level) if level in LADDER_LEVELS else -1
    try:
        return int(Severity[level])
    except KeyError:
        return -1


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """The stored state of one item on one channel (a plain copy of ``store.tables.AlertRow``)."""

    finding_key: str
    channel: str
    level: str
    state: str  # pending | sent | failed | suppressed | resolved
    attempts: int = 0
    sent_at: datetime | None = None
    cooldown_until: datetime | None = None
    updated_at: datetime | None = None
    last_error: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> AlertRecord:
        return cls(
            finding_key=row.finding_key, channel=row.channel, level=row.level, state=row.state,
            attempts=row.attempts, sent_at=row.sent_at, cooldown_until=row.cooldown_until,
            updated_at=row.updated_at, last_error=row.last_error,
        )


class Action(StrEnum):
    """What a :class:`Send` does. The first four deliver a notice; the last two only update the store."""

    OPENED = "opened"  # first notice of an episode
    ESCALATED = "escalated"  # level rose above the stored level
    REMINDER = "reminder"  # still open (repeat_s elapsed), or a retry of a delivered item
    RESOLVED = "resolved"  # the item closed
    RECORD = "record"  # silent: the level fell; remember it so a rise back re-notifies
    CLOSE = "close"  # silent: the episode ends without a notice


DELIVERING: frozenset[Action] = frozenset({Action.OPENED, Action.ESCALATED, Action.REMINDER, Action.RESOLVED})


@dataclass(frozen=True, slots=True)
class Send:
    """One planned step for ``item`` on ``channel``.

    ``state``: the stored state the plan saw (None: no active record), checked again when the step
    is applied so two writers never both deliver. ``previous_level``: the stored level (for
    "escalated from"). ``priority``: ``high`` for blind spots and critical items, sent first.
    """

    channel: str
    action: Action
    item: AlertItem
    state: str | None = None
    previous_level: str | None = None
    retry: bool = False

    @property
    def delivers(self) -> bool:
        return self.action in DELIVERING

    @property
    def key(self) -> str:
        return self.item.key

    @property
    def level(self) -> str:
        return self.item.level

    @property
    def priority(self) -> str:
        return "high" if self.item.blind_spot or self.item.severity >= Severity.CRITICAL else "normal"


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one notice. ``ok`` None: skipped (another writer changed the record first).
    ``error`` is redacted (no URLs beyond scheme and host, no secrets)."""

    channel: str
    key: str
    action: Action
    ok: bool | None
    attempts: int = 0
    error: str | None = None
    priority: str = "normal"
