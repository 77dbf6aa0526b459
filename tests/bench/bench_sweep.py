"""Issue L benchmark: the daemon's real sweep (``Guardian.sweep``: collect, policy, evaluate with
stress, alerts, persist, playbooks) on a mixed 1,000- and 10,000-client world.

World (tests/bench/sweep_world.py): per client three CEX sub-accounts (Binance, OKX, Bybit), a
dYdX address, EOAs on two chains, a Safe, a vault; 50 perp positions; a loan. The shipped policy
with a 10,000-entry allowlist, served by the store's policy source (parsed once, before timing:
the daemon parses a version once, then only checks its hash). The venues are simulated in-process:
the collector returns the observation they would give, so the venue wait is excluded by
construction and ``ours`` is the sweep's own time (every stage but ``collect``).

Floor, measured in the same run: the same rows (snapshots, metric points, findings) written by
one executemany per table into an empty copy of the schema, plus the same book through the float
fast path (``grid_inputs`` + ``stress_grid``: the correlated shocks, the funding spike, each venue
dark and each held asset alone −50 %). ``baseline`` in the line is that floor; ``ratio`` is
floor ÷ ours (1.0 would be the floor itself).

Targets: ours ≤ 2 × floor; the 10,000-client sweep costs at most 1.2× per client what the
1,000-client one does; RSS after the 10,000-client sweep < 1 GB.
Run: ``PYTHONPATH=agent .venv/bin/python tests/bench/bench_sweep.py [--clients 1000,10000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import multiprocessing as mp
import queue
import resource
import sqlite3
import sys
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psutil
from tests.bench.benchlib import Result, report
from tests.bench.sweep_world import World, build, config_dict_size

from primeguard.daemon.guardian import Guardian
from primeguard.domain.observation import account_venue
from primeguard.pipeline.collect import CollectStats
from primeguard.pipeline.outcome import SweepOutcome
from primeguard.risk.stress import StressScenario, default_scenarios, grid_inputs, stress_grid

TABLES = ("snapshots", "metric_history", "findings")
MODELLED = ("venues simulated in-process (collect returns the world's observation; venue wait excluded); "
            "baseline = floor: same rows in one executemany per table + float stress grid, same run; "
            "ours and floor in process CPU seconds (the machine is shared), wall in wall_s")


def sweep(world: World) -> tuple[Guardian, SweepOutcome, float]:
    """A steady-state daemon sweep over ``world``: the policy parsed and a first sweep run before
    (as a running daemon has them; the first sweep opens and alerts every finding once), then one
    timed sweep. Returns the guardian, the timed sweep and its CPU seconds less the collect stage."""
    taken = [world.obs.taken_at]

    async def simulated(cfg: object, now: object = None) -> tuple[object, CollectStats]:
        taken[0] += timedelta(seconds=10)  # the next sweep of a 10 s schedule
        return replace(world.obs, taken_at=taken[0]), CollectStats(0.0, len(world.obs.snapshots), 0)

    g = Guardian(world.cfg, config_dir=world.config_dir, replica_id="bench")
    g.collect = simulated  # type: ignore[assignment]
    assert g.policy() is not None, "the bench policy must load"
    asyncio.run(g.sweep("warm-up"))
    gc.collect()
    kept: list[SweepOutcome] = []

    async def timed() -> None:
        # The outcome is kept aside, not returned: asyncio.run restores its SIGINT handler on the
        # way out and formats the repr of the finished main task, result included (a whole
        # sweep's dataclasses, about a second at 1,000 clients); a daemon never pays that.
        kept.append(await g.sweep("bench"))

    c0 = time.process_time()
    asyncio.run(timed())
    cpu = time.process_time() - c0
    out = kept[0]
    return g, out, cpu - out.stages.get("collect", 0.0)


def floor_rows(world: World, sweep_id: str) -> float:
    """CPU seconds to write the timed sweep's rows again (its snapshots and metric points, the
    findings), one executemany per table, one commit."""
    src = sqlite3.connect(world.config_dir / "sweep.db")
    dst_path = world.config_dir / "floor.db"
    dst_path.unlink(missing_ok=True)
    dst = sqlite3.connect(dst_path)
    rows = {}
    for t in TABLES:
        ddl = src.execute("select sql from sqlite_master where type='table' and name=?", (t,)).fetchone()[0]
        dst.execute(ddl)
        where = "" if t == "findings" else f" where sweep_id = '{sweep_id}'"
        rows[t] = src.execute(f"select * from {t}{where}").fetchall()
    dst.commit()
    t0 = time.process_time()
    for t, data in rows.items():
        if data:
            dst.executemany(f"insert into {t} values ({','.join('?' * len(data[0]))})", data)
    dst.commit()
    seconds = time.process_time() - t0
    src.close()
    dst.close()
    return seconds


def floor_book(out: SweepOutcome) -> float:
    """Seconds for the same book on the float fast path (valuations reused; every scenario the
    exact path runs, the single-asset one as one per-asset shock per held asset)."""
    ev = out.evaluation
    vals = list(ev.valuations.values())
    params = next(iter(ev.params.values()))
    venues = sorted({account_venue(s) for s in out.observation.snapshots})
    scenarios = [s for s in default_scenarios(venues) if s.idiosyncratic is None]
    held = sorted({a for v in vals for a in v.balance_values} | {a for v in vals for a in v.net_delta_qty})
    scenarios += [StressScenario(f"{a} -50%", {a: Decimal("-0.5")}) for a in held if a not in params.stablecoins]
    t0 = time.process_time()
    stress_grid(grid_inputs(vals, dark_venues=venues), scenarios, params)
    return time.process_time() - t0


def run(n: int, tmp: Path) -> tuple[float, float, float, dict[str, object]]:
    t0 = time.perf_counter()
    world = build(n, tmp)
    build_s = time.perf_counter() - t0
    g, out, ours = sweep(world)
    rows_s = floor_rows(world, out.sweep_id)
    book_s = floor_book(out)
    rss = psutil.Process().memory_info().rss / 2**20
    extra: dict[str, object] = {**config_dict_size(world), "wall_s": round(out.seconds, 3),
                                "stages_wall_s": {k: round(v, 3) for k, v in out.stages.items()},
                                "floor_rows_s": round(rows_s, 3), "floor_book_s": round(book_s, 3),
                                "rss_mb": round(rss), "world_build_s": round(build_s, 1),
                                "policy_parses": g.runtime.policy_source.parses}
    g.runtime.close()
    return ours, rows_s + book_s, rss, extra


def _child(n: int, out: Any) -> None:
    """One world size in its own process (its peak RSS is then that size's alone)."""
    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as tmp:
        ours, floor, rss, extra = run(n, Path(tmp))
    extra["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux: KiB
    out.put((ours, floor, rss, extra))


def measure(n: int, deadline_s: float) -> tuple[float, float, float, dict[str, object]] | None:
    """Run size ``n`` in a child process; None when it has not finished within ``deadline_s``."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(n, q))
    p.start()
    try:
        return cast(tuple[float, float, float, dict[str, object]], q.get(timeout=deadline_s))
    except queue.Empty:
        return None
    finally:
        if p.is_alive():
            p.terminate()
        p.join()


def main() -> int:
    logging.disable(logging.CRITICAL)
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", default="1000,10000")
    ap.add_argument("--deadline-s", type=float, default=3600.0,
                    help="give up on a size after this many wall seconds (the line then says so)")
    args = ap.parse_args()
    sizes = [int(x) for x in args.clients.split(",")]
    results: list[Result] = []
    per_client: dict[int, float] = {}
    for n in sizes:
        got = measure(n, args.deadline_s)
        target = "ours <= 2x floor" + ("; per client <= 1.2x the smallest size's" if per_client else "") + \
            ("; RSS < 1 GB" if n >= 10_000 else "")
        if got is None:
            note = f"did not finish within {args.deadline_s:.0f} s wall on this machine: not measured"
            results.append(Result(f"sweep_e2e_{n}", args.deadline_s, 0.0, target, False,
                                  {"clients": n, "finished": False, "note": note}, modelled=MODELLED))
            print(f"# {results[-1].line()}", file=sys.stderr, flush=True)
            continue
        ours, floor, rss, extra = got
        per_client[n] = ours / n
        ok = ours <= 2 * floor
        extra["ours_over_floor"] = round(ours / floor, 2) if floor > 0 else None
        extra["per_client_cpu_ms"] = round(1000 * ours / n, 3)
        small = min(per_client)
        if n != small:
            scale = per_client[n] / per_client[small]
            extra["per_client_vs_smallest"] = round(scale, 3)
            ok = ok and scale <= 1.2
        if n >= 10_000:
            ok = ok and max(rss, float(cast(int, extra["ru_maxrss_mb"]))) < 1024
        results.append(Result(f"sweep_e2e_{n}", ours, floor, target, ok, extra, floor_s=floor, modelled=MODELLED))
        print(f"# {results[-1].line()}", file=sys.stderr, flush=True)  # progress: the 10,000-client run is long
    report(results)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
