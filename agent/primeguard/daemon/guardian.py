"""The guardian daemon: scheduled sweeps, instant reaction to oracle updates, alerts, playbooks,
and a health/metrics endpoint. ``primeguard run --config FILE``.

A sweep: collect every venue → evaluate (risk + policy) → store (snapshots, metrics, findings,
audit) → alerts → playbook proposals → run ready actions. Every step survives venue faults: a
venue that fails becomes blind-spot findings, never a stopped daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import ROUND_UP, Decimal
from pathlib import Path
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from primeguard.alerts.model import LadderEvent
from primeguard.app.policy_source import ActivePolicy
from primeguard.app.runtime import Runtime
from primeguard.config.schema import PrimeguardConfig
from primeguard.daemon.leases import ShardLeases
from primeguard.daemon.reprice import OracleLog, Refusal, carry_quotes, holders, newer, reprice, restricted
from primeguard.daemon.watcher import OracleUpdate, OracleWatcher
from primeguard.domain.findings import JOB_VENUES, Finding
from primeguard.domain.model import Credential
from primeguard.domain.observation import Observation
from primeguard.pipeline.collect import CollectStats, collect, takes_session
from primeguard.pipeline.evaluate import Evaluation, evaluate
from primeguard.pipeline.haircuts import PriceHistory, load_price_history
from primeguard.pipeline.outcome import SweepOutcome, dedupe, prepare_sweep, sweep_findings, write_sweep
from primeguard.playbooks.engine import ActionSpec
from primeguard.risk.ladder import LadderState, LadderStatus, cure_amounts, cure_target
from primeguard.risk.valuation import ClientValuation
from primeguard.store import repos
from primeguard.store.anchors import head_record
from primeguard.store.codec import as_utc
from primeguard.store.db import Store
from primeguard.venues.session import VenueSession

log = logging.getLogger(__name__)
SWITCH_INTERVAL_S = 0.001

# The built-in plan: used only when the policy in force has no ``ladder_plan`` file (its modes then
# come from the deprecated config ``playbooks.modes``, default dry_run) or when there is no policy
# at all (then everything is dry_run: nothing automatic without a policy).
LADDER_ACTIONS: dict[LadderState, tuple[str, ...]] = {
    LadderState.MARGIN_CALL: ("margin_call",),
    LadderState.HALT: ("halt_vault", "halt_cex", "halt_dydx"),
    LadderState.LIQUIDATE: ("halt_vault", "halt_cex", "liquidate_cex", "halt_dydx", "liquidate_dydx"),
}


@dataclass(frozen=True, slots=True)
class Planned:
    """One lever to pull for a client at a rung: its kind, mode and the plan step that asks for it
    (None: the built-in plan)."""

    lever: str
    mode: str
    step: str | None = None


def planned(policy: ActivePolicy, client_id: str, rung: str, *, config_modes: Mapping[str, str]) -> list[Planned]:
    """What the plan asks for ``client_id`` at ``rung`` (a ladder label or ``"capability"``). Fail
    closed: without a policy every built-in action is a dry run. A policy without a ``ladder_plan``
    uses the built-in plan with the config's deprecated ``playbooks.modes``."""
    if policy is not None and policy.plan is not None:
        return [Planned(s.lever, s.mode, s.id) for s in policy.plan_for(client_id, rung)]
    if rung == "capability":
        kinds: tuple[str, ...] = ("revoke_approval", "revoke_grant")
        default = "needs_approval"
    else:
        kinds, default = LADDER_ACTIONS.get(LadderState.parse(rung), ()), "dry_run"
    if policy is None:
        return [Planned(k, "dry_run" if rung != "capability" else "needs_approval") for k in kinds]
    return [Planned(k, config_modes.get(k, default)) for k in kinds]


class Guardian:
    """The daemon: runs sweeps (scheduled and on oracle updates), capability scans and audit anchors, and serves
    health and metrics. One sweep at a time (a lock)."""

    def __init__(self, cfg: PrimeguardConfig, *, config_dir: Path, store: Store | None = None,
                 replica_id: str | None = None, shards: int = 1, lease_ttl_s: float = 15.0,
                 action_modes: dict[str, str] | None = None, runtime: Runtime | None = None) -> None:
        """A guardian over ``runtime`` (or one assembled from ``cfg``, ``config_dir`` and ``store``:
        the config's store is opened and migrated when ``store`` is None). Restores ladder rungs
        and peak equity from the store's metric history; starts nothing until :meth:`run`."""
        rt = runtime or Runtime.assemble(cfg, config_dir, store=store)
        self.runtime = rt
        self.cfg = cfg
        self.config_dir = config_dir
        self.store = rt.store
        self.replica_id = replica_id or f"replica-{uuid.uuid4().hex[:8]}"
        self.leases = ShardLeases(self.store, self.replica_id, shards=shards, ttl_s=lease_ttl_s) if shards > 1 else None
        self.notifier = rt.notifier
        self.playbook = rt.playbook
        self.anchors = rt.anchors
        self._anchored: tuple[int, str] | None = None
        # Modes come from the policy's ladder_plan. ``action_modes`` overrides them by lever kind (a
        # drill on a throwaway store); the config's ``playbooks.modes`` is only read for a policy
        # without a ladder_plan (deprecated).
        self.mode_overrides = dict(action_modes or {})
        self.config_modes = dict(cfg.playbooks.modes)
        if self.config_modes:
            log.warning("config playbooks.modes is deprecated: modes come from the policy's ladder_plan "
                        "(read only when the policy has none)")
        self.ladder: dict[str, LadderStatus] = {}
        self.peaks: dict[str, Decimal] = {}
        self.started = datetime.now(UTC)
        self.last_sweep: datetime | None = None
        self.scan_credentials: tuple[Credential, ...] = ()
        self.watcher: OracleWatcher | None = None  # while run() runs with watch=True (its ``connected``)
        self._lock = asyncio.Lock()
        # The oracle fast path: the last complete observation (a sweep's, or one repriced from it), the
        # price history it was valued with, and per client the time of the observation its rung
        # came from (a result from an older observation never replaces a newer one).
        self.last_observation: Observation | None = None
        self._history: PriceHistory | None = None
        self._policy_used: ActivePolicy = None
        self._read_at: datetime | None = None  # when the venues behind last_observation were read
        self.max_observation_age_s = 60.0  # older: an oracle log runs a full sweep (run(): 6 schedules)
        self._ladder_at: dict[str, datetime] = {}
        # Each client's last exact valuation (sweep or fast path): the oracle fast path's ladder
        # screen values a client on floats from it while its book is unchanged.
        self._bases: dict[str, ClientValuation] = {}
        self.last_oracle: OracleOutcome | None = None
        self._sweep_queued = False
        self._background: set[asyncio.Task[None]] = set()
        # Ids of the actions the current ladder episodes asked for, known to be in the store: a
        # sweep proposes only the others (was: every sweep re-proposed them all, a write each).
        self._proposed: set[str] = set()
        self.registry = CollectorRegistry()
        self.m_sweeps = Counter("primeguard_sweeps_total", "Sweeps run", ["reason"], registry=self.registry)
        self.m_sweep_s = Histogram("primeguard_sweep_seconds", "Sweep duration", registry=self.registry)
        self.m_stage_s = Histogram("primeguard_sweep_stage_seconds", "Sweep duration per stage (collect:<venue>, "
                                   "collect, policy, evaluate, alerts, persist, playbooks)", ["stage"],
                                   registry=self.registry)
        self.m_oracle = Counter("primeguard_oracle_updates_total", "Oracle updates by path (fast, or a full "
                                "sweep) and the reason a fast path was refused", ["path", "reason"],
                                registry=self.registry)
        self.m_oracle_s = Histogram("primeguard_oracle_fastpath_seconds", "Oracle fast path: log in to alerts "
                                    "out and state recorded", registry=self.registry)
        self.m_oracle_stage_s = Histogram("primeguard_oracle_stage_seconds", "Oracle fast path duration per stage "
                                          "(reprice, evaluate, alerts, persist)", ["stage"], registry=self.registry)
        # The venues' reader (one call per sweep, ``collect(cfg, now)``); benchmarks put a simulated world here.
        # It reads over ``self.venues``, the pools kept open while run() runs (None: pools per sweep).
        self.collect = self._collect_venues
        self.venues: VenueSession | None = None
        self.m_blind = Gauge("primeguard_blind_accounts", "Accounts that could not be read", registry=self.registry)
        self.m_ltv = Gauge("primeguard_client_ltv", "Client LTV", ["client"], registry=self.registry)
        self.m_ladder = Gauge("primeguard_client_ladder_level", "Ladder level 0-4", ["client"], registry=self.registry)
        self._restore()

    # --- state ------------------------------------------------------------------------------

    def _restore(self) -> None:
        """Ladder rungs with their clocks (entered_at, margin-call deadline, cooldowns) come back
        exactly from the stored ladder states, so a restart never postpones a deadline nor restarts
        a cooldown; peak equity from the metric history. A client with no stored ladder state (a
        store older than the ladder table) falls back to its last metric's rung, entered then."""
        with self.store.session(readonly=True) as s:
            stored = {r.client_id: r for r in repos.ladder_states(s)}
            for c in self.cfg.clients:
                st = stored.get(c.id)
                row = repos.latest_metric(s, c.id)
                if st is not None:
                    self.ladder[c.id] = LadderStatus(
                        LadderState.parse(st.state), as_utc(st.entered_at),
                        tuple(None if t is None else as_utc(datetime.fromisoformat(t)) for t in st.below),
                        None if st.deadline is None else as_utc(st.deadline))
                elif row is not None:  # a store from before the ladder_states table
                    self.ladder[c.id] = _restored_status(row.ladder_state, row.at, (row.extra or {}).get("ladder"))
                if row is None:
                    continue
                peak = (row.extra or {}).get("peak_equity")
                if peak is not None:
                    self.peaks[c.id] = Decimal(peak)

    @classmethod
    def from_runtime(cls, rt: Runtime, **options: Any) -> Guardian:
        """A guardian over an assembled runtime (``options`` as for the constructor)."""
        return cls(rt.cfg, config_dir=rt.config_dir, runtime=rt, **options)

    def policy(self) -> ActivePolicy:
        """The policy in force now (looked up on each sweep, parsed once per version); ``None`` fails closed."""
        return self.runtime.policy()

    def my_clients(self) -> set[str] | None:
        """The clients of the shards this replica holds (renewing its leases), or ``None`` (all) without sharding."""
        if self.leases is None:
            return None
        self.leases.refresh()
        return {c.id for c in self.cfg.clients if self.leases.owns(c.id)}

    # --- one sweep --------------------------------------------------------------------------

    async def _collect_venues(self, cfg: PrimeguardConfig,
                              now: datetime | None = None) -> tuple[Observation, CollectStats]:
        """Read every venue (:func:`primeguard.pipeline.collect.collect`) over the kept-open pools of
        :attr:`venues` when run() has opened them (a session of another loop is not touched)."""
        return await collect(cfg, now, session=self.venues)

    async def sweep(self, reason: str = "schedule", *, now: datetime | None = None) -> SweepOutcome:
        """One sweep: collect, evaluate, alert, record, propose and run ready playbook actions. Serialised with
        other sweeps; a venue fault becomes a blind-spot finding, never an exception. Store errors
        propagate; the sweep's records are written in one transaction, whole or not at all."""
        async with self._lock:
            self._sweep_queued = False  # a sweep asked for before this one started is this one
            t0 = time.perf_counter()
            stages: dict[str, float] = {}
            clients = self.my_clients()
            obs, stats = await self.collect(self.cfg, now)
            t = _lap(stages, "collect", t0)
            policy = self.policy()
            t = _lap(stages, "policy", t)
            history = load_price_history(self.store, policy, obs.taken_at)
            # In a worker thread, on copies: the event loop (oracle fast path, webhooks) keeps running.
            ev = await asyncio.to_thread(
                evaluate, self.cfg, obs, policy=policy, ladder=dict(self.ladder), peaks=dict(self.peaks),
                loan_start=self.started, clients=clients, extra_credentials=self.scan_credentials,
                with_stress=reason != "oracle", price_history=history)
            self._supersede(ev, obs.taken_at)
            sweep_id = f"{obs.taken_at.strftime('%Y%m%dT%H%M%S%f')}-{self.replica_id}"
            findings = sweep_findings(obs, ev, clients) + self._job_findings(clients)
            events = [LadderEvent(m.client_id, m.previous.state.label, m.current.state.label, _ltv_text(m.ltv),
                                  obs.taken_at) for m in ev.moves]
            t = _lap(stages, "evaluate", t)
            # Alerts first: people hear about a crash before the history is written.
            deliveries = await self.notifier.process(dedupe(findings), events, now=obs.taken_at)
            t = _lap(stages, "alerts", t)
            # The rows are checked and serialised in a worker thread (most of recording a sweep):
            # the event loop, and so an oracle fast path, goes on meanwhile.
            prepared = await asyncio.to_thread(prepare_sweep, sweep_id=sweep_id, obs=obs, ev=ev, clients=clients,
                                               peaks=dict(self.peaks))
            # From here to the ladder update nothing awaits: an oracle fast path that ran during the
            # alerts or the preparation is taken into account (its clients' rows prepared again with
            # its rung), and none can run in between.
            moved = self._supersede(ev, obs.taken_at)
            if moved:
                prepared.redo(obs=obs, ev=ev, clients=clients, peaks=self.peaks, only=moved)
            write_sweep(self.store, prepared, obs=obs, ev=ev, findings=findings, clients=clients)
            self.peaks.update(prepared.peaks)
            t = _lap(stages, "persist", t)
            self._commit_ladder(ev.ladder, obs.taken_at)
            self._bases.update(ev.valuations)
            last = self.last_observation
            # Fresh balances from this sweep; an oracle round a fast path took meanwhile stays.
            self.last_observation = obs if last is None or obs.taken_at >= last.taken_at else carry_quotes(obs, last)
            self._history, self._policy_used, self._read_at = history, policy, obs.taken_at
            self._propose(ev, policy)
            await self.playbook.run_ready()
            _lap(stages, "playbooks", t)
            self.last_sweep = obs.taken_at
            seconds = time.perf_counter() - t0
            self.m_sweeps.labels(reason).inc()
            self.m_sweep_s.observe(seconds)
            for venue, s in stats.venue_seconds.items():
                stages[f"collect:{venue}"] = s
            for stage, s in stages.items():
                self.m_stage_s.labels(stage).observe(s)
            log.info("sweep %s (%s): %.3f s; %s", sweep_id, reason, seconds,
                     ", ".join(f"{k} {v:.3f} s" for k, v in stages.items()))
            self.m_blind.set(stats.blind_accounts)
            for cid, v in ev.valuations.items():
                if v.ltv is not None and v.ltv.is_finite():
                    self.m_ltv.labels(cid).set(float(v.ltv))  # metrics export only; decisions stay Decimal
                self.m_ladder.labels(cid).set(int(ev.ladder[cid].state))
            return SweepOutcome(sweep_id, seconds, ev, obs, len(deliveries), stages)

    def _supersede(self, ev: Evaluation, taken_at: datetime) -> set[str]:
        """Where an oracle fast path placed a client on the ladder from an observation newer than
        ``taken_at``, that rung stands in ``ev`` (and this evaluation's move of the client is dropped):
        the newer observation wins, never an older one. Returns the clients whose rung in ``ev``
        changed here."""
        stale = {cid for cid in ev.ladder if newer(self._ladder_at, cid, taken_at)}
        changed = {cid for cid in stale if ev.ladder[cid] != self.ladder[cid]}
        for cid in stale:
            ev.ladder[cid] = self.ladder[cid]
        if stale:
            ev.moves[:] = [m for m in ev.moves if m.client_id not in stale]
        return changed

    def _commit_ladder(self, ladder: Mapping[str, LadderStatus], taken_at: datetime) -> set[str]:
        """Take the rungs computed from an observation taken at ``taken_at``, except where a newer
        observation already placed the client; returns the clients taken."""
        taken = set()
        for cid, status in ladder.items():
            if not newer(self._ladder_at, cid, taken_at):
                self.ladder[cid] = status
                self._ladder_at[cid] = taken_at
                taken.add(cid)
        return taken

    def _plan(self, policy: ActivePolicy, client_id: str, rung: str) -> list[Planned]:
        return [Planned(p.lever, self.mode_overrides.get(p.lever, p.mode), p.step)
                for p in planned(policy, client_id, rung, config_modes=self.config_modes)]

    def _propose(self, ev: Evaluation, policy: ActivePolicy) -> None:
        """Propose what the plan asks at each client's rung, once per ladder episode (the action id
        is the lever, client and episode; the LTV and notice figures of the moment ride along)."""
        specs: list[ActionSpec] = []
        wanted: set[str] = set()
        for cid, status in ev.ladder.items():
            steps = self._plan(policy, cid, status.state.label) if status.state > LadderState.NORMAL else []
            for p in steps:
                if p.lever not in self.playbook.levers:
                    continue
                episode = f"{cid}:{status.state.label}:{status.entered_at.isoformat()}"
                spec = ActionSpec(p.lever, cid, episode, p.mode)
                if spec.id in self._proposed:
                    wanted.add(spec.id)
                    continue
                details = notice_details(ev, cid, status)
                details["plan_step"] = p.step or "builtin"
                specs.append(replace(spec, details=details))
        if specs:
            self.playbook.propose(specs)
        self._proposed = wanted | {sp.id for sp in specs}  # in the store now (inserted once, or there before)

    # --- reactions --------------------------------------------------------------------------

    async def on_oracle_update(self, update: OracleUpdate) -> OracleOutcome:
        """React to an AnswerUpdated log without waiting for a sweep (the oracle fast path).

        The last complete observation is repriced with the log's answer (:func:`reprice`: exact,
        through the sweep's round checks) and only the clients holding, owing or trading the asset
        are valued again (stress skipped), outside the sweep lock: a sweep in progress is not waited
        for. Their ladder moves are alerted at once (:meth:`Notifier.process_ladder`: the same
        records and dedup rules as a sweep's) and their rungs recorded in one transaction; a rung
        from an older observation (a sweep that read the venues before this log) never replaces
        it. Findings, stress, metrics history and playbook proposals are left to the sweeps, which
        still follow on schedule.

        Fail closed: when the log cannot be used (see :mod:`primeguard.daemon.reprice`) a full
        sweep is queued instead (at most one waiting) and the outcome says why; so does a fast path
        that fails on its way (a store error), after logging it."""
        try:
            return await self._fast_path(update)
        except Exception:
            log.exception("oracle fast path for %s on %s round %s failed; running a full sweep instead",
                          update.asset, update.chain, update.round_id)
            return self._fall_back(update, "error", {})

    def _fall_back(self, update: OracleUpdate, reason: str, stages: dict[str, float]) -> OracleOutcome:
        self.m_oracle.labels("sweep", reason).inc()
        self._queue_sweep("oracle")
        self.last_oracle = OracleOutcome(update, reason, frozenset(), (), 0, stages)
        return self.last_oracle

    async def _fast_path(self, update: OracleUpdate) -> OracleOutcome:
        t0 = time.perf_counter()
        stages: dict[str, float] = {}
        now = datetime.now(UTC)
        got = reprice(self.cfg, self.last_observation,
                      OracleLog(update.chain, update.feed, update.asset, update.answer, update.round_id,
                                update.updated_at),
                      now, wrong_chains=self.watcher.wrong_chain if self.watcher is not None else (),
                      read_at=self._read_at, max_age_s=self.max_observation_age_s)
        t = _lap(stages, "reprice", t0)
        if isinstance(got, Refusal):
            log.warning("oracle update %s on %s round %s not used on the fast path (%s: %s); running a full "
                        "sweep instead", update.asset, update.chain, update.round_id, got.reason, got.message)
            return self._fall_back(update, got.reason, stages)
        obs = got.observation
        mine = self.my_owned()
        clients = {c for c in holders(self.cfg, obs, update.asset) if mine is None or c in mine}
        before = {cid: self.ladder.get(cid) for cid in clients}
        # The policy and price history the last sweep valued with (a new policy version takes
        # effect at the next sweep, as it does for every sweep).
        ev = evaluate(self.cfg, restricted(obs, clients), policy=self._policy_used, ladder=self.ladder,
                      peaks=dict(self.peaks), clients=clients, with_stress=False, price_history=self._history,
                      ladder_bases=self._bases)
        taken = self._commit_ladder(ev.ladder, obs.taken_at)  # no await since evaluate: consistent
        self._bases.update(ev.valuations)
        if self.last_observation is None or obs.taken_at >= self.last_observation.taken_at:
            self.last_observation = obs
        events = [LadderEvent(m.client_id, m.previous.state.label, m.current.state.label, _ltv_text(m.ltv),
                              obs.taken_at) for m in ev.moves if m.client_id in taken]
        for cid in taken:
            v = ev.valuations.get(cid)  # None: settled by the ladder screen (rung unchanged)
            if v is not None and v.ltv is not None and v.ltv.is_finite():
                self.m_ltv.labels(cid).set(float(v.ltv))  # metrics export only
            self.m_ladder.labels(cid).set(int(ev.ladder[cid].state))
        t = _lap(stages, "evaluate", t)
        deliveries = await self.notifier.process_ladder(events, now=obs.taken_at)
        t = _lap(stages, "alerts", t)
        with self.store.session() as s:  # changed rungs still this path's (a newer result may have come)
            for cid in sorted(taken):
                if self._ladder_at.get(cid) == obs.taken_at and self.ladder[cid] != before[cid]:
                    st = self.ladder[cid]
                    repos.save_ladder_state(s, cid, state=st.state.label, entered_at=st.entered_at,
                                            deadline=st.deadline, below=st.below, now=obs.taken_at)
        _lap(stages, "persist", t)
        seconds = time.perf_counter() - t0
        self.m_oracle.labels("fast", "ok").inc()
        self.m_oracle_s.observe(seconds)
        for stage, sec in stages.items():
            self.m_oracle_stage_s.labels(stage).observe(sec)
        log.info("oracle update %s on %s round %s (%s -> %s): fast path %.3f s, %d clients re-valued (%d settled "
                 "on the float screen), %d moved; %s", update.asset, update.chain, update.round_id, got.previous.price,
                 got.quote.price, seconds, len(clients), len(ev.ladder_screened), len(events),
                 ", ".join(f"{k} {v:.3f} s" for k, v in stages.items()))
        self.last_oracle = OracleOutcome(update, None, frozenset(clients), tuple(events), len(deliveries), stages,
                                         frozenset(ev.ladder_screened))
        return self.last_oracle

    def my_owned(self) -> set[str] | None:
        """The clients of the shards this replica holds now, without renewing leases (the fast path
        does not write leases); ``None`` (all) without sharding."""
        if self.leases is None:
            return None
        return {c.id for c in self.cfg.clients if self.leases.owns(c.id)}

    def _queue_sweep(self, reason: str) -> None:
        """Start a full sweep in the background unless one asked for is still waiting to start."""
        if self._sweep_queued:
            return
        self._sweep_queued = True
        task = asyncio.create_task(self._safe(self.sweep, reason))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def capability_scan(self) -> None:
        """Scan approvals and Safes (cursor kept between runs), keep the credentials for the next sweeps, and
        propose revoking unknown unlimited approvals. Proposals are idempotent (ids from the approval)."""
        from primeguard.pipeline.reports import known_delegates_of
        from primeguard.venues.evm.scan import MemoryCursorStore, capabilities_from_scan, scan_all

        store = getattr(self, "_cursor", None) or MemoryCursorStore()
        self._cursor = store
        creds, _findings = capabilities_from_scan(self.cfg, await scan_all(self.cfg, store),
                                                  known_delegates_of(self.policy()))
        self.scan_credentials = tuple(creds)
        sanctioned = await self.screen_spenders(creds)
        self._propose_revocations(creds, sanctioned)
        self._propose_grant_revocations(creds)

    async def screen_spenders(self, creds: list[Credential], *, now: datetime | None = None) -> set[str]:
        """Screen every approval spender, Permit2 spender, NFT operator and EIP-7702 delegate the scan
        found, through the same screening as destinations (cached per its TTL, audited). A hit is a
        critical ``sanctioned_address`` finding; a source that cannot answer a ``screening_unavailable``
        blind spot (both kept open across sweeps until a later screening answers otherwise). Returns the
        sanctioned addresses (lower-case). Without a ``screening`` section nothing is screened."""
        from primeguard.screening.core import VerdictStatus
        from primeguard.screening.service import Screener, screening_chain

        if self.cfg.screening is None:
            return set()
        screener = getattr(self, "_screener", None) or Screener(self.cfg, policy=self.policy)
        self._screener = screener  # one cache across scans
        wallets = {w.id: w for w in self.cfg.wallets}
        todo: dict[tuple[str, str], str | None] = {}
        for c in creds:
            addr = spender_of(c)
            if addr and c.chain:
                w = wallets.get(c.account_id)
                todo.setdefault((c.chain, addr), w.client if w else None)
        if not todo:
            return set()
        when = now or datetime.now(UTC)

        def run() -> set[str]:
            hits = set()
            with self.store.session() as s:
                for (chain, addr), client in sorted(todo.items(), key=lambda kv: kv[0]):
                    sc = screener.screen(s, screening_chain(self.cfg, chain), addr, now=when,
                                         actor=f"daemon:{self.replica_id}", client_id=client, what="approval spender")
                    if sc.verdict(screener.advisory) is VerdictStatus.SANCTIONED:
                        hits.add(addr.lower())
            return hits

        async with self._lock:  # never between a sweep's read of job findings and its write
            return await asyncio.to_thread(run)

    def _propose_revocations(self, creds: list[Credential], sanctioned: frozenset[str] | set[str] = frozenset()
                             ) -> None:
        """An unlimited approval to a spender we do not know, or any approval to a sanctioned
        spender, becomes a revoke action. It needs a person's approval unless the config says
        otherwise (revoking can break a running strategy)."""
        if "revoke_approval" not in self.playbook.levers:
            return
        wallets = {w.id: w for w in self.cfg.wallets}
        policy = self.policy()
        specs = []
        for c in creds:
            d = c.details
            if c.kind != "erc20_approval":
                continue
            if not (str(d.get("spender", "")).lower() in sanctioned
                    or (d.get("unlimited") and not d.get("known_spender"))):
                continue
            w = wallets.get(c.account_id)
            if w is None:
                continue
            for p in self._plan(policy, w.client, "capability"):
                if p.lever != "revoke_approval":
                    continue
                specs.append(ActionSpec("revoke_approval", w.client, episode=c.id, mode=p.mode,
                                        params={"chain": c.chain, "token_address": d["token_address"],
                                                "owner": w.address, "spender": d["spender"], "symbol": d["token"]},
                                        details={"plan_step": p.step or "builtin"}))
        if specs:
            self.playbook.propose(specs)

    def _propose_grant_revocations(self, creds: list[Credential]) -> None:
        """The other grants the capability scan finds become ``revoke_grant`` actions in the mode the
        policy's plan gives at ``capability`` (the shipped plan: ``needs_approval``), one per grant, with
        the credential id as episode (idempotent: the same grant is proposed once):

        - an EIP-7702 delegation to a delegate the policy does not know → clear it (``delegation``);
        - a live unlimited Permit2 allowance to an unknown spender → lockdown (``permit2``);
        - an NFT operator (``setApprovalForAll``) that is not a known spender → revoke (``operator``).

        The lever acts only where the custody key is the wallet's own; elsewhere it fails and the
        critical finding stands."""
        if "revoke_grant" not in self.playbook.levers:
            return
        wallets = {w.id: w for w in self.cfg.wallets}
        policy = self.policy()
        specs = []
        for c in creds:
            d, w = c.details, wallets.get(c.account_id)
            if w is None:
                continue
            base = {"chain": c.chain, "owner": w.address}
            if c.kind == "eip7702_delegation" and not d.get("known_delegate"):
                params = {**base, "grant": "delegation", "delegate": d["delegate"]}
            elif (c.kind == "permit2_allowance" and d.get("unlimited") and not d.get("expired")
                  and not d.get("known_spender")):
                params = {**base, "grant": "permit2", "token_address": d["token_address"], "spender": d["spender"],
                          "symbol": d["token"]}
            elif c.kind == "nft_operator" and not d.get("known_spender"):
                params = {**base, "grant": "operator", "collection": d["collection"], "operator": d["operator"]}
            else:
                continue
            for p in self._plan(policy, w.client, "capability"):
                if p.lever == "revoke_grant":
                    specs.append(ActionSpec("revoke_grant", w.client, episode=c.id, mode=p.mode, params=params,
                                            details={"plan_step": p.step or "builtin"}))
        if specs:
            self.playbook.propose(specs)

    def _job_findings(self, clients: set[str] | None) -> list[Finding]:
        """The open findings other jobs own (destination drift, screening: ``JOB_VENUES``), carried
        by each sweep to the alerts; only those jobs close them."""
        with self.store.session(readonly=True) as s:
            found = repos.open_findings_of(s, JOB_VENUES)
        return [f for f in found if clients is None or not f.client_id or f.client_id in clients]

    async def reconcile_destinations(self, *, now: datetime | None = None) -> list[Finding]:
        """Destination drift (the scheduled ``destinations`` job, see :mod:`primeguard.custody.drift`):
        read every vault's on-chain allowlist and every CEX account's address book, compare them with
        the approved destinations, open what differs and close what a source read again no longer
        shows. A source that could not be read is a blind-spot finding and keeps its earlier findings
        open. The next sweep carries the findings to the alerts. Returns this run's findings."""
        from primeguard.custody import drift
        from primeguard.store import destinations as dest_repo
        from primeguard.venues.registry import configured

        now = now or datetime.now(UTC)
        policy = self.policy()
        with self.store.session(readonly=True) as s:
            rows = dest_repo.all_rows(s)
        log = getattr(self, "_proposal_log", None) or drift.ProposalLog()
        self._proposal_log = log  # logs are read from where the last run stopped
        listings = await asyncio.gather(*(
            asyncio.to_thread(drift.read_vault, self.cfg, v, drift.vault_candidates(self.cfg, policy, rows, v), log)
            for v in self.cfg.vaults))
        cex = next((c for c in configured(self.cfg) if c.name == "cex"), None)
        snapshots: tuple[Any, ...] = ()
        if cex is not None:
            kept = {"session": self.venues} if self.venues is not None and takes_session(cex) else {}
            snapshots = (await cex.collect(self.cfg, now, **kept)).snapshots
        unlistable: frozenset[str] = frozenset()
        if cex is not None:
            from primeguard.venues.cex.exchange import WhitelistAccess
            from primeguard.venues.cex.registry import exchange_for

            unlistable = frozenset(a.venue for a in self.cfg.cex_accounts
                                   if exchange_for(a.venue).whitelist_access is WhitelistAccess.NONE)
        findings = drift.drift_findings(self.cfg, policy, rows, listings, snapshots, now=now, unlistable=unlistable)
        keys = {f.key for f in findings}
        sources = {v.id for v in self.cfg.vaults} | {a.id for a in self.cfg.cex_accounts} | {"policy"}
        read = drift.sources_read(listings, snapshots, policy=policy, unlistable=unlistable)
        async with self._lock:  # never between a sweep's read of these findings and its write
            with self.store.session() as s:
                repos.upsert_findings(s, findings, now=now)
                stale = [f.key for f in repos.open_findings_of(s, [drift.DRIFT_VENUE]) if f.key not in keys
                         and (f.details.get("source") in read or f.details.get("source") not in sources)]
                repos.close_findings(s, keys=stale, now=now)
        return findings

    async def anchor(self) -> None:
        """Publish the audit head to the configured anchor sinks (the scheduled ``anchor`` job).
        Skipped when the head has not moved since the last anchor every sink took; a sink that
        fails is logged (never its URL) and tried again on the next run."""
        if not self.anchors.enabled:
            return
        record = await asyncio.to_thread(head_record, self.store, source=f"daemon:{self.replica_id}")
        key = (int(record["seq"]), str(record["hash"]))
        if key == self._anchored:
            return
        failures = await asyncio.to_thread(self.anchors.publish, record)
        for failure in failures:
            log.warning("%s; the next anchor run will try again", failure)
        if not failures:
            self._anchored = key

    async def follow_withdrawals(self) -> None:
        """Follow every broadcast CEX withdrawal to its venue's final state (the scheduled
        ``withdrawals`` job; see :meth:`WithdrawalService.follow`): confirmed, failed, or a
        blind-spot finding for a status primeguard cannot read. A venue that cannot be read is
        tried again at the next run."""
        results = await asyncio.to_thread(self.runtime.withdrawals().follow_all, actor="custody")
        for r in results:
            if r.state != "broadcast":
                log.info("withdrawal %s: %s", r.withdrawal_id, r.state)

    # --- run --------------------------------------------------------------------------------

    async def run(self, *, sweep_every_s: float = 10, scan_every_s: float = 300, health_port: int | None = None,
                  stop: asyncio.Event | None = None, watch: bool = True, follow_every_s: float = 30,
                  destinations_every_s: float = 60) -> None:
        """Run until ``stop`` is set (or SIGTERM/SIGINT): a scan, a destination reconciliation and a
        sweep at start, then scheduled jobs (sweeps, scans, anchors, following CEX withdrawals every
        ``follow_every_s``, reconciling destinations every ``destinations_every_s``), the oracle watcher
        and the health endpoint. A failing job is logged and retried at its next run; on the way out
        leases are released and the audit head anchored."""
        stop = stop or asyncio.Event()
        # The sweep evaluates in a worker thread: let the event loop (oracle fast path, webhooks)
        # take the interpreter back within 1 ms instead of the default 5 ms per switch.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        self.max_observation_age_s = max(60.0, 6 * sweep_every_s)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        venues = self.venues = VenueSession()  # venue connections kept open until run() returns
        try:
            await self._run(stop, sweep_every_s=sweep_every_s, scan_every_s=scan_every_s, health_port=health_port,
                            watch=watch, follow_every_s=follow_every_s, destinations_every_s=destinations_every_s)
        finally:
            if self.venues is venues:
                self.venues = None
            await venues.aclose()

    async def _run(self, stop: asyncio.Event, *, sweep_every_s: float, scan_every_s: float, health_port: int | None,
                   watch: bool, follow_every_s: float, destinations_every_s: float) -> None:
        await self._safe(self.capability_scan)
        await self._safe(self.reconcile_destinations)
        await self._safe(self.sweep, "start")
        scheduler = AsyncIOScheduler()
        scheduler.add_job(self._safe, "interval", seconds=sweep_every_s, args=[self.sweep, "schedule"],
                          max_instances=1, coalesce=True, id="sweep")
        scheduler.add_job(self._safe, "interval", seconds=scan_every_s, args=[self.capability_scan],
                          max_instances=1, coalesce=True, id="scan")
        scheduler.add_job(self._safe, "interval", seconds=follow_every_s, args=[self.follow_withdrawals],
                          max_instances=1, coalesce=True, id="withdrawals")
        scheduler.add_job(self._safe, "interval", seconds=destinations_every_s, args=[self.reconcile_destinations],
                          max_instances=1, coalesce=True, id="destinations")
        if self.anchors.enabled:
            await self._safe(self.anchor)
            scheduler.add_job(self._safe, "interval", seconds=self.cfg.audit.anchors.every_s, args=[self.anchor],
                              max_instances=1, coalesce=True, id="anchor")
        scheduler.start()
        watcher = self.watcher = OracleWatcher(self.cfg, self.on_oracle_update) if watch else None
        if watcher:
            watcher.start()
        runner = await self._serve_health(health_port) if health_port is not None else None
        try:
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            if watcher:
                await watcher.stop()
            if runner is not None:
                await runner.cleanup()
            if self.leases is not None:
                self.leases.release()
            if self._background:
                await asyncio.gather(*self._background, return_exceptions=True)
            await self._safe(self.anchor)  # the last head this replica saw, published on the way out
            await self.notifier.aclose()
            log.info("guardian %s stopped", self.replica_id)

    async def _safe(self, fn: Any, *args: Any) -> None:
        try:
            await fn(*args)
        except Exception:
            log.exception("guardian job %s failed; the next run will try again", getattr(fn, "__name__", fn))

    async def _serve_health(self, port: int) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    async def _health(self, _req: web.Request) -> web.Response:
        age = None if self.last_sweep is None else (datetime.now(UTC) - self.last_sweep).total_seconds()
        ok = age is not None and age < 120
        body = {"ok": ok, "replica": self.replica_id, "last_sweep_age_s": age,
                "shards": sorted(self.leases.held) if self.leases else None}
        return web.json_response(body, status=200 if ok else 503)

    async def _metrics(self, _req: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), content_type="text/plain")


@dataclass(frozen=True)
class OracleOutcome:
    """What the daemon did with one oracle log: ``refused`` None (the fast path ran) or the reason a
    full sweep was queued instead; the clients valued again, their ladder moves, the notices
    delivered and the seconds per stage (``reprice``, ``evaluate``, ``alerts``, ``persist``).
    ``screened``: the clients among ``clients`` the float ladder screen settled (certainly on the
    same rung, status unchanged): not valued exactly, nothing written; the rest were valued exactly."""

    update: OracleUpdate
    refused: str | None
    clients: frozenset[str]
    events: tuple[LadderEvent, ...]
    deliveries: int
    stages: dict[str, float]
    screened: frozenset[str] = frozenset()


def _lap(stages: dict[str, float], stage: str, since: float) -> float:
    """Record the seconds since ``since`` as ``stage``; returns now (the next stage's start)."""
    now = time.perf_counter()
    stages[stage] = now - since
    return now


def _restored_status(state: str, at: datetime, stored: Any) -> LadderStatus:
    """The rung of the last metric row, entered when that row says (``extra.ladder.entered_at``, so a
    restart keeps the episode and its actions' ids) with its margin-call deadline; rows without those
    fields fall back to the row's time."""
    entered, deadline = at, None
    if isinstance(stored, dict):
        with contextlib.suppress(KeyError, TypeError, ValueError):
            entered = datetime.fromisoformat(str(stored["entered_at"]))
        with contextlib.suppress(TypeError, ValueError):
            deadline = datetime.fromisoformat(str(stored["deadline"])) if stored.get("deadline") else None
    return LadderStatus(LadderState[state.upper()], entered, deadline=deadline)


def notice_details(ev: Evaluation, client_id: str, status: LadderStatus) -> dict[str, Any]:
    """The figures a ladder action carries (exact Decimal strings): the LTV and loan now, the
    client's bands, the cure target (the margin-call rung's lower band), what to post or repay to
    reach it, and the margin-call deadline."""
    val = ev.valuations[client_id]
    bands = ev.params[client_id].ladder
    target = cure_target(bands)
    out: dict[str, Any] = {
        "ltv": None if val.ltv is None else str(val.ltv), "loan_usd": str(val.loan),
        "bands": {"warn": str(bands.warn), "margin_call": str(bands.margin_call), "halt": str(bands.halt),
                  "liquidate": str(bands.liquidate), "hysteresis": str(bands.hysteresis)},
        "cure_below": str(target), "rung": status.state.label,
    }
    cure = None if val.ltv is None else cure_amounts(val.ltv, val.loan, target)
    if cure is not None:
        out["post_usd"], out["repay_usd"] = (str(x.quantize(Decimal("0.01"), rounding=ROUND_UP)) for x in cure)
    if status.deadline is not None:
        out["deadline"] = status.deadline.isoformat()
    return out


def spender_of(c: Credential) -> str | None:
    """Who a scanned grant lets move the wallet's assets: an approval's or Permit2 allowance's
    spender (not the Permit2 gateway itself), an NFT operator, an EIP-7702 delegate; else ``None``."""
    d = c.details
    if c.kind == "erc20_approval" and not d.get("permit2_gateway"):
        return str(d.get("spender") or "") or None
    if c.kind == "permit2_allowance":
        return str(d.get("spender") or "") or None
    if c.kind == "nft_operator":
        return str(d.get("operator") or "") or None
    if c.kind == "eip7702_delegation":
        return str(d.get("delegate") or "") or None
    return None


def _ltv_text(ltv: Decimal | None) -> str | None:
    """LTV for people: 6 decimal places (the exact value stays in the metric history)."""
    if ltv is None:
        return None
    return "inf" if not ltv.is_finite() else str(ltv.quantize(Decimal("0.000001")))
