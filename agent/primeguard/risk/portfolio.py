"""The whole book in one call: what the sweep and the daemon run every cycle.

- :func:`revalue_book` values every client (Decimal, the decision path), sharing the per-asset
  work between clients that use the same parameters.
- :func:`assess` adds, per client, the ladder step, the one ``LTV_*`` finding the ladder implies,
  and the exact stress results; :class:`ClientRisk` is what ``sweep --json`` prints per client.

Parameters may differ per client (tiers); the price book is shared: the policy's oracle settings
(deviation threshold, freshness) are book-wide.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from primeguard.domain.findings import Finding
from primeguard.risk.ladder import LadderStatus, initial, ladder_finding, step
from primeguard.risk.params import RiskParameters
from primeguard.risk.pricing import PriceBook
from primeguard.risk.stress import StressResult, StressScenario, default_scenarios, stress
from primeguard.risk.valuation import ClientBook, ClientValuation, ValuationContext, finding_json, valuate

ParamsArg = RiskParameters | Mapping[str, RiskParameters]


def params_for(params: ParamsArg, client_id: str) -> RiskParameters:
    """The client's parameters. A mapping without the client raises ``KeyError``: never guess a tier."""
    if isinstance(params, RiskParameters):
        return params
    return params[client_id]


def revalue_book(books: Iterable[ClientBook], prices: PriceBook, params: ParamsArg,
                 now: datetime) -> list[ClientValuation]:
    """Value every client, in input order.

    Args:
        books: one :class:`ClientBook` per client.
        prices: the sweep's price book.
        params: one parameter set for everyone, or one per client id.
        now: the valuation instant.
    """
    contexts: dict[int, ValuationContext] = {}
    out: list[ClientValuation] = []
    with gc_paused():
        for book in books:
            p = params_for(params, book.client.id)
            ctx = contexts.get(id(p))
            if ctx is None:
                ctx = contexts[id(p)] = ValuationContext(prices, p)
            out.append(valuate(book, prices, p, now, context=ctx))
    return out


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a batch that allocates only acyclic objects.

    Valuing a client allocates a few dozen small containers, none in a reference cycle, so
    reference counting frees everything and the collector's passes can reclaim nothing; at
    10,000 clients those passes (each full one walks every live object, the observation
    included) cost about a third of the batch. The previous state is restored on exit.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass(frozen=True)
class ClientRisk:
    """One client after a sweep: valuation, ladder (before and after), stress, all findings."""

    valuation: ClientValuation
    previous: LadderStatus
    ladder: LadderStatus
    stress: tuple[StressResult, ...]
    findings: tuple[Finding, ...]  # the valuation's findings plus the ladder's LTV_* finding

    @property
    def client_id(self) -> str:
        return self.valuation.client_id

    @property
    def moved(self) -> bool:
        return self.ladder.state != self.previous.state

    def to_json_dict(self) -> dict[str, Any]:
        v = self.valuation.to_json_dict()
        v["ladder"] = {**self.ladder.to_json_dict(), "previous": self.previous.state.label, "moved": self.moved}
        v["stress"] = [r.to_json_dict() for r in self.stress]
        v["findings"] = [finding_json(f) for f in self.findings]
        return v


def assess(books: Sequence[ClientBook], prices: PriceBook, params: ParamsArg, now: datetime, *,
           ladder: Mapping[str, LadderStatus] | None = None,
           scenarios: Sequence[StressScenario] | None = None, with_stress: bool = True) -> list[ClientRisk]:
    """Value, step the ladder and stress every client.

    Args:
        books: the clients.
        prices: the sweep's price book.
        params: one parameter set, or one per client id.
        now: the sweep instant.
        ladder: each client's previous status; a client without one starts at normal.
        scenarios: stress scenarios; default: :func:`default_scenarios` over the client's venues.
        with_stress: False skips stress (the oracle fast path only needs the ladder).
    """
    prev_all = ladder or {}
    out: list[ClientRisk] = []
    for book, val in zip(books, revalue_book(books, prices, params, now), strict=True):
        p = params_for(params, book.client.id)
        prev = prev_all.get(book.client.id) or initial(now)
        # A blind client holds its rung: its visible LTV is only a bound, and halting on a data
        # outage does harm of its own. The BLIND_SPOT finding brings a person in instead.
        cur = step(prev, None if val.blind else val.ltv, now, p.ladder, blind=val.blind)
        found = list(val.findings)
        lf = ladder_finding(book.client.id, cur, val.ltv, p.ladder)
        if lf is not None:
            found.append(lf)
        results: tuple[StressResult, ...] = ()
        if with_stress:
            scs = scenarios if scenarios is not None else default_scenarios(set(book.account_venues.values()))
            results = tuple(stress(book, prices, p, now, sc) for sc in scs)
        out.append(ClientRisk(val, prev, cur, results, tuple(found)))
    return out
