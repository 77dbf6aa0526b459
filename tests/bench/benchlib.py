"""Shared reporting for ``make bench``: a table for people, then one JSON line per result."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    bench: str
    ours_s: float
    baseline_s: float
    target: str
    ok: bool
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.baseline_s / self.ours_s if self.ours_s > 0 else float("inf")

    def line(self) -> str:
        return json.dumps({"bench": self.bench, "ours_s": round(self.ours_s, 6),
                           "baseline_s": round(self.baseline_s, 6), "ratio": round(self.ratio, 2),
                           "target": self.target, "ok": self.ok, **self.extra})


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs and the last result."""
    best = float("inf")
    out: Any = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def percentile(samples: list[float], p: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def report(results: list[Result]) -> None:
    width = max(len(r.bench) for r in results)
    print(f"{'bench':<{width}}  {'ours s':>10}  {'baseline s':>11}  {'ratio':>8}  {'target':<28} ok")
    for r in results:
        print(f"{r.bench:<{width}}  {r.ours_s:>10.4f}  {r.baseline_s:>11.4f}  {r.ratio:>8.1f}  {r.target:<28} "
              f"{'yes' if r.ok else 'NO'}")
    for r in results:
        print(r.line())


__all__ = ["Result", "percentile", "report", "statistics", "timed"]
