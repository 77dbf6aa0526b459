"""The one protocol every venue adapter implements, whatever its kind (CEX, EVM chain, dYdX).

A :class:`Collector` reads a venue into domain values; a venue that can act (cancel orders, disable
keys, ...) also offers :class:`Levers`. Adapters are registered in one place,
:mod:`primeguard.venues.registry`, which the sweep pipeline iterates: adding a venue is adding a
module and one registry line, never a branch in the pipeline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from primeguard.domain.findings import Finding
from primeguard.domain.model import PriceQuote
from primeguard.domain.observation import AccountSnapshot

if TYPE_CHECKING:
    from primeguard.config.schema import PrimeguardConfig


@dataclass(frozen=True)
class VenueResult:
    """What one venue gave in one collection.

    ``snapshots``: one per configured account, in config order, read or blind (``ok=False`` with a
    finding); ``prices``: quotes the venue itself published (oracle rounds, marks); ``findings``:
    venue-wide findings not tied to one account (a chain down, a stale feed); ``stats``: counters
    for operators (e.g. ``round_trips``), reported as ``<venue>_<counter>``; never used in decisions.
    """

    snapshots: tuple[AccountSnapshot, ...]
    prices: tuple[PriceQuote, ...] = ()
    findings: tuple[Finding, ...] = ()
    stats: Mapping[str, int] = field(default_factory=dict)


@runtime_checkable
class Collector(Protocol):
    """Reads one kind of venue.

    ``collect`` never raises for a venue fault (unreachable, 429, malformed answer, wrong chain):
    the account becomes a blind snapshot with a finding, so other venues are unaffected. It never
    moves funds or writes anything.
    """

    name: str

    def configured(self, cfg: PrimeguardConfig) -> bool:
        """Whether ``cfg`` has anything for this venue to read (pure; no I/O)."""
        ...

    async def collect(self, cfg: PrimeguardConfig, now: datetime) -> VenueResult:
        """Read every configured account of this venue concurrently (``now``: the sweep's time).

        A collector may also accept a keyword ``session`` (a
        :class:`~primeguard.venues.session.VenueSession` or ``None``): the daemon's kept-open pools.
        The pipeline passes it only to collectors whose ``collect`` names it; with ``None``, or a
        session of another event loop, the collector reads exactly as without one."""
        ...


Lever = Callable[[Any], Awaitable[Mapping[str, Any]]]
"""A playbook lever: takes the action row, returns what it did; idempotent (safe to re-run)."""


@runtime_checkable
class Levers(Protocol):
    """A venue that can act on the ladder's behalf (cancel orders, close positions, disable keys)."""

    name: str

    def levers(self, cfg: PrimeguardConfig, *, config_dir: Path) -> dict[str, Lever]:
        """The playbook levers by action kind (e.g. ``halt_cex``); builds clients, does no I/O."""
        ...
