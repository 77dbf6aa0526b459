"""The oracle fast path's pure half: reprice the last observation with one AnswerUpdated log.

An oracle log carries the feed's new answer, its round and its ``updatedAt``. Instead of reading
every venue again, the daemon takes the last complete observation it holds, replaces that feed's
quote with the log's answer (exact: the integer answer scaled by the configured decimals, through
the same round checks a sweep applies, :func:`primeguard.venues.evm.oracle.check_round`) and
re-evaluates only the clients that hold, owe or trade the asset.

Fail closed: whenever the log cannot be trusted as a price on top of that observation — no
observation yet, a feed that is not configured, a chain the last sweep could not read or that
answers the wrong chain id, a feed that gave no valid round last sweep, a round not newer than
the one held, or an answer the round checks refuse (not positive, stale, from the future) — the
result is a :class:`Refusal` and the daemon runs a full sweep instead (which reads the feed again
and marks its holders blind if it is bad). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from primeguard.config.schema import PrimeguardConfig
from primeguard.domain.model import PriceQuote, PriceSourceKind
from primeguard.domain.observation import Observation
from primeguard.venues.evm.oracle import FeedSpec, RawRound, check_round


@dataclass(frozen=True, slots=True)
class OracleLog:
    """What the fast path needs of one AnswerUpdated log: where from, the raw answer in feed units,
    its round and the feed's own ``updatedAt`` (unix seconds; ``None`` when the log had no data)."""

    chain: str
    feed: str
    asset: str
    answer: int
    round_id: int
    updated_at: int | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a log is not used on the fast path: ``reason`` (a short label for metrics:
    ``no_observation``, ``observation_old``, ``unknown_feed``, ``chain_blind``, ``wrong_chain``, ``feed_invalid``,
    ``old_round``, ``bad_answer``) and a sentence for the log."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Repriced:
    """The last observation with one feed's quote replaced, taken at ``observation.taken_at``."""

    observation: Observation
    quote: PriceQuote
    previous: PriceQuote


def reprice(cfg: PrimeguardConfig, last: Observation | None, log: OracleLog, now: datetime, *,
            wrong_chains: Iterable[str] = (), read_at: datetime | None = None,
            max_age_s: float | None = None) -> Repriced | Refusal:
    """``last`` with the quote of ``log``'s feed replaced by the log's answer, as of ``now``; or the
    reason it cannot be (see the module docstring). ``wrong_chains``: chains whose node the watcher
    found on another chain id. ``read_at``: when the venues behind ``last`` were read (its own
    ``taken_at`` when not given); older than ``max_age_s`` is refused (``observation_old``: the
    sweeps have not succeeded lately). Every other quote, snapshot and finding of ``last`` is kept
    as it was read (their ages are judged against ``now`` when the book is valued again)."""
    if last is None:
        return Refusal("no_observation", "no complete observation held yet")
    age = (now - (read_at or last.taken_at)).total_seconds()
    if max_age_s is not None and age > max_age_s:
        return Refusal("observation_old", f"the last observation was read {int(age)} s ago (limit {max_age_s:g} s)")
    feed = next((f for f in cfg.feeds_on(log.chain) if f.address.lower() == log.feed.lower()), None)
    if feed is None or feed.asset != log.asset:
        return Refusal("unknown_feed", f"feed {log.feed} on {log.chain} is not configured for {log.asset}")
    if log.chain in set(wrong_chains):
        return Refusal("wrong_chain", f"the node of {log.chain} answers another chain id")
    if any(f.subject == f"chain:{log.chain}" for f in last.findings):
        return Refusal("chain_blind", f"chain {log.chain} was not read cleanly by the last sweep")
    source_id = f"{feed.chain}:{feed.address}"
    held = [q for q in last.prices if q.source is PriceSourceKind.ORACLE and q.source_id == source_id]
    if not held:
        return Refusal("feed_invalid", f"{feed.asset}/USD feed on {feed.chain} gave no valid round last sweep")
    previous = max(held, key=lambda q: (q.round_id or 0, q.updated_at))
    if log.round_id <= (previous.round_id or 0):
        return Refusal("old_round", f"{feed.asset}/USD round {log.round_id} is not newer than the round held "
                                    f"({previous.round_id})")
    if log.updated_at is None:
        return Refusal("bad_answer", f"{feed.asset}/USD log carries no updatedAt")
    raw = RawRound(feed.address, feed.chain, ok=True, round_id=log.round_id, answer=log.answer,
                   started_at=log.updated_at, updated_at=log.updated_at, answered_in_round=log.round_id,
                   decimals=feed.decimals)
    quote, bad = check_round(raw, FeedSpec(feed.asset, feed.chain, feed.address, feed.decimals, feed.heartbeat_s),
                             now)
    if quote is None:
        return Refusal("bad_answer", "; ".join(f.message for f in bad) or "round refused")
    prices = tuple(q for q in last.prices if not (q.source is PriceSourceKind.ORACLE and q.source_id == source_id))
    return Repriced(replace(last, taken_at=now, prices=(*prices, quote)), quote, previous)


def carry_quotes(swept: Observation, later: Observation) -> Observation:
    """A sweep's observation ``swept`` that finished after ``later`` (a repriced observation made
    while the sweep was reading) was taken: the sweep's snapshots, findings and quotes, except that
    each oracle feed the sweep read keeps the newer round of the two; as of ``later.taken_at``. A
    feed the sweep did not read validly stays without a quote (its holders blind) whatever
    ``later`` held: the newer reading of the feed wins, never an older one."""
    fast = {q.source_id: q for q in later.prices if q.source is PriceSourceKind.ORACLE}
    prices = []
    for q in swept.prices:
        newer_round = fast.get(q.source_id) if q.source is PriceSourceKind.ORACLE else None
        keep_later = newer_round is not None and (newer_round.round_id or 0) > (q.round_id or 0)
        prices.append(newer_round if keep_later and newer_round is not None else q)
    return replace(swept, taken_at=max(swept.taken_at, later.taken_at), prices=tuple(prices))


def holders(cfg: PrimeguardConfig, obs: Observation, asset: str) -> set[str]:
    """The clients whose book moves with ``asset``'s price: a non-zero balance of it in any snapshot
    (blind snapshots included: their holder is re-evaluated, and stays blind), a position on it, or
    a loan in it."""
    out = {c.id for c in cfg.clients if c.loan is not None and c.loan.asset == asset}
    for snap in obs.snapshots:
        if (any(b.asset == asset and b.quantity for b in snap.balances)
                or any(p.underlying == asset and p.size for p in snap.positions)):
            out.add(snap.account.client_id)
    return out


def restricted(obs: Observation, clients: set[str]) -> Observation:
    """``obs`` with only the snapshots of ``clients``, without their credentials (valuation does not
    read them; the sweeps judge them), prices and observation findings kept."""
    return replace(obs, snapshots=tuple(replace(s, credentials=()) for s in obs.snapshots
                                        if s.account.client_id in clients))


def newer(stamps: Mapping[str, datetime], client_id: str, at: datetime) -> bool:
    """True when ``client_id``'s rung was last set from an observation taken after ``at``: a result
    computed from ``at`` must then not replace it (the newer observation wins)."""
    seen = stamps.get(client_id)
    return seen is not None and seen > at
