"""Indexer reads share one connection pool: a collection of many accounts opens a bounded number of
TCP connections (counted by the simulator, server side), every connection is closed when the
collection ends, and a failed request leaves the pool usable."""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit

import psutil
import pytest
from tests.waiting import run_within

from primeguard.domain.errors import VenueUnavailable
from primeguard.sandbox.faults import FaultConfig
from primeguard.venues.dydx import collect_many
from primeguard.venues.dydx.indexer import MAX_CONNECTIONS, IndexerReader

ACCOUNTS = 3 * MAX_CONNECTIONS  # well past one pool's connections: a connection per request would show


def open_to(url: str) -> list[object]:
    """This process's TCP connections to ``url``'s port that are still open."""
    port = urlsplit(url).port
    return [c for c in psutil.Process(os.getpid()).net_connections(kind="tcp")
            if c.raddr and c.raddr.port == port and c.status != psutil.CONN_CLOSE_WAIT]


@pytest.fixture
def crowd(sims_factory, world):
    clients = [{"id": f"firm-{i}", "dydx": [{"subaccounts": [{"number": 0, "usdc": str(100 + i)}]}]}
               for i in range(ACCOUNTS)]
    return sims_factory(world(clients=clients))


def test_a_collection_of_many_accounts_opens_a_bounded_number_of_connections(crowd):
    box = crowd.world.faults["dydx"]
    cfgs = [c.model_copy(update={"timeout_s": 30.0, "node_grpc": None}) for c in crowd.config_accounts()]
    for sweep in (1, 2):
        snaps = run_within(collect_many(cfgs), what=f"{ACCOUNTS} accounts, sweep {sweep}")
        assert all(s.ok for s in snaps) and len(snaps) == ACCOUNTS
        assert box.requests == sweep * (ACCOUNTS + 2)  # one subaccount read each, height and markets once
        # one pool per collection: at most MAX_CONNECTIONS each (a client per request opened 50 per sweep)
        assert box.connections <= sweep * MAX_CONNECTIONS, box.connections
        assert open_to(crowd.urls["indexer"]) == []  # the pool was closed before collect_many returned


def test_sequential_reads_reuse_one_connection_and_close_it(sims):
    url = sims.urls["indexer"]
    alpha = sims.config_accounts()[0]

    async def reads() -> IndexerReader:
        async with IndexerReader(url, 30.0) as reader:
            await reader.head()
            await reader.markets()
            for n in alpha.subaccounts:
                await reader.subaccount(alpha.address, n)
            assert len(open_to(url)) == 1
        return reader

    reader = run_within(reads(), what="sequential indexer reads")
    assert sims.world.faults["dydx"].requests == 4 and sims.world.faults["dydx"].connections == 1
    assert reader.pool.http.is_closed and open_to(url) == []


def test_a_timeout_does_not_poison_the_pool(sims):
    url = sims.urls["indexer"]

    async def hang_then_read() -> int:
        async with IndexerReader(url, 1.0) as reader:
            sims.set_faults("dydx", FaultConfig(timeout_rate=1, timeout_s=600))
            with pytest.raises(VenueUnavailable) as hung:
                await reader.head()
            assert hung.value.code == "timeout"
            sims.set_faults("dydx", FaultConfig())
            return (await reader.head()).height

    assert run_within(hang_then_read(), what="a read after a timeout") > 0
    assert open_to(url) == []


def test_a_shared_read_is_not_left_running_on_a_closed_pool(sims):
    """Every account gives up on a hanging indexer: the shared height/markets read is cancelled and
    awaited before the pool closes (nothing runs on, nothing is left unretrieved)."""
    sims.set_faults("dydx", FaultConfig(timeout_rate=1, timeout_s=600))
    cfgs = [c.model_copy(update={"timeout_s": 1.0, "node_grpc": None}) for c in sims.config_accounts()]

    async def sweep() -> int:
        snaps = await collect_many(cfgs)
        assert not any(s.ok for s in snaps)
        return len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])

    assert run_within(sweep(), what="a sweep against a hanging indexer") == 0
    assert open_to(sims.urls["indexer"]) == []
