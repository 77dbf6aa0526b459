"""Watch chains for oracle updates and react at once (not at the next scheduled sweep).

One WebSocket ``logs`` subscription per chain on the configured feeds' ``AnswerUpdated`` event.
A dropped connection is retried with backoff and reported; while a chain is not watched, the
scheduled sweep still covers it (the watcher only makes reaction faster, never the only path).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from web3 import AsyncWeb3, WebSocketProvider

from primeguard.config.schema import ChainConfig, PrimeguardConfig

log = logging.getLogger(__name__)
ANSWER_UPDATED = "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f"


@dataclass(frozen=True)
class OracleUpdate:
    chain: str
    feed: str
    asset: str
    answer: int
    round_id: int
    block: int


Handler = Callable[[OracleUpdate], Awaitable[None]]


class OracleWatcher:
    """Calls ``handler`` for every AnswerUpdated log on the configured feeds, per chain."""

    def __init__(self, cfg: PrimeguardConfig, handler: Handler, *, retry_s: float = 1.0) -> None:
        self.cfg = cfg
        self.handler = handler
        self.retry_s = retry_s
        self.connected: dict[str, bool] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for chain in self.cfg.chains:
            if chain.ws_url and self.cfg.feeds_on(chain.id):
                self._tasks.append(asyncio.create_task(self._run(chain), name=f"watch:{chain.id}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _run(self, chain: ChainConfig) -> None:
        feeds = {f.address.lower(): f for f in self.cfg.feeds_on(chain.id)}
        delay = self.retry_s
        while True:
            try:
                async with AsyncWeb3(WebSocketProvider(chain.ws_url)) as w3:
                    await w3.eth.subscribe("logs", {"address": [f.address for f in feeds.values()],
                                                    "topics": [ANSWER_UPDATED]})
                    self.connected[chain.id] = True
                    delay = self.retry_s
                    async for message in w3.socket.process_subscriptions():
                        await self._dispatch(chain.id, feeds, message.get("result", message))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any transport failure: report, back off, retry
                self.connected[chain.id] = False
                log.warning("oracle watcher for %s disconnected (%s); retrying in %.1f s", chain.id,
                            type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _dispatch(self, chain: str, feeds: dict[str, Any], log_entry: Any) -> None:
        try:
            addr = str(log_entry["address"]).lower()
            topics = log_entry["topics"]
            answer = int.from_bytes(bytes(topics[1]), "big", signed=True)
            round_id = int.from_bytes(bytes(topics[2]), "big")
            block = int(log_entry["blockNumber"])
        except (KeyError, IndexError, TypeError, ValueError):
            log.warning("unparseable oracle log on %s", chain)
            return
        feed = feeds.get(addr)
        if feed is None:
            return
        await self.handler(OracleUpdate(chain, feed.address, feed.asset, answer, round_id, block))
