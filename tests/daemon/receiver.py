"""A local webhook receiver for daemon tests: records every JSON POST with its arrival time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from primeguard.sandbox.anvil import free_port


class Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[float, Any]] = []
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        app = web.Application()

        async def hook(req: web.Request) -> web.Response:
            self.got.append((time.monotonic(), await req.json()))
            return web.Response(text="ok")

        app.router.add_post("/hook", hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def wait_for(self, pred, timeout: float = 60.0, after: float = 0.0) -> tuple[float, Any]:
        """The first webhook (arrival time, body) at or after ``after`` matching ``pred``; waits up to a
        generous ``timeout`` (a deadline, not a latency target: latency is ``make bench``'s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, body in self.got:
                if t >= after and pred(body):
                    return t, body
            await asyncio.sleep(0.005)
        raise AssertionError(f"no matching webhook within {timeout} s; got {[b for _, b in self.got]}")
