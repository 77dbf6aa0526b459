"""Venue connections kept open for a daemon's lifetime: :class:`VenueSession`.

Without a session every collection builds its clients and connection pools and closes them when it
ends (one-shot CLI sweeps, tests): ccxt clients with their TLS context and market list, one
``httpx`` client per dYdX indexer. The daemon instead opens one session on its event loop when it
starts and closes it when it stops; collectors that accept it (``collect(cfg, now, session=...)``)
keep their pools in it, so a steady sweep only does its requests.

A session is bound to the event loop that created it. From any other loop (or after it is closed)
:meth:`VenueSession.lease` yields ``None`` and the collector falls back to a pool of its own for the
call, exactly as without a session. A resource is kept for at most its ``max_age_s``, and a
collector that saw it misbehave (a transport failure, a refused key) :meth:`retires <Lease.retire>` it:
the next collection builds a fresh one. A retired resource is closed once the last collection using
it has finished. Resources hold what their collector gives them (CEX API keys inside ccxt clients,
as a per-sweep pool does); the session never logs them, nor anything about them but their key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger(__name__)


class Closable(Protocol):
    async def aclose(self) -> None: ...


R = TypeVar("R", bound=Closable)
S = TypeVar("S")


@dataclass(eq=False)
class Lease(Generic[R]):
    """One collection's use of a kept resource. ``retire()``: build a fresh one for the next
    collection (this one is closed when its last user is done)."""

    resource: R
    _slot: _Slot = field(repr=False)

    def retire(self) -> None:
        self._slot.retired = True


@dataclass(eq=False)
class _Slot:
    resource: Any
    created: float
    users: int = 0
    retired: bool = False
    closing: bool = False


class VenueSession:
    """Kept-open venue resources (client pools) by key, for the event loop that created it.

    Create it inside a running loop; close it with :meth:`aclose` on the same loop.
    ``builds`` counts the resources built, by key (operators and tests; never used in decisions).
    """

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self.builds: dict[str, int] = {}
        self._slots: dict[str, _Slot] = {}

    def usable(self) -> bool:
        """Whether the calling code may use this session: open, and called on its own loop."""
        if self.closed:
            return False
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    @contextlib.asynccontextmanager
    async def lease(self, key: str, build: Callable[[], R], *, max_age_s: float,
                    sound: Callable[[R], bool] | None = None) -> AsyncIterator[Lease[R] | None]:
        """The kept resource under ``key`` for the duration of the ``async with`` (built with
        ``build()`` when there is none, when it is older than ``max_age_s``, was retired, or
        ``sound(resource)`` says it is broken, e.g. its connection pool was closed). Yields ``None``
        when the session is not :meth:`usable` here: the caller then uses its own."""
        if not self.usable():
            yield None
            return
        slot = self._slots.get(key)
        if slot is not None and (slot.retired or time.monotonic() - slot.created > max_age_s
                                 or (sound is not None and not sound(slot.resource))):
            del self._slots[key]
            slot.retired = True
            if slot.users == 0:
                await self._close(slot)
            slot = None
        if slot is None:
            slot = self._slots[key] = _Slot(build(), time.monotonic())
            self.builds[key] = self.builds.get(key, 0) + 1
        slot.users += 1
        try:
            yield Lease(slot.resource, slot)
        finally:
            slot.users -= 1
            if slot.users == 0 and (slot.retired or self.closed or self._slots.get(key) is not slot):
                if self._slots.get(key) is slot:
                    del self._slots[key]
                await self._close(slot)

    async def _close(self, slot: _Slot) -> None:
        if slot.closing:
            return
        slot.closing = True
        await _close(slot.resource)

    async def aclose(self) -> None:
        """Close every kept resource (idempotent). One a collection is still using is closed when
        that collection ends; nothing is built any more."""
        if self.closed:
            return
        self.closed = True
        idle = [s for s in self._slots.values() if s.users == 0]
        await asyncio.gather(*(self._close(s) for s in idle), return_exceptions=True)


async def _close(resource: Closable) -> None:
    try:
        await resource.aclose()
    except Exception as exc:  # a pool that fails to close must not stop the daemon's shutdown
        log.warning("closing a kept venue pool failed: %s", type(exc).__name__)


class Sound(Closable, Protocol):
    @property
    def sound(self) -> bool: ...


K = TypeVar("K", bound=Sound)


async def read_over(session: VenueSession | None, key: str, build: Callable[[], K], *, max_age_s: float,
                    read: Callable[[K | None], Awaitable[Sequence[S]]],
                    suspect: Callable[[S], bool]) -> Sequence[S]:
    """A collection over the session's kept resource under ``key``: ``read(resource)``, then the
    resource retired when it is no longer ``sound`` or any item read is ``suspect`` (a broken
    client lasts one collection). Without a usable session, ``read(None)``: the collector's own
    per-call resource, as without a session."""
    if session is None:
        return await read(None)
    async with session.lease(key, build, max_age_s=max_age_s, sound=lambda r: r.sound) as lease:
        if lease is None:  # not this loop's session
            return await read(None)
        got = await read(lease.resource)
        if not lease.resource.sound or any(suspect(x) for x in got):
            lease.retire()
        return got
