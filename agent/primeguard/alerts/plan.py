"""Decide what to send: a pure function of (open items, stored alert records, now, config).

Per item and channel (see docs/alerts.md for the full table):

- new (no active record) and routed → ``opened``;
- level rose above the stored level → ``escalated`` at once (cooldown does not apply);
- level fell → ``record`` silently (a later rise re-notifies);
- still open, ``repeat_s`` set, ``max(repeat_s, cooldown_s)`` since the last notice → ``reminder``;
- gone (absent from the findings, or ladder back to ``normal``) and something was delivered →
  ``resolved`` (or a silent ``close`` when the channel does not send resolved notices). Findings wait
  until ``cooldown_s`` after the last notice, so one that flaps inside the cooldown stays one episode;
  the ladder has its own hysteresis and resolves at once;
- a failed delivery is retried after its backoff (``cooldown_until``), at once if the level changed;
- a ``pending`` record older than ``2 × dispatch_timeout_s`` was left by a crash: sent again.

Routing (min severity, code patterns, blind spots) gates notices about open items; a channel that
was told about an item always hears that it resolved.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from primeguard.alerts.model import (
    Action,
    AlertItem,
    AlertRecord,
    ItemKind,
    LadderEvent,
    Send,
    ladder_client,
    level_rank,
)
from primeguard.config.alerts import AlertsConfig, EmailChannelConfig, LogChannelConfig, WebhookChannelConfig
from primeguard.domain.errors import InputError
from primeguard.domain.findings import BLIND_SPOT_CODES, Finding, Severity

Channel = LogChannelConfig | WebhookChannelConfig | EmailChannelConfig

PENDING, SENT, FAILED, SUPPRESSED, RESOLVED = "pending", "sent", "failed", "suppressed", "resolved"
_BLIND_SPOT_VALUES = frozenset(str(c) for c in BLIND_SPOT_CODES)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def plan(
    open_findings: Iterable[Finding],
    previous_alert_states: Iterable[AlertRecord],
    now: datetime,
    config: AlertsConfig,
    ladder_events: Iterable[LadderEvent] = (),
) -> list[Send]:
    """Every step to take now: notices first, high priority (blind spots, then critical) before the rest.

    Args:
        open_findings: every finding open now (the whole book: a finding absent here is closed).
        previous_alert_states: stored records; ``resolved`` ones are ignored (an item seen again
            starts a new episode).
        now: aware time of the decision.
        config: the alerts config.
        ladder_events: ladder transitions since the last call, any order.

    Returns:
        Steps; ``Send.delivers`` tells notices from silent bookkeeping.

    Raises:
        InputError: ``now`` is naive.
    """
    if now.tzinfo is None:
        raise InputError("plan: now must be timezone-aware")
    if not config.enabled:
        return []
    records = {(r.finding_key, r.channel): r for r in previous_alert_states if r.state != RESOLVED}
    items, announced = _items(open_findings, records.values(), ladder_events)
    keys_by_channel: dict[str, set[str]] = {c.name: set(items) for c in config.channels}
    for key, channel_name in records:
        if channel_name in keys_by_channel:
            keys_by_channel[channel_name].add(key)
    stale_after = timedelta(seconds=2 * config.dispatch_timeout_s)
    steps: list[Send] = []
    for channel in config.channels:
        for key in sorted(keys_by_channel[channel.name]):
            record = records.get((key, channel.name))
            item = items.get(key)
            if item is not None and not item.is_open:  # ladder back to normal
                closed = item
                item = None
            else:
                closed = None
            step = (
                _decide_open(channel, item, record, now, stale_after, announced=key in announced)
                if item is not None
                else _decide_closed(channel, key, closed, record, now, stale_after, config, announced=key in announced)
            )
            if step is not None:
                steps.append(step)
    steps.sort(key=lambda s: (not s.delivers, s.priority != "high", not s.item.blind_spot, -int(s.item.severity),
                              s.key, s.channel))
    return steps


def _items(
    findings: Iterable[Finding], records: Iterable[AlertRecord], events: Iterable[LadderEvent]
) -> tuple[dict[str, AlertItem], set[str]]:
    """Items by key (highest severity wins among duplicate findings; latest ladder event wins), and
    the ladder keys that changed in this call."""
    items: dict[str, AlertItem] = {}
    for f in findings:
        current = items.get(f.key)
        if current is None or f.severity > current.severity:
            items[f.key] = AlertItem.from_finding(f)
    latest: dict[str, LadderEvent] = {}
    for ev in sorted(events, key=lambda e: e.at):
        latest[ev.client_id] = ev
    # Ladder state without a new event: the stored level (the most recently updated record).
    stored: dict[str, AlertRecord] = {}
    for r in records:
        client = ladder_client(r.finding_key)
        if client is None:
            continue
        best = stored.get(client)
        if best is None or (r.updated_at or _EPOCH) > (best.updated_at or _EPOCH):
            stored[client] = r
    for client, r in stored.items():
        if client not in latest and level_rank(ItemKind.LADDER, r.level) >= 0:
            item = AlertItem.for_ladder(client, r.level)
            items[item.key] = item
    announced: set[str] = set()
    for client, ev in latest.items():
        item = AlertItem.for_ladder(client, ev.current, ev)
        items[item.key] = item
        announced.add(item.key)
    return items, announced


def _step(channel: Channel, action: Action, item: AlertItem, record: AlertRecord, *, retry: bool = False) -> Send:
    return Send(channel.name, action, item, state=record.state, previous_level=record.level, retry=retry)


def _due(at: datetime | None, now: datetime) -> bool:
    return at is None or now >= at


def _stale(record: AlertRecord, now: datetime, stale_after: timedelta) -> bool:
    return record.updated_at is None or now - record.updated_at >= stale_after


def _decide_open(
    channel: Channel, item: AlertItem, record: AlertRecord | None, now: datetime, stale_after: timedelta,
    *, announced: bool,
) -> Send | None:
    routed = channel.routes(item.code, item.severity, blind_spot=item.blind_spot)
    if record is None:
        return Send(channel.name, Action.OPENED, item) if routed else None
    stored = level_rank(item.kind, record.level)
    rose, changed = item.rank > stored, item.level != record.level
    delivered = record.sent_at is not None
    if record.state == PENDING:
        if not _stale(record, now, stale_after):
            return None  # a delivery in flight
        if not routed:
            return _step(channel, Action.RECORD if delivered else Action.CLOSE, item, record)
        return _step(channel, Action.REMINDER if delivered else Action.OPENED, item, record, retry=True)
    if record.state == FAILED:
        if not routed:
            # What failed is no longer wanted on this channel.
            return _step(channel, Action.RECORD if delivered else Action.CLOSE, item, record)
        if not (_due(record.cooldown_until, now) or changed or announced):
            return None
        if not delivered:
            return _step(channel, Action.OPENED, item, record, retry=True)
        return _step(channel, Action.ESCALATED if rose else Action.REMINDER, item, record, retry=True)
    # sent / suppressed: delivered before, in this episode.
    if rose:
        return _step(channel, Action.ESCALATED if routed else Action.RECORD, item, record)
    if changed:
        return _step(channel, Action.RECORD, item, record)
    if routed and channel.repeat_s is not None and record.sent_at is not None:
        wait = timedelta(seconds=max(channel.repeat_s, channel.cooldown_s))
        if now >= record.sent_at + wait:
            return _step(channel, Action.REMINDER, item, record)
    return None


def _decide_closed(
    channel: Channel, key: str, closed: AlertItem | None, record: AlertRecord | None, now: datetime,
    stale_after: timedelta, config: AlertsConfig, *, announced: bool,
) -> Send | None:
    if record is None:
        return None
    item = closed or _closed_item(key, record)
    if record.sent_at is None:
        if record.state == PENDING and not _stale(record, now, stale_after):
            return None
        return _step(channel, Action.CLOSE, item, record)  # nothing was ever delivered here
    notice = Action.RESOLVED if channel.send_resolved else Action.CLOSE
    if item.kind is ItemKind.LADDER:
        if record.state == PENDING and not _stale(record, now, stale_after):
            return None
        if record.state == FAILED and record.attempts >= config.resolve_max_attempts:
            return _step(channel, Action.CLOSE, item, record)
        if record.state == FAILED and not (announced or _due(record.cooldown_until, now)):
            return None
        return _step(channel, notice, item, record, retry=record.state in (FAILED, PENDING))
    hold_until = record.sent_at + timedelta(seconds=channel.cooldown_s)
    if record.state == PENDING:
        if not _stale(record, now, stale_after):
            return None
        return _step(channel, notice, item, record, retry=True)
    if record.state == FAILED:
        if record.attempts >= config.resolve_max_attempts:
            return _step(channel, Action.CLOSE, item, record)
        if not (_due(record.cooldown_until, now) and now >= hold_until):
            return None
        return _step(channel, notice, item, record, retry=True)
    if now < hold_until:
        return None  # wait out the cooldown: if it comes back meanwhile, it is the same episode
    return _step(channel, notice, item, record)


def _closed_item(key: str, record: AlertRecord) -> AlertItem:
    """An item for a key that is no longer open, rebuilt from its stored record."""
    client = ladder_client(key)
    if client is not None:
        return AlertItem.for_ladder(client, "normal")
    code, _, rest = key.partition(":")
    venue, _, rest = rest.partition(":")
    chain, _, subject = rest.partition(":")
    severity = Severity[record.level] if record.level in Severity.__members__ else Severity.INFO
    return AlertItem(
        key=key, kind=ItemKind.FINDING, code=code, severity=severity, level=record.level, subject=subject or key,
        message=f"{code} on {subject or key} is no longer reported", venue=venue, chain=chain or None,
        blind_spot=code in _BLIND_SPOT_VALUES,
    )
