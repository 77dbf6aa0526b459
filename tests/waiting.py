"""Condition waits with generous deadlines: tests wait for *what* must happen, never assert *how fast*.

Latency belongs to ``make bench``; a test that needs something to finish waits for it with a
deadline far above any normal run (``GENEROUS_S``) and fails with a message if it never comes
(a hang), so a loaded machine makes a test slower, never red.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")
GENEROUS_S = 60.0


def wait_until(pred: Callable[[], Any], *, deadline_s: float = GENEROUS_S, interval_s: float = 0.02,
               what: str = "the condition") -> Any:
    """Poll ``pred`` until it returns something truthy (returned); AssertionError after ``deadline_s``."""
    end = time.monotonic() + deadline_s
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"{what} did not hold within {deadline_s:g} s")
        time.sleep(interval_s)


async def await_until(pred: Callable[[], Any], *, deadline_s: float = GENEROUS_S, interval_s: float = 0.01,
                      what: str = "the condition") -> Any:
    """:func:`wait_until` for a running event loop (sleeps with ``asyncio.sleep``)."""
    end = time.monotonic() + deadline_s
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"{what} did not hold within {deadline_s:g} s")
        await asyncio.sleep(interval_s)


def run_within(coro: Awaitable[T], *, deadline_s: float = GENEROUS_S, what: str = "the call") -> T:
    """``asyncio.run(coro)``, failing (not hanging) when it has not finished within ``deadline_s``.
    Use it where a timeout of ours must bound a hang: make the hang longer than the deadline."""

    async def bounded() -> T:
        limit = asyncio.timeout(deadline_s)
        try:
            async with limit:
                return await coro
        except TimeoutError:
            if limit.expired():
                raise AssertionError(f"{what} did not finish within {deadline_s:g} s: a hang") from None
            raise

    return asyncio.run(bounded())
