"""Shared reporting for ``make bench``: a table for people, then one JSON line per result."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CORE_KEYS = ("bench", "ours", "baseline", "unit", "ratio", "floor", "target", "ok")


@dataclass
class Result:
    """One benchmark result. Its JSON line always has the keys ``CORE_KEYS``:

    - ``ours`` / ``baseline``: measured values in ``unit`` (seconds unless said otherwise);
    - ``ratio``: baseline ÷ ours (how many times better ours is);
    - ``floor``: the best any implementation could do under the bench's model (e.g. latency ×
      requests ÷ in-flight limit), or null where the bench has none;
    - ``target`` (in words) and ``ok`` (the target was met);

    and, where they apply, ``modelled`` / ``extrapolated`` notes saying which figure was not measured
    in full (e.g. a polling baseline modelled from a measured sweep, a baseline timed on a subset).
    """

    bench: str
    ours_s: float
    baseline_s: float
    target: str
    ok: bool
    extra: dict[str, Any] = field(default_factory=dict)
    floor_s: float | None = None
    unit: str = "s"
    modelled: str | None = None
    extrapolated: str | None = None

    @property
    def ratio(self) -> float:
        return self.baseline_s / self.ours_s if self.ours_s > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        clash = set(self.extra) & {*CORE_KEYS, "modelled", "extrapolated"}
        if clash:
            raise ValueError(f"{self.bench}: extra keys {sorted(clash)} would hide the core keys")
        core: dict[str, Any] = {"bench": self.bench, "ours": round(self.ours_s, 6),
                                "baseline": round(self.baseline_s, 6), "unit": self.unit,
                                "ratio": round(self.ratio, 2),
                                "floor": None if self.floor_s is None else round(self.floor_s, 6),
                                "target": self.target, "ok": self.ok}
        notes = {k: v for k, v in (("modelled", self.modelled), ("extrapolated", self.extrapolated)) if v}
        return {**core, **notes, **self.extra}

    def line(self) -> str:
        return json.dumps(self.to_json())


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
    print(f"{'bench':<{width}}  {'ours':>10}  {'baseline':>11}  {'unit':<4}  {'ratio':>8}  {'floor':>8}  "
          f"{'target':<28} ok")
    for r in results:
        floor = "-" if r.floor_s is None else f"{r.floor_s:.4f}"
        print(f"{r.bench:<{width}}  {r.ours_s:>10.4f}  {r.baseline_s:>11.4f}  {r.unit:<4}  {r.ratio:>8.1f}  "
              f"{floor:>8}  {r.target:<28} {'yes' if r.ok else 'NO'}")
    for r in results:
        print(r.line())


__all__ = ["CORE_KEYS", "Result", "percentile", "report", "statistics", "timed"]
