"""The oracle fast path on real anvil with the real daemon: an oracle drop is alerted while a slow
sweep is still in progress (without waiting for it), only the asset's holders are valued again,
the sweep that read the venues before the drop does not undo it, the next full sweep agrees (no
second notice), and a log that cannot be trusted falls back to a full sweep, never a fast alert.
Latency is ``make bench``'s (tests/bench/bench_oracle_alert.py), not asserted here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from prometheus_client import generate_latest

from primeguard.daemon.guardian import Guardian
from primeguard.daemon.reprice import OracleLog, Refusal, Repriced, carry_quotes, holders, reprice
from primeguard.daemon.watcher import OracleUpdate
from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.risk.ladder import LadderState
from primeguard.store import repos
from tests.daemon.receiver import Receiver
from tests.daemon.test_guardian import _guardian
from tests.waiting import await_until

pytestmark = pytest.mark.chain

# The shipped policy's tier for these clients: margin call at 70 % LTV, halt at 80 %. firm-a: 10 WETH
# (8 % haircut) against 15,000 USDC: 54 % at 3,000; at 2,200 it is 74.1 %, a margin call. firm-b
# holds no ETH. firm-c: 100 WETH against 1,000 USDC, under 1 % LTV either side of the drop: far from
# every band, it keeps its rung on the float screen without an exact valuation.
WORLD = {
    "name": "fastpath",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [
        {"id": "firm-a", "loan": {"principal": "15000"}, "wallets": [{"tokens": {"WETH": "10"}}]},
        {"id": "firm-b", "loan": {"principal": "10000"}, "wallets": [{"tokens": {"USDC": "100000"}}]},
        {"id": "firm-c", "loan": {"principal": "1000"}, "wallets": [{"tokens": {"WETH": "100"}}]},
    ],
}
DROP = Decimal("2200")


def _ladder_notices(receiver: Receiver, client: str) -> list[dict]:
    return [b for _, b in receiver.got if b.get("client_id") == client and b.get("code") == "ladder"]


async def _started(g: Guardian, stop: asyncio.Event) -> asyncio.Task:
    task = asyncio.create_task(g.run(sweep_every_s=600, scan_every_s=600, stop=stop))
    await await_until(lambda: g.last_sweep is not None, what="the first sweep")
    await await_until(lambda: g.watcher is not None and g.watcher.connected.get("ethereum"),
                      what="the oracle watcher's subscription")
    return task


@contextlib.asynccontextmanager
async def _running(sb, tmp_path) -> AsyncIterator[tuple[Guardian, Receiver]]:
    """A running daemon (first sweep done, watcher subscribed) with a webhook receiver; stopped
    on the way out."""
    receiver = Receiver()
    await receiver.start()
    g = _guardian(sb, receiver, tmp_path)
    stop = asyncio.Event()
    task = await _started(g, stop)
    try:
        yield g, receiver
    finally:
        stop.set()
        await task
        await receiver.stop()


def test_oracle_drop_is_alerted_during_a_slow_sweep_and_the_next_sweep_agrees(sandbox_factory, tmp_path):
    sb = sandbox_factory(WORLD)

    async def scenario():
        async with _running(sb, tmp_path) as (g, receiver):
            # A slow sweep: it read every venue and valued the book before the drop, and is held
            # on its way to the alerts (as behind a slow channel), holding the sweep lock.
            real, valued, release = g.notifier.process, asyncio.Event(), asyncio.Event()

            async def slow_process(*args, **kwargs):
                valued.set()
                await release.wait()
                return await real(*args, **kwargs)

            g.notifier.process = slow_process
            slow = asyncio.create_task(g.sweep("test"))
            await await_until(valued.is_set, what="the slow sweep's evaluation")
            g.notifier.process = real
            await asyncio.to_thread(sb.set_price, "ETH", DROP)  # returns once mined
            _, body = await receiver.wait_for(
                lambda b: b.get("client_id") == "firm-a" and b.get("code") == "ladder")
            assert not slow.done(), "the alert waited for the sweep in progress"
            assert body["ladder"]["previous"] == "normal" and body["ladder"]["current"] == "margin_call"
            # the notice goes out first; the fast path then records the rung and reports
            outcome = await await_until(lambda: g.last_oracle, what="the fast path's outcome")
            assert outcome.refused is None
            assert outcome.clients == {"firm-a", "firm-c"}  # firm-b holds no ETH: not valued again
            # firm-c cannot change rung: settled on floats, no exact valuation; firm-a moved: exact.
            assert outcome.screened == {"firm-c"}
            assert g.ladder["firm-c"].state == LadderState.NORMAL
            assert [e.client_id for e in outcome.events] == ["firm-a"]
            assert g.ladder["firm-a"].state == LadderState.MARGIN_CALL

            release.set()
            stale = await slow  # valued normal from the observation read before the drop
            assert stale.evaluation.ladder["firm-a"].state == LadderState.MARGIN_CALL  # the newer rung stands
            assert not [m for m in stale.evaluation.moves if m.client_id == "firm-a"]
            assert g.ladder["firm-a"].state == LadderState.MARGIN_CALL  # the older observation did not win
            with g.store.session(readonly=True) as s:
                assert {r.client_id: r.state for r in repos.ladder_states(s)}["firm-a"] == "margin_call"

            fresh = await g.sweep("test")  # reads the dropped price itself
            assert fresh.evaluation.ladder["firm-a"].state == LadderState.MARGIN_CALL
            assert not fresh.evaluation.moves
            assert fresh.evaluation.ladder["firm-a"].entered_at == g.ladder["firm-a"].entered_at
            return g

    g = asyncio.run(scenario())
    with g.store.session(readonly=True) as s:
        stored = {r.client_id: r.state for r in repos.ladder_states(s)}
        alerts = [r for r in repos.alerts_in_state(s, "sent", "suppressed", "pending", "failed", "resolved")
                  if r.finding_key == "ladder:firm-a"]
    assert stored["firm-a"] == "margin_call"
    assert len(alerts) == 1 and alerts[0].state == "sent" and alerts[0].level == "margin_call"
    assert g.m_oracle.labels("fast", "ok")._value.get() == 1
    metrics = generate_latest(g.registry).decode()
    for stage in ("reprice", "evaluate", "alerts", "persist"):
        assert f'primeguard_oracle_stage_seconds_count{{stage="{stage}"}} 1.0' in metrics, stage


def test_oracle_drop_is_alerted_while_a_sweep_prepares_its_rows_and_the_rows_carry_the_newer_rung(
        sandbox_factory, tmp_path, monkeypatch):
    """The sweep's rows are prepared in a worker thread: the event loop, and so the fast path, runs
    meanwhile; the rows of a client the fast path moved are prepared again with the newer rung."""
    import threading

    import primeguard.daemon.guardian as guardian_module

    sb = sandbox_factory(WORLD)
    preparing, go = threading.Event(), threading.Event()
    real_prepare = guardian_module.prepare_sweep

    def held_prepare(**kwargs):
        preparing.set()
        assert go.wait(120), "the test never released the preparation"
        return real_prepare(**kwargs)

    async def scenario():
        async with _running(sb, tmp_path) as (g, receiver):
            try:
                monkeypatch.setattr(guardian_module, "prepare_sweep", held_prepare)
                slow = asyncio.create_task(g.sweep("test"))  # reads the venues before the drop
                await await_until(preparing.is_set, what="the sweep preparing its rows")
                await asyncio.to_thread(sb.set_price, "ETH", DROP)
                _, body = await receiver.wait_for(
                    lambda b: b.get("client_id") == "firm-a" and b.get("code") == "ladder")
                assert body["ladder"]["current"] == "margin_call"
                assert not slow.done()
                await await_until(lambda: g.last_oracle, what="the fast path's outcome")
                go.set()
                out = await slow
                assert out.evaluation.ladder["firm-a"].state == LadderState.MARGIN_CALL
                return g, out.sweep_id
            finally:
                go.set()

    g, sweep_id = asyncio.run(scenario())
    with g.store.session(readonly=True) as s:
        stored = {r.client_id: r.state for r in repos.ladder_states(s)}
        rows = [m for m in repos.metric_history(s, "firm-a") if m.sweep_id == sweep_id]
    assert stored["firm-a"] == "margin_call"
    assert len(rows) == 1 and rows[0].ladder_state == "margin_call"
    assert rows[0].extra["ladder"]["state"] == "margin_call"


def test_bad_oracle_answers_fall_back_to_a_full_sweep_never_a_fast_alert(sandbox_factory, tmp_path):
    sb = sandbox_factory(WORLD)

    async def scenario():
        receiver = Receiver()
        await receiver.start()
        g = _guardian(sb, receiver, tmp_path)
        # No observation yet: nothing to reprice; a full sweep runs instead.
        first = await g.on_oracle_update(OracleUpdate("ethereum", sb.config().feeds[0].address, "ETH",
                                                      195_000_000_000, 99, 1, int(datetime.now(UTC).timestamp())))
        assert first.refused == "no_observation"
        await await_until(lambda: g.last_sweep is not None, what="the fallback sweep")
        stop = asyncio.Event()
        task = await _started(g, stop)
        hb = next(f.heartbeat_s for f in g.cfg.feeds if f.asset == "ETH")
        try:
            for label, answer, age in (("stale", DROP, hb + 600), ("non-positive", Decimal(0), 0)):
                sweeps = g.m_sweeps.labels("oracle")._value.get()
                await asyncio.to_thread(sb.set_price, "ETH", answer, age_s=age)
                await await_until(lambda a=answer: g.last_oracle is not None
                                  and g.last_oracle.update.answer == int(a.scaleb(8)), what=f"the {label} log")
                assert g.last_oracle.refused == "bad_answer", label
                await await_until(lambda s=sweeps: g.m_sweeps.labels("oracle")._value.get() > s,
                                  what=f"the full sweep after the {label} log")
                assert g.ladder["firm-a"].state == LadderState.NORMAL, label  # blind holds its rung
                # A valid round again (its log is refused too: the feed was invalid last sweep).
                await asyncio.to_thread(sb.set_price, "ETH", Decimal(3000))
                await await_until(lambda: g.last_oracle.update.answer == 3000 * 10**8, what="the recovery log")
                assert g.last_oracle.refused == "feed_invalid"
                await asyncio.gather(*g._background)
            assert not _ladder_notices(receiver, "firm-a")
            assert any(b.get("blind_spot") for _, b in receiver.got)  # the sweep made the feed a blind spot
        finally:
            stop.set()
            await task
            await receiver.stop()
        return g

    g = asyncio.run(scenario())
    assert g.m_oracle.labels("sweep", "bad_answer")._value.get() == 2
    assert g.m_oracle.labels("fast", "ok")._value.get() == 0


def test_reprice_is_exact_and_refuses_what_it_cannot_trust(sandbox_factory, tmp_path):
    sb = sandbox_factory(WORLD)
    receiver = Receiver()
    g = _guardian(sb, receiver, tmp_path)

    async def one_sweep() -> None:
        await g.sweep()
        await g.notifier.aclose()  # the webhook channel's kept-open session

    asyncio.run(one_sweep())
    obs, cfg = g.last_observation, g.cfg
    feed = next(f for f in cfg.feeds if f.asset == "ETH")
    held = next(q for q in obs.prices if q.source_id == f"ethereum:{feed.address}")
    now = datetime.now(UTC)

    def log(**kw) -> OracleLog:
        base = dict(chain="ethereum", feed=feed.address, asset="ETH", answer=195_012_345_678,
                    round_id=(held.round_id or 0) + 1, updated_at=int(now.timestamp()))
        return OracleLog(**{**base, **kw})

    got = reprice(cfg, obs, log(), now)
    assert isinstance(got, Repriced)
    assert got.quote.price == Decimal("1950.12345678") and got.previous == held
    assert got.observation.taken_at == now and got.observation.snapshots == obs.snapshots
    assert [q for q in got.observation.prices if q.source_id == held.source_id] == [got.quote]
    assert holders(cfg, obs, "ETH") == {"firm-a", "firm-c"}
    assert holders(cfg, obs, "USDC") == {"firm-a", "firm-b", "firm-c"}  # every loan is in USDC

    # A sweep that finishes after the fast path: its readings, with the fast path's newer round.
    carried = carry_quotes(obs, got.observation)
    assert carried.snapshots == obs.snapshots and carried.taken_at == now
    assert [q for q in carried.prices if q.source_id == held.source_id] == [got.quote]
    newest = carry_quotes(got.observation, obs)  # the sweep's own round is the newer one
    assert [q for q in newest.prices if q.source_id == held.source_id] == [got.quote]
    unread = replace(obs, prices=tuple(q for q in obs.prices if q.source_id != held.source_id))
    assert not [q for q in carry_quotes(unread, got.observation).prices if q.source_id == held.source_id]

    blind = replace(obs, findings=(Finding(FindingCode.VENUE_UNREACHABLE, Severity.CRITICAL, "chain:ethereum",
                                           "down", venue="evm", chain="ethereum"),))
    no_quote = replace(obs, prices=tuple(q for q in obs.prices if q.source_id != held.source_id))
    cases = {
        "no_observation": reprice(cfg, None, log(), now),
        "observation_old": reprice(cfg, obs, log(), now, read_at=now - timedelta(seconds=61), max_age_s=60),
        "unknown_feed": reprice(cfg, obs, log(feed="0x" + "11" * 20), now),
        "wrong_chain": reprice(cfg, obs, log(), now, wrong_chains={"ethereum"}),
        "chain_blind": reprice(cfg, blind, log(), now),
        "feed_invalid": reprice(cfg, no_quote, log(), now),
        "old_round": reprice(cfg, obs, log(round_id=held.round_id), now),
        "bad_answer": reprice(cfg, obs, log(answer=-1), now),
    }
    for reason, result in cases.items():
        assert isinstance(result, Refusal) and result.reason == reason, (reason, result)
    stale = reprice(cfg, obs, log(updated_at=int(now.timestamp()) - feed.heartbeat_s - 1), now)
    assert isinstance(stale, Refusal) and stale.reason == "bad_answer" and "heartbeat" in stale.message
    assert isinstance(reprice(cfg, obs, log(updated_at=None), now), Refusal)
