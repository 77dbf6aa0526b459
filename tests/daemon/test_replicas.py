"""Several daemon replicas on one real PostgreSQL (started by the test): they split the book
through leases, never hold the same shard, a dead replica's shards move after the TTL, and an
action proposed by both is stored and run once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from primeguard.daemon.guardian import Guardian
from primeguard.daemon.leases import ShardLeases, shard_of
from primeguard.playbooks.engine import ActionSpec, Playbook
from primeguard.store import repos
from primeguard.store.db import open_store
from tests.pg import PostgresUnavailable, create_database, postgres_server

pytestmark = [pytest.mark.postgres, pytest.mark.chain]

CLIENTS = [{"id": f"firm-{i}", "wallets": [{"tokens": {"USDC": str(1000 + i)}}]} for i in range(8)]
WORLD = {"name": "replicas", "feeds": [{"asset": "USDC", "answer": "1", "heartbeat_s": 86400},
                                       {"asset": "ETH", "answer": "3000"}], "clients": CLIENTS}


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory):
    try:
        with postgres_server(tmp_path_factory.mktemp("pg")) as server:
            yield server
    except PostgresUnavailable as exc:
        pytest.skip(f"embedded PostgreSQL cannot run here: {exc}")


@pytest.fixture
def pg_url(pg_server, request):
    return create_database(pg_server, request.node.name.replace("test_", "db_")[:60])


def test_leases_split_and_take_over_after_ttl(pg_url):
    store = open_store(pg_url, migrate=True)
    t0 = datetime.now(UTC)
    a = ShardLeases(store, "replica-a", shards=4, ttl_s=5)
    b = ShardLeases(store, "replica-b", shards=4, ttl_s=5)
    a.refresh(t0)
    b.refresh(t0)
    a.refresh(t0 + timedelta(seconds=1))  # a learns there are two replicas: keeps its share
    b.refresh(t0 + timedelta(seconds=1))
    assert a.held.keys().isdisjoint(b.held.keys())
    assert set(a.held) | set(b.held) == {0, 1, 2, 3}
    # b dies (stops renewing). After the TTL, a's heartbeat sees one live replica and takes all.
    later = t0 + timedelta(seconds=7)
    assert a.refresh(later) == {0, 1, 2, 3}
    # b comes back: it can take nothing a still holds unexpired.
    b.held.clear()
    assert b.refresh(later + timedelta(seconds=1)).isdisjoint(a.held)


def test_two_guardians_sweep_disjoint_clients(pg_url, sandbox_factory, tmp_path):
    sb = sandbox_factory(WORLD)
    cfg = sb.config().model_copy(update={"store": sb.config().store.model_copy(update={"url": pg_url})})
    g1 = Guardian(cfg, config_dir=sb.workdir, replica_id="r1", shards=4, lease_ttl_s=30)
    g2 = Guardian(cfg, config_dir=sb.workdir, replica_id="r2", shards=4, lease_ttl_s=30)

    async def sweeps():
        await g1.sweep()
        await g2.sweep()
        o1 = await g1.sweep()
        o2 = await g2.sweep()
        return set(o1.evaluation.valuations), set(o2.evaluation.valuations)

    c1, c2 = asyncio.run(sweeps())
    assert c1.isdisjoint(c2) and c1 | c2 == {c["id"] for c in CLIENTS}
    assert all(shard_of(c, 4) in g1.leases.held for c in c1)
    g1.leases.release()
    g2.leases.release()


def test_action_proposed_by_both_replicas_runs_once(pg_url):
    store = open_store(pg_url, migrate=True)
    runs: list[str] = []

    async def lever(action):
        runs.append(action.id)
        return {"ok": True}

    spec = ActionSpec("margin_call", "firm-x", "firm-x:margin_call:e1", "automatic", {"ltv": "0.7"})
    p1, p2 = Playbook(store, {"margin_call": lever}), Playbook(open_store(pg_url), {"margin_call": lever})
    assert len(p1.propose([spec]) + p2.propose([spec])) == 1

    async def both():
        return await asyncio.gather(p1.run_ready(), p2.run_ready(), return_exceptions=True)

    asyncio.run(both())
    assert runs == [spec.id]
    with store.session() as s:
        assert repos.get_action(s, spec.id).state == "done"
