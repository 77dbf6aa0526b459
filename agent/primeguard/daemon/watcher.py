"""Watch chains for oracle updates and react at once (not at the next scheduled sweep).

One WebSocket ``logs`` subscription per chain on the configured feeds' ``AnswerUpdated`` event.
A dropped connection is retried with backoff and reported; while a chain is not watched, the
scheduled sweep still covers it (the watcher only makes reaction faster, never the only path).
Every connection (the first and each reconnect) first asks the node's ``eth_chainId``: a node on
another chain than the config names is not subscribed to and none of its logs is trusted; it is
recorded in ``wrong_chain`` and retried with backoff (the sweep marks the chain blind).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from web3 import AsyncWeb3, WebSocketProvider

from primeguard.config.schema import ChainConfig, PrimeguardConfig
from primeguard.domain.errors import ChainIdMismatch

log = logging.getLogger(__name__)
STOP_RETRY_S = 0.5  # how often stop() cancels a watching task again until it has ended
ANSWER_UPDATED = "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f"


@dataclass(frozen=True)
class OracleUpdate:
    """One AnswerUpdated log: the feed, its asset, the raw answer (feed decimals), round and block,
    and the round's ``updatedAt`` from the log's data (unix seconds; ``None`` when the data is not
    one 32-byte word)."""

    chain: str
    feed: str
    asset: str
    answer: int
    round_id: int
    block: int
    updated_at: int | None = None


Handler = Callable[[OracleUpdate], Awaitable[object]]


class OracleWatcher:
    """Calls ``handler`` for every AnswerUpdated log on the configured feeds, per chain."""

    def __init__(self, cfg: PrimeguardConfig, handler: Handler, *, retry_s: float = 1.0) -> None:
        self.cfg = cfg
        self.handler = handler
        self.retry_s = retry_s
        self.connected: dict[str, bool] = {}
        self.wrong_chain: dict[str, int | None] = {}  # chain -> the id its node answered, while wrong
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        """Start one watching task per chain with a WebSocket URL and feeds (call inside the running loop). Returns
        at once."""
        for chain in self.cfg.chains:
            if chain.ws_url and self.cfg.feeds_on(chain.id):
                self._tasks.append(asyncio.create_task(self._run(chain), name=f"watch:{chain.id}"))

    async def stop(self) -> None:
        """Stop the watching tasks and wait for them; never raises. Idempotent.

        A cancellation that lands inside the WebSocket client's connect or disconnect can be
        swallowed there (the task then subscribes and listens on): the tasks are told to stop and
        cancelled again until each has ended, so a SIGTERM during a (re)connect still stops the
        daemon."""
        self._stopping = True
        pending = {t for t in self._tasks if not t.done()}
        while pending:
            for t in pending:
                t.cancel()
            _done, pending = await asyncio.wait(pending, timeout=STOP_RETRY_S)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _run(self, chain: ChainConfig) -> None:
        feeds = {f.address.lower(): f for f in self.cfg.feeds_on(chain.id)}
        delay = self.retry_s
        while not self._stopping:
            try:
                async with AsyncWeb3(WebSocketProvider(chain.ws_url)) as w3:
                    await self._check_chain(w3, chain)
                    await w3.eth.subscribe("logs", {"address": [f.address for f in feeds.values()],
                                                    "topics": [ANSWER_UPDATED]})
                    self.connected[chain.id] = True
                    delay = self.retry_s
                    async for message in w3.socket.process_subscriptions():
                        if self._stopping:
                            return
                        await self._dispatch(chain.id, feeds, message.get("result", message))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any transport failure: report, back off, retry
                self.connected[chain.id] = False
                if self._stopping:
                    return
                log.warning("oracle watcher for %s disconnected (%s); retrying in %.1f s", chain.id,
                            type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _check_chain(self, w3: Any, chain: ChainConfig) -> None:
        """Raise :class:`ChainIdMismatch` unless this connection's node serves the configured chain."""
        try:
            actual: int | None = int(await w3.eth.chain_id)
        except (TypeError, ValueError):
            actual = None
        if actual != chain.chain_id:
            self.wrong_chain[chain.id] = actual
            log.error("oracle watcher for %s: node answers chain id %s, the config says %s; its logs are "
                      "ignored", chain.id, actual, chain.chain_id)
            raise ChainIdMismatch(f"node answers chain id {actual}", venue=f"evm:{chain.id}",
                                  expected=chain.chain_id, actual=actual)
        self.wrong_chain.pop(chain.id, None)

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
        await self.handler(OracleUpdate(chain, feed.address, feed.asset, answer, round_id, block,
                                        _word(log_entry.get("data"))))


def _word(data: Any) -> int | None:
    """The unsigned integer in a log's data when it is exactly one 32-byte word, else ``None``."""
    try:
        raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)
    except (TypeError, ValueError):
        return None
    return int.from_bytes(raw, "big") if len(raw) == 32 else None
