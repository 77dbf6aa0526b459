"""The guardian end to end on the sandbox: an oracle crash reaches the webhook through the oracle
watcher (not the 60 s schedule) and moves the ladder; a dead chain becomes a blind-spot alert; the
audit chain verifies. Detection latency is measured by ``make bench`` (tests/bench/bench_daemon.py),
not asserted here."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from primeguard.config.alerts import AlertsConfig
from primeguard.daemon.guardian import Guardian
from primeguard.risk.ladder import LadderState
from primeguard.store import audit
from tests.daemon.receiver import Receiver
from tests.waiting import await_until

pytestmark = pytest.mark.chain

WORLD = {
    "name": "guard",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [
        {"id": "firm-a", "loan": {"principal": "150000"}, "wallets": [{"tokens": {"WETH": "100", "USDC": "100000"}}]},
        {"id": "firm-b", "loan": {"principal": "10000"}, "wallets": [{"tokens": {"USDC": "100000"}}]},
    ],
}


def _guardian(sb, receiver: Receiver, tmp_path) -> Guardian:
    cfg = sb.config()
    alerts = AlertsConfig.model_validate({"channels": [
        {"name": "hook", "kind": "webhook", "url": {"value": receiver.url}, "min_severity": "info"}]})
    cfg = cfg.model_copy(update={"alerts": alerts, "store": cfg.store.model_copy(
        update={"url": f"sqlite:///{tmp_path / 'guard.db'}"})})
    return Guardian(cfg, config_dir=sb.workdir)


def test_oracle_crash_alerts_through_the_watcher_and_moves_the_ladder(sandbox_factory, tmp_path):
    sb = sandbox_factory(WORLD)

    async def scenario():
        receiver = Receiver()
        await receiver.start()
        g = _guardian(sb, receiver, tmp_path)
        stop = asyncio.Event()
        task = asyncio.create_task(g.run(sweep_every_s=600, scan_every_s=600, stop=stop))
        try:
            await await_until(lambda: g.last_sweep is not None, what="the first sweep")
            await await_until(lambda: g.watcher is not None and g.watcher.connected.get("ethereum"),
                              what="the oracle watcher's subscription")
            before = g.ladder["firm-a"].state
            await asyncio.to_thread(sb.set_price, "ETH", Decimal("100"))  # returns once mined
            _, body = await receiver.wait_for(
                lambda b: b.get("client_id") == "firm-a" and b.get("code") == "ladder")
            assert body["ladder"]["previous"] == "normal"
            # the oracle fast path sent it and then recorded the new ladder state
            await await_until(lambda: g.last_oracle is not None and g.last_oracle.refused is None
                              and g.last_oracle.deliveries, what="the oracle fast path to finish")
            return before, g.ladder["firm-a"].state, g
        finally:
            stop.set()
            await task
            await receiver.stop()

    before, after, g = asyncio.run(scenario())
    assert before == LadderState.NORMAL
    # 100 WETH at 100 + 100000 USDC against 150000 owed: LTV > 1, above every band
    assert after >= LadderState.HALT
    assert audit.verify(g.store).ok


def test_dead_chain_is_a_blind_spot_alert(sandbox_factory, tmp_path):
    sb = sandbox_factory(WORLD)

    async def scenario():
        receiver = Receiver()
        await receiver.start()
        g = _guardian(sb, receiver, tmp_path)
        await g.sweep()
        sb.chains["ethereum"].node.stop()
        out = await g.sweep()
        _, body = await receiver.wait_for(lambda b: "venue_unreachable" in str(b) or "blind" in str(b).lower())
        await receiver.stop()
        return out, body

    out, _body = asyncio.run(scenario())
    assert all(v.blind for v in out.evaluation.valuations.values())
    assert out.evaluation.ladder["firm-b"].state == LadderState.NORMAL  # blind never moves a client down


def test_stage_timings_in_metrics_and_log(sandbox_factory, tmp_path, caplog):
    import socket

    import aiohttp

    sb = sandbox_factory(WORLD)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def scenario() -> str:
        receiver = Receiver()
        await receiver.start()
        g = _guardian(sb, receiver, tmp_path)
        stop = asyncio.Event()
        task = asyncio.create_task(g.run(sweep_every_s=600, scan_every_s=600, stop=stop, watch=False,
                                         health_port=port))
        try:
            await await_until(lambda: g.last_sweep is not None, what="the first sweep")
            for _ in range(3000):  # the health server starts after the first sweep: poll until it answers
                try:
                    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as r:
                        text = await r.text()
                    if "primeguard_sweep_stage_seconds_count" in text:
                        return text
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.02)
            raise AssertionError("/metrics never answered")
        finally:
            stop.set()
            await task
            await receiver.stop()

    with caplog.at_level("INFO", logger="primeguard.daemon.guardian"):
        text = asyncio.run(scenario())
    for stage in ("collect", "collect:evm", "policy", "evaluate", "alerts", "persist", "playbooks"):
        assert f'primeguard_sweep_stage_seconds_count{{stage="{stage}"}} 1.0' in text, stage
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("sweep "))
    assert "collect:evm" in line and "persist" in line and "evaluate" in line
