"""Issue B benchmark: collect 300 CEX sub-accounts (100 each on Binance, OKX, Bybit; a client key
and a monitor key each) from the simulators with 50 ms injected latency per request.

- ours: what a daemon sweep runs in steady state, ``CexCollector.collect`` (the venue registry's
  collector: one ``collect_many`` with per-venue limits, 16 requests in flight per venue) over the
  daemon's :class:`~primeguard.venues.session.VenueSession`, second sweep: the kept client pool
  (clients built and markets loaded by the first sweep); informational, the first sweep
  (``cex_collect_300_cold_info``: client construction and market loads included, which is also what
  every one-shot CLI sweep pays), and ``cex_collect_300_fresh_pool_info``: the collector without a
  session once the markets are cached, a pool built per sweep as every daemon sweep ran before;
- baseline: the same collector one account at a time with one request in flight (a naive
  sequential loop), measured over all 300 accounts (about three minutes at 50 ms; markets loaded
  up front, so the baseline is not charged for them).

The simulators run in a child process (their own interpreter: no GIL shared with the client).
Targets: ours ≥ 20× faster than the baseline, and within 2× of the floor
``latency × requests ÷ in-flight limit`` of the slowest venue (the floor counts the requests the
simulators saw during our run). Only the production line gates the exit status. ``cpu_s`` is the
client process's CPU time during our run (ccxt builds, signs and parses every request): the floor
counts none of it, and on a shared machine the client waits for a core, so wall time follows load.
``loop_stall_s``: the event loop's longest stall during the collection (a 5 ms ticker's worst
lateness), what an oracle log arriving meanwhile waits for at worst; ``cex_sweep_6_loop_stall_info``
compares it on a small book (two accounts per venue), kept pool vs a pool built per sweep.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.benchlib import Result, report

PER_VENUE = 100
STALL_ROUNDS = 10
LATENCY_MS = 50
VENUES = ("binance", "okx", "bybit")


def scenario() -> dict[str, Any]:
    clients = []
    for i in range(PER_VENUE):
        cex = []
        for v in VENUES:
            cex.append({"venue": v, "spot": {"BTC": "0.5", "USDT": str(1000 + i)}, "futures": {"USDT": "20000"},
                        "positions": [{"symbol": "BTC/USDT:USDT", "size": "0.1" if i % 2 else "-0.2",
                                       "entry_price": "58000"}],
                        "whitelist": [{"coin": "USDT", "address": "0x1111111111111111111111111111111111111111"}],
                        "keys": [{"id": "client", "spot": True, "futures": True, "ip_whitelist": ["127.0.0.1"]}]})
        clients.append({"id": f"c{i:03d}", "cex": cex})
    fault = {"latency_ms": LATENCY_MS}
    return {"name": "bench-cex", "clients": clients, "faults": {v: fault for v in VENUES}}


def _serve(conn: Any, data: dict[str, Any], secrets: str) -> None:
    from primeguard.sandbox.cex.server import CexSimulators
    from primeguard.sandbox.scenario import Scenario

    with CexSimulators(Scenario.model_validate(data)) as sims:
        accounts = [a.model_dump(mode="json") for a in sims.config_accounts(Path(secrets))]
        conn.send(accounts)
        while True:
            msg = conn.recv()
            if msg == "counts":
                conn.send({v: sims.request_count(v) for v in VENUES})
            else:
                break


class _Stalls:
    """The event loop's longest stall while it runs: a 5 ms ticker's worst lateness (what an oracle
    log arriving during the collection waits for, at worst)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Stalls:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _tick(self) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, time.perf_counter() - t0 - 0.005)


async def run(conn: Any, accounts: list[Any]) -> list[Result]:
    from datetime import UTC, datetime

    from primeguard.config.schema import PrimeguardConfig
    from primeguard.venues.cex import DEFAULT_LIMITS, CexClientPool, VenueLimits, collect
    from primeguard.venues.cex.collector import CexCollector
    from primeguard.venues.session import VenueSession

    def counts() -> dict[str, int]:
        conn.send("counts")
        return conn.recv()

    # the daemon's collector over its kept session: the first sweep builds the pool (cold, informational),
    # the second is the steady state every later sweep runs (ours)
    cfg = PrimeguardConfig.model_validate({"clients": [{"id": c} for c in dict.fromkeys(a.client for a in accounts)],
                                           "cex_accounts": [a.model_dump(mode="json") for a in accounts]})
    session = VenueSession()
    try:
        c0 = counts()
        t0, p0 = time.perf_counter(), time.process_time()
        async with _Stalls() as cold_stall:
            got = await CexCollector().collect(cfg, datetime.now(UTC), session=session)
        cold, cold_cpu = time.perf_counter() - t0, time.process_time() - p0
        c1 = counts()
        snaps = list(got.snapshots)
        assert len(snaps) == len(accounts) and all(s.ok for s in snaps), \
            [f.message for s in snaps for f in s.findings if not s.ok][:3]
        t0, p0 = time.perf_counter(), time.process_time()
        async with _Stalls() as warm_stall:
            got = await CexCollector().collect(cfg, datetime.now(UTC), session=session)
        warm, warm_cpu = time.perf_counter() - t0, time.process_time() - p0
        c2 = counts()
        assert session.builds == {"cex": 1}, session.builds  # the second sweep reused the first one's pool
    finally:
        await session.aclose()
    assert all(s.ok for s in got.snapshots)
    # what every daemon sweep ran before the session: a fresh pool per sweep (markets from the process's cache)
    t0, p0 = time.perf_counter(), time.process_time()
    async with _Stalls() as fresh_stall:
        fresh_got = await CexCollector().collect(cfg, datetime.now(UTC))
    fresh, fresh_cpu = time.perf_counter() - t0, time.process_time() - p0
    assert all(s.ok for s in fresh_got.snapshots)
    cold_requests = {v: c1[v] - c0[v] for v in VENUES}
    warm_requests = {v: c2[v] - c1[v] for v in VENUES}

    # a small book (two accounts per venue, as in the oracle-alert world): the event loop's longest stall per
    # steady sweep, kept pool vs a pool per sweep, alternated; what an oracle log landing in the collection waits
    small = [a for v in VENUES for a in [x for x in accounts if x.venue == v][:2]]
    small_cfg = PrimeguardConfig.model_validate({
        "clients": [{"id": c} for c in dict.fromkeys(a.client for a in small)],
        "cex_accounts": [a.model_dump(mode="json") for a in small]})
    kept_stalls: list[tuple[float, float]] = []
    fresh_stalls: list[tuple[float, float]] = []
    session = VenueSession()
    try:
        await CexCollector().collect(small_cfg, datetime.now(UTC), session=session)
        for _ in range(STALL_ROUNDS):
            for arm, kw in ((kept_stalls, {"session": session}), (fresh_stalls, {})):
                p0 = time.process_time()
                async with _Stalls() as st:
                    small_got = await CexCollector().collect(small_cfg, datetime.now(UTC), **kw)
                arm.append((st.worst, time.process_time() - p0))
                assert all(s.ok for s in small_got.snapshots)
    finally:
        await session.aclose()

    # baseline: one account at a time, one request in flight, every account (measured, not scaled)
    seq_limits = {v: VenueLimits(1, DEFAULT_LIMITS[v].weight_budgets) for v in VENUES}
    async with CexClientPool(limits=seq_limits) as seq:
        for v in VENUES:  # markets loaded up front: the baseline is not charged for them
            await seq.markets(next(a for a in accounts if a.venue == v))
        c4 = counts()
        t0 = time.perf_counter()
        for a in accounts:
            assert (await collect(a, pool=seq)).ok
        naive = time.perf_counter() - t0
        naive_requests = sum(counts().values()) - sum(c4.values())

    latency = LATENCY_MS / 1000
    floors = {v: latency * warm_requests[v] / DEFAULT_LIMITS[v].max_in_flight for v in VENUES}
    floor = max(floors.values())
    cold_floor = max(latency * cold_requests[v] / DEFAULT_LIMITS[v].max_in_flight for v in VENUES)
    base = {"accounts": len(accounts), "baseline_requests": naive_requests,
            "baseline_how": "measured: all accounts one at a time, one request in flight, markets preloaded"}
    extra_warm = {"requests": sum(warm_requests.values()), "requests_by_venue": warm_requests,
                  "within_floor_x": round(warm / floor, 2), "cpu_s": round(warm_cpu, 3),
                  "loop_stall_s": round(warm_stall.worst, 4), **base,
                  "path": "CexCollector.collect over the daemon's VenueSession, second sweep (kept pool)"}
    extra_cold = {"requests": sum(cold_requests.values()), "requests_by_venue": cold_requests,
                  "within_floor_x": round(cold / cold_floor, 2), "cpu_s": round(cold_cpu, 3),
                  "loop_stall_s": round(cold_stall.worst, 4), **base,
                  "informational": True,
                  "path": "the same, first sweep: pool built, clients constructed, markets loaded (a one-shot "
                          "CLI sweep pays this every time)"}
    extra_fresh = {"cpu_s": round(fresh_cpu, 3), "within_floor_x": round(fresh / floor, 2),
                   "loop_stall_s": round(fresh_stall.worst, 4), "informational": True,
                   "path": "CexCollector.collect without a session, markets cached: a pool built per sweep, "
                           "as every daemon sweep ran before the kept session"}
    kept_stall = statistics.median(w for w, _ in kept_stalls)
    fresh_stall = statistics.median(w for w, _ in fresh_stalls)
    extra_stall = {"accounts": len(small), "rounds": STALL_ROUNDS, "informational": True,
                   "kept_max_s": round(max(w for w, _ in kept_stalls), 4),
                   "per_sweep_pool_max_s": round(max(w for w, _ in fresh_stalls), 4),
                   "kept_cpu_s_median": round(statistics.median(c for _, c in kept_stalls), 4),
                   "per_sweep_pool_cpu_s_median": round(statistics.median(c for _, c in fresh_stalls), 4),
                   "path": "longest event-loop stall per steady sweep (median of rounds): ours = the kept pool, "
                           "baseline = a pool built per sweep (before the session)"}
    floor_model = "floor: latency × requests ÷ in-flight limit of the slowest venue"
    return [
        Result("cex_collect_300", warm, naive, "≥20× naive, ≤2× floor",
               naive / warm >= 20 and warm <= 2 * floor, extra_warm, floor_s=floor, modelled=floor_model),
        Result("cex_collect_300_fresh_pool_info", fresh, naive, "≥20× naive, ≤2× floor",
               naive / fresh >= 20 and fresh <= 2 * floor, extra_fresh, floor_s=floor, modelled=floor_model),
        Result(f"cex_sweep_{len(small)}_loop_stall_info", kept_stall, fresh_stall, "kept pool ≤ ½ per-sweep pool",
               kept_stall <= fresh_stall / 2, extra_stall),
        Result("cex_collect_300_cold_info", cold, naive, "≥20× naive, ≤2× floor",
               naive / cold >= 20 and cold <= 2 * cold_floor, extra_cold, floor_s=cold_floor, modelled=floor_model),
    ]


def main() -> int:
    from primeguard.config.schema import CexAccountConfig

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    with tempfile.TemporaryDirectory() as tmp:
        proc = ctx.Process(target=_serve, args=(child, scenario(), str(Path(tmp) / "secrets")), daemon=True)
        proc.start()
        try:
            accounts = [CexAccountConfig.model_validate(a) for a in parent.recv()]
            results = asyncio.run(run(parent, accounts))
        finally:
            parent.send("stop")
            proc.join(10)
    print(f"# {len(accounts)} sub-accounts, {LATENCY_MS} ms latency per request, simulators in a child process")
    report(results)
    return 0 if results[0].ok else 1  # the cold first sweep is informational


if __name__ == "__main__":
    raise SystemExit(main())
