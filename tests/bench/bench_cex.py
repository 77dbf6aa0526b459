"""Issue B benchmark: collect 300 CEX sub-accounts (100 each on Binance, OKX, Bybit; a client key
and a monitor key each) from the simulators with 50 ms injected latency per request.

- ours: what a daemon sweep runs, ``CexCollector.collect`` (the venue registry's collector: one
  ``collect_many`` with per-venue limits, 16 requests in flight per venue, over a fresh client pool:
  client construction and market loads included, as on every sweep today); informational, the same
  ``collect_many`` over a kept pool (second sweep), which the daemon does not run yet;
- baseline: the same collector one account at a time with one request in flight (a naive
  sequential loop), measured over all 300 accounts (about three minutes at 50 ms; markets loaded
  up front, so the baseline is not charged for them).

The simulators run in a child process (their own interpreter: no GIL shared with the client).
Targets: ours ≥ 20× faster than the baseline, and within 2× of the floor
``latency × requests ÷ in-flight limit`` of the slowest venue (the floor counts the requests the
simulators saw during our run). Only the production line gates the exit status. ``cpu_s`` is the
client process's CPU time during our run (ccxt builds, signs and parses every request): the floor
counts none of it, and on a shared machine the client waits for a core, so wall time follows load.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.benchlib import Result, report

PER_VENUE = 100
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


async def run(conn: Any, accounts: list[Any]) -> list[Result]:
    from datetime import UTC, datetime

    from primeguard.config.schema import PrimeguardConfig
    from primeguard.venues.cex import DEFAULT_LIMITS, CexClientPool, VenueLimits, collect, collect_many
    from primeguard.venues.cex.collector import CexCollector

    def counts() -> dict[str, int]:
        conn.send("counts")
        return conn.recv()

    # ours: the daemon's collector (a fresh pool per sweep: clients built, markets loaded)
    cfg = PrimeguardConfig.model_validate({"clients": [{"id": c} for c in dict.fromkeys(a.client for a in accounts)],
                                           "cex_accounts": [a.model_dump(mode="json") for a in accounts]})
    c0 = counts()
    t0, p0 = time.perf_counter(), time.process_time()
    got = await CexCollector().collect(cfg, datetime.now(UTC))
    cold, cold_cpu = time.perf_counter() - t0, time.process_time() - p0
    c1 = counts()
    snaps = list(got.snapshots)
    assert len(snaps) == len(accounts) and all(s.ok for s in snaps), \
        [f.message for s in snaps for f in s.findings if not s.ok][:3]
    cold_requests = {v: c1[v] - c0[v] for v in VENUES}

    # ours, warm: the daemon keeps its pool; the second sweep is the steady state
    async with CexClientPool() as pool:
        await collect_many(accounts, pool=pool)
        c2 = counts()
        t0, p0 = time.perf_counter(), time.process_time()
        snaps = await collect_many(accounts, pool=pool)
        warm, warm_cpu = time.perf_counter() - t0, time.process_time() - p0
        c3 = counts()
    assert all(s.ok for s in snaps)
    warm_requests = {v: c3[v] - c2[v] for v in VENUES}

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
                  "within_floor_x": round(warm / floor, 2), "cpu_s": round(warm_cpu, 3), **base, "informational": True,
                  "path": "collect_many over a kept pool (second sweep): not what the daemon runs today"}
    extra_cold = {"requests": sum(cold_requests.values()), "requests_by_venue": cold_requests,
                  "within_floor_x": round(cold / cold_floor, 2), "cpu_s": round(cold_cpu, 3), **base,
                  "path": "CexCollector.collect, as a daemon sweep runs it (fresh pool: clients and markets)"}
    floor_model = "floor: latency × requests ÷ in-flight limit of the slowest venue"
    return [
        Result("cex_collect_300", cold, naive, "≥20× naive, ≤2× floor",
               naive / cold >= 20 and cold <= 2 * cold_floor, extra_cold, floor_s=cold_floor, modelled=floor_model),
        Result("cex_collect_300_warm_pool_info", warm, naive, "≥20× naive, ≤2× floor",
               naive / warm >= 20 and warm <= 2 * floor, extra_warm, floor_s=floor, modelled=floor_model),
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
    return 0 if results[0].ok else 1  # the kept-pool line is informational


if __name__ == "__main__":
    raise SystemExit(main())
