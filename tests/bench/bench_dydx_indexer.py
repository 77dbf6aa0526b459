"""dYdX indexer reads of a sweep: collect 300 dYdX addresses (one subaccount each, indexer only) from
the indexer simulator, as the daemon's sweep does (``collect_many``).

- ours: the production path, every request on one pooled ``httpx.AsyncClient`` per indexer;
- baseline: the same collection through the library's own request helper (``IndexerClient`` as
  shipped: a new ``httpx.AsyncClient``, so a new connection and TLS context, per request) — what
  the adapter did before.

Reported per side: wall time, the client process's CPU time, the TCP connections the simulator
saw, and the longest stall of the event loop (a 5 ms ticker's worst lateness: what an oracle event
arriving during the sweep would wait). The simulator runs in a child process (no shared GIL).
Target: ours spends at most half the baseline's CPU and opens at most ``MAX_CONNECTIONS``.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.benchlib import Result, report

ACCOUNTS = 300
ROUNDS = 3


def _serve(conn: Any) -> None:
    from primeguard.sandbox.dydx.server import DydxSimulators
    from primeguard.sandbox.scenario import Scenario

    clients = [{"id": f"firm-{i}", "dydx": [{"subaccounts": [{"number": 0, "usdc": str(100 + i)}]}]}
               for i in range(ACCOUNTS)]
    data = {"name": "bench-dydx", "clients": clients,
            "feeds": [{"asset": "BTC", "answer": "60000"}, {"asset": "USDC", "answer": "1"}]}
    with DydxSimulators(Scenario.model_validate(data)) as sims:
        sims.start()
        conn.send([a.model_dump(mode="json") for a in sims.config_accounts(timeout_s=30.0)])
        box = sims.world.faults["dydx"]
        while conn.recv() != "stop":
            conn.send((box.requests, box.connections))
            box.forget_connections()


async def _stall_watch(stop: asyncio.Event, worst: list[float]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(0.005)
        worst[0] = max(worst[0], time.perf_counter() - t0 - 0.005)


async def _sweep(cfgs: list[Any]) -> tuple[float, float, float]:
    from primeguard.venues.dydx import DydxCollector

    stop, worst = asyncio.Event(), [0.0]
    watch = asyncio.create_task(_stall_watch(stop, worst))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    snaps = await DydxCollector().collect_many(cfgs)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    stop.set()
    await watch
    if not all(s.ok for s in snaps):
        raise SystemExit("a dYdX account could not be read: the bench measures nothing")
    return wall, cpu, worst[0]


def measure(conn: Any, cfgs: list[Any], *, pooled: bool) -> dict[str, float]:
    """Best of ``ROUNDS`` sweeps: wall, CPU, stall, and the TCP connections one sweep opened."""
    from dydx_v4_client.indexer.rest.indexer_client import IndexerClient

    import primeguard.venues.dydx.indexer as mod

    real = mod.PooledIndexerClient
    if not pooled:  # the library's request helper, as the adapter used it before
        mod.PooledIndexerClient = lambda url, timeout_s, http: IndexerClient(url, api_timeout=timeout_s)  # type: ignore[assignment,misc]
    try:
        best: dict[str, float] = {}
        for _ in range(ROUNDS):
            conn.send("count")  # and start counting afresh
            conn.recv()
            wall, cpu, stall = asyncio.run(_sweep(cfgs))
            conn.send("count")
            _, connections = conn.recv()
            got = {"wall_s": wall, "cpu_s": cpu, "stall_s": stall, "connections": float(connections)}
            best = got if not best else {k: min(best[k], v) for k, v in got.items()}
        return best
    finally:
        mod.PooledIndexerClient = real  # type: ignore[misc]


def main() -> int:
    from primeguard.config.schema import DydxAccountConfig
    from primeguard.venues.dydx.indexer import MAX_CONNECTIONS

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child,), daemon=True)
    proc.start()
    try:
        cfgs = [DydxAccountConfig.model_validate(a) for a in parent.recv()]
        cfgs = [c.model_copy(update={"node_grpc": None}) for c in cfgs]  # the indexer alone
        base = measure(parent, cfgs, pooled=False)
        ours = measure(parent, cfgs, pooled=True)
    finally:
        parent.send("stop")
        proc.join(10)
    ok = ours["cpu_s"] <= base["cpu_s"] / 2 and ours["connections"] <= MAX_CONNECTIONS
    extra = {f"{side}_{k}": round(v, 4) for side, got in (("ours", ours), ("baseline", base)) for k, v in got.items()}
    results = [
        Result(f"dydx_indexer_collect_{ACCOUNTS}_cpu", ours["cpu_s"], base["cpu_s"],
               f"≤½ baseline CPU, ≤{MAX_CONNECTIONS} connections", ok, extra),
        Result(f"dydx_indexer_collect_{ACCOUNTS}_wall_info", ours["wall_s"], base["wall_s"], "informational", True),
        Result(f"dydx_indexer_collect_{ACCOUNTS}_loop_stall_info", ours["stall_s"], base["stall_s"],
               "informational", True),
    ]
    print(f"# {ACCOUNTS} dYdX addresses, indexer only, simulator in a child process, best of {ROUNDS}")
    report(results)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
