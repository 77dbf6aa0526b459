"""The oracle watcher stops even when a cancellation is swallowed on the way (the WebSocket client
catches ``CancelledError`` in parts of its connect and disconnect): a SIGTERM that lands during a
reconnect must still stop the daemon."""

from __future__ import annotations

import asyncio

from primeguard.config.schema import PrimeguardConfig
from primeguard.daemon.watcher import OracleWatcher


async def test_stop_ends_a_task_that_swallowed_the_first_cancel() -> None:
    watcher = OracleWatcher(PrimeguardConfig(), lambda update: asyncio.sleep(0))
    swallowed = asyncio.Event()

    async def listening_on() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:  # what the client library does inside connect()
            swallowed.set()
        await asyncio.sleep(3600)  # ...and the watcher goes on to subscribe and listen

    task = asyncio.create_task(listening_on())
    watcher._tasks.append(task)
    await asyncio.sleep(0)
    await asyncio.wait_for(watcher.stop(), timeout=30)  # a deadline, not a latency bound
    assert swallowed.is_set() and task.done() and not watcher._tasks
    await watcher.stop()  # idempotent
