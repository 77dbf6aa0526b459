"""The notifier: load alert state, :func:`~primeguard.alerts.plan.plan`, deliver, record.

One :meth:`Notifier.process` call per sweep (and per ladder change):

1. load the active records from the store's ``alerts`` table;
2. plan (pure);
3. one transaction: apply silent steps, mark every notice ``pending`` (the outbox: a crash after this
   re-sends, it never loses a notice). The outbox's transactions are atomic and survive a crash of
   the process but are not flushed to disk before the notice goes out (``session(durable=False)``:
   an fsync is most of a fast-path alert's store time); after a power loss the last marks may be
   gone, and the next sweep plans those notices again from the live state (at least once);
4. deliver concurrently (``max_concurrency``, high priority first), bounded by ``dispatch_timeout_s``;
   a failing channel never raises here nor holds up the others;
5. one transaction: record ``sent``/``resolved``/``failed`` with a redacted error and the next retry time.

Store errors while loading or marking propagate as :class:`~primeguard.domain.errors.StoreError`
(nothing was sent); a failure while recording results is logged (the notices stay ``pending`` and are
sent again later: at least once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from sqlmodel import Session

from primeguard.alerts.channels import DeliveryError, Sender, build_senders
from primeguard.alerts.model import Action, AlertRecord, Delivery, LadderEvent, Send, ladder_key
from primeguard.alerts.plan import plan
from primeguard.alerts.redact import Redactor
from primeguard.config.alerts import AlertsConfig
from primeguard.domain.errors import StoreError
from primeguard.domain.findings import Finding
from primeguard.store import repos
from primeguard.store.db import Store
from primeguard.store.tables import AlertRow, AlertState

log = logging.getLogger(__name__)
_ACTIVE = (AlertState.PENDING, AlertState.SENT, AlertState.FAILED, AlertState.SUPPRESSED)


@dataclass
class _Outcome:
    send: Send
    ok: bool | None
    attempts: int = 0
    error: str | None = None


class Notifier:
    """Turns findings and ladder transitions into notices, at most once per episode and cooldown.

    Args:
        config: the ``alerts`` section.
        store: where alert state lives (so a restart does not re-send).
        base_dir: directory relative secret files are resolved against (the config file's).

    Raises:
        ConfigError: a channel's secret cannot be resolved, or a webhook URL is not http(s). The
            message names the reference (env var, file), never the value.
    """

    def __init__(self, config: AlertsConfig, store: Store, *, base_dir: Path | None = None) -> None:
        self.config = config
        self.store = store
        self.redactor = Redactor()
        self.senders: dict[str, Sender] = build_senders(config.channels, base_dir=base_dir, redactor=self.redactor)
        self._lock = asyncio.Lock()

    def records(self) -> list[AlertRecord]:
        """Every active (not resolved) alert record."""
        with self.store.session(readonly=True) as s:
            return [AlertRecord.from_row(r) for r in repos.alerts_in_state(s, *_ACTIVE)]

    def plan(self, findings: Iterable[Finding], ladder_events: Iterable[LadderEvent] = (),
             now: datetime | None = None) -> list[Send]:
        """What :meth:`process` would do now (reads the store, changes nothing)."""
        return plan(findings, self.records(), now or datetime.now(UTC), self.config, ladder_events)

    async def process(
        self, findings: Sequence[Finding], ladder_events: Sequence[LadderEvent] = (), now: datetime | None = None,
    ) -> list[Delivery]:
        """Plan, deliver and record for one sweep.

        Args:
            findings: every finding open now (a finding missing here counts as closed).
            ladder_events: ladder transitions since the previous call.
            now: aware time (default: the current UTC time); tests pass it explicitly.

        Returns:
            One :class:`Delivery` per notice attempted (``ok`` False: failed, None: skipped because
            another writer changed the record first). Silent bookkeeping is not listed.

        Raises:
            StoreError: alert state could not be loaded or marked (nothing was sent).
        """
        if not self.config.enabled:
            return []
        now = now or datetime.now(UTC)
        async with self._lock:
            return await self._deliver(findings, self.records(), ladder_events, now)

    async def process_ladder(self, ladder_events: Sequence[LadderEvent], now: datetime | None = None,
                             ) -> list[Delivery]:
        """Plan, deliver and record the ladder items of ``ladder_events``' clients only (the oracle
        fast path, which re-values some clients between sweeps): no finding and no other client's
        item is opened, escalated or closed here; the same records, dedup and cooldown rules as
        :meth:`process` apply, so the next sweep finds these notices already sent. Raises as
        :meth:`process` does."""
        if not self.config.enabled or not ladder_events:
            return []
        now = now or datetime.now(UTC)
        keys = {ladder_key(e.client_id) for e in ladder_events}
        async with self._lock:
            return await self._deliver((), self._records_of(keys), ladder_events, now)

    async def _deliver(self, findings: Sequence[Finding], records: Sequence[AlertRecord],
                       ladder_events: Sequence[LadderEvent], now: datetime) -> list[Delivery]:
        """Plan against ``records``, mark, send and record (under the caller's lock); what went out
        or was skipped, one :class:`Delivery` each."""
        steps = [s for s in plan(findings, records, now, self.config, ladder_events) if s.channel in self.senders]
        if not steps:
            return []
        ready, skipped = self._mark(steps, now)
        outcomes = await self._dispatch(ready, now) if ready else []
        self._record(outcomes, now)
        return [
            Delivery(o.send.channel, o.send.key, o.send.action, o.ok, o.attempts, o.error, o.send.priority)
            for o in [*outcomes, *skipped]
        ]

    def _records_of(self, keys: set[str]) -> list[AlertRecord]:
        """The active records of ``keys`` on every channel (one SELECT for all of them, not the
        whole table), in key then channel order."""
        pairs = [(k, c.name) for k in sorted(keys) for c in self.config.channels]
        with self.store.session(readonly=True) as s:
            found = repos.alerts_for(s, pairs)
            rows = [found.get(p) for p in pairs]
            return [AlertRecord.from_row(r) for r in rows if r is not None and r.state in _ACTIVE]

    async def aclose(self) -> None:
        """Close the channels' kept-open connections (webhook sessions); never raises."""
        for sender in self.senders.values():
            close = getattr(sender, "close", None)
            if close is not None:
                await close()

    # --- store steps ----------------------------------------------------------------------------

    def _mark(self, steps: list[Send], now: datetime) -> tuple[list[Send], list[_Outcome]]:
        """Apply silent steps and move notices to ``pending``, in one transaction. Notices without
        a record (most of a first sweep's) are created by one bulk insert; a pair that turns out to
        exist already (another writer, or a resolved record reopened) takes the per-row path."""
        ready: list[Send] = []
        skipped: list[_Outcome] = []
        # Not flushed to disk before sending (durable=False): a process crash keeps the mark; after
        # a power loss the next sweep plans the notice again from the live state (see the module).
        with self.store.session(durable=False) as s:
            fresh = [step for step in steps if step.delivers and step.state is None]
            created = repos.insert_alerts(s, [(st.key, st.channel, st.level) for st in fresh], now=now) \
                if fresh else set()
            for step in steps:
                try:
                    if step.delivers:
                        if step.state is None and (step.key, step.channel) in created:
                            created.discard((step.key, step.channel))  # a repeated pair is created once
                            ready.append(step)
                            continue
                        self._to_pending(s, step, now)
                        ready.append(step)
                    else:
                        self._silent(s, step, now)
                except StoreError as exc:  # StaleState / IllegalTransition / NotFound: someone else moved it
                    log.info("alert %s on %s skipped: %s", step.key, step.channel, exc)
                    if step.delivers:
                        skipped.append(_Outcome(step, None, 0, "changed concurrently"))
        return ready, skipped

    @staticmethod
    def _to_pending(s: Session, step: Send, now: datetime) -> None:
        row, created = repos.ensure_alert(s, finding_key=step.key, channel=step.channel, level=step.level, now=now)
        if created:
            return
        assert row.id is not None
        expected = step.state or AlertState.RESOLVED.value
        if row.state == AlertState.PENDING and expected == AlertState.PENDING:
            return  # a stale pending notice being re-sent
        repos.transition_alert(s, row.id, AlertState.PENDING, now=now, expected=expected, level=step.level)

    @staticmethod
    def _silent(s: Session, step: Send, now: datetime) -> None:
        row = repos.get_alert(s, finding_key=step.key, channel=step.channel)
        if row is None or row.state != step.state:
            raise StoreError(f"alert {step.key} on {step.channel} changed concurrently")
        assert row.id is not None
        if step.action is Action.CLOSE:
            repos.transition_alert(s, row.id, AlertState.RESOLVED, now=now, expected=row.state)
            return
        # RECORD: remember the new (lower) level without sending.
        state = row.state
        if state == AlertState.SUPPRESSED:  # suppressed → suppressed is not a transition: go through pending
            repos.transition_alert(s, row.id, AlertState.PENDING, now=now, expected=state)
            state = AlertState.PENDING.value
        repos.transition_alert(s, row.id, AlertState.SUPPRESSED, now=now, expected=state, level=step.level)

    def _record(self, outcomes: list[_Outcome], now: datetime) -> None:
        if not outcomes:
            return
        try:
            with self.store.session(durable=False) as s:
                rows = repos.alerts_for(s, [(o.send.key, o.send.channel) for o in outcomes])
                for o in outcomes:
                    try:
                        self._record_one(s, o, now, rows.get((o.send.key, o.send.channel)))
                    except StoreError as exc:
                        log.warning("alert %s on %s: result not recorded: %s", o.send.key, o.send.channel, exc)
        except StoreError as exc:
            log.error("alert results not recorded (they will be sent again): %s", exc)

    def _record_one(self, s: Session, o: _Outcome, now: datetime, row: AlertRow | None) -> None:
        """Record one delivery's result on its alert ``row`` (read for the whole batch in this
        transaction; each row is recorded once)."""
        if row is None or row.state != AlertState.PENDING:
            raise StoreError(f"alert {o.send.key} on {o.send.channel} is no longer pending")
        assert row.id is not None
        channel = self.config.channel(o.send.channel)
        assert channel is not None
        if o.ok:
            if o.send.action is Action.RESOLVED:
                repos.transition_loaded_alert(s, row, AlertState.RESOLVED, now=now, expected=AlertState.PENDING)
            else:
                repos.transition_loaded_alert(
                    s, row, AlertState.SENT, now=now, expected=AlertState.PENDING, level=o.send.level,
                    cooldown_until=now + timedelta(seconds=channel.cooldown_s),
                )
            return
        failures = row.attempts + 1
        backoff = min(channel.retry_s * 2 ** (failures - 1), max(channel.retry_s, channel.cooldown_s))
        repos.transition_loaded_alert(
            s, row, AlertState.FAILED, now=now, expected=AlertState.PENDING, error=o.error,
            cooldown_until=now + timedelta(seconds=backoff),
        )

    # --- delivery -------------------------------------------------------------------------------

    async def _dispatch(self, steps: list[Send], now: datetime) -> list[_Outcome]:
        """Deliver every step; never raises for a channel's failure; bounded by ``dispatch_timeout_s``."""
        outcomes = {id(step): _Outcome(step, False, 0, "not attempted") for step in steps}
        gate = asyncio.Semaphore(self.config.max_concurrency)
        async with aiohttp.ClientSession(trust_env=False) as http:

            async def run(step: Send) -> None:
                out = outcomes[id(step)]
                async with gate:
                    try:
                        out.attempts = await self.senders[step.channel].deliver(step, now, http)
                        out.ok, out.error = True, None
                    except DeliveryError as exc:
                        out.attempts, out.error = exc.attempts, self.redactor.scrub(exc)
                    except Exception as exc:  # a sender bug must not stop the other channels
                        out.attempts, out.error = 1, self.redactor.scrub(f"{type(exc).__name__}: {exc}")
                if not out.ok:
                    log.warning("alert delivery failed channel=%s key=%s event=%s attempts=%d error=%s",
                                step.channel, step.key, step.action, out.attempts, out.error)

            # steps are in priority order and the semaphore is FIFO: high priority goes first
            tasks = [asyncio.create_task(run(step)) for step in steps]
            _, late = await asyncio.wait(tasks, timeout=self.config.dispatch_timeout_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
                for step, task in zip(steps, tasks, strict=True):
                    if task in late:
                        out = outcomes[id(step)]
                        out.ok = False
                        out.error = f"cancelled: dispatch took longer than {self.config.dispatch_timeout_s}s"
                        log.warning("alert delivery cancelled channel=%s key=%s", step.channel, step.key)
        return list(outcomes.values())
