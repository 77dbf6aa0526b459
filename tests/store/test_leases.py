"""Leases for daemon replicas: exclusivity, expiry takeover, fencing tokens, concurrency."""

from __future__ import annotations

import threading

import pytest

from primeguard.domain.errors import InputError
from primeguard.store import Store, repos
from tests.store.util import at


def _acquire(store: Store, owner: str, now_s: float, ttl: float = 30, name: str = "shard-1") -> int | None:
    with store.session() as s:
        return repos.acquire_lease(s, name, owner, ttl, now=at(now_s))


def test_two_owners_and_expiry_takeover(store: Store) -> None:
    t1 = _acquire(store, "replica-a", 0)
    assert t1 == 1
    assert _acquire(store, "replica-b", 10) is None  # held, unexpired
    assert _acquire(store, "replica-b", 29.999) is None
    assert _acquire(store, "replica-a", 20) == 1  # holder re-acquires: extended, same token
    assert _acquire(store, "replica-b", 49.9) is None  # extended to 50
    t2 = _acquire(store, "replica-b", 50)  # expired: taken over
    assert t2 == 2
    with store.session() as s:
        lease = repos.get_lease(s, "shard-1")
        assert lease is not None and (lease.owner, lease.fencing_token, lease.expires_at) == ("replica-b", 2, at(80))
        # The old holder has lost it: renew and check fail, its fencing token is stale.
        assert not repos.renew_lease(s, "shard-1", "replica-a", 1, 30, now=at(51))
        assert not repos.check_lease(s, "shard-1", "replica-a", 1, now=at(51))
        assert repos.check_lease(s, "shard-1", "replica-b", 2, now=at(51))
        assert repos.renew_lease(s, "shard-1", "replica-b", 2, 30, now=at(60))
    assert _acquire(store, "replica-a", 85) is None  # renewed to 90
    assert _acquire(store, "replica-a", 90) == 3  # the token only grows
    assert _acquire(store, "replica-a", 200) == 4  # re-taken after its own expiry: new token


def test_release_lets_others_in(store: Store) -> None:
    token = _acquire(store, "a", 0)
    assert token is not None
    with store.session() as s:
        assert not repos.release_lease(s, "shard-1", "b", token, now=at(1))  # not b's lease
        assert repos.release_lease(s, "shard-1", "a", token, now=at(1))
        assert not repos.release_lease(s, "shard-1", "a", token, now=at(1))  # already released
    assert _acquire(store, "b", 1) == token + 1


def test_leases_are_independent_and_validated(store: Store) -> None:
    assert _acquire(store, "a", 0, name="shard-1") == 1
    assert _acquire(store, "b", 0, name="shard-2") == 1
    with pytest.raises(InputError), store.session() as s:
        repos.acquire_lease(s, "x", "a", 0, now=at(0))


def test_concurrent_acquire_has_one_winner(store: Store) -> None:
    n = 8
    barrier = threading.Barrier(n)
    results: dict[str, int | None] = {}
    errors: list[BaseException] = []

    def contend(owner: str) -> None:
        try:
            barrier.wait()
            results[owner] = _acquire(store, owner, 0, name="hot")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(f"r{i}",)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    winners = [o for o, tok in results.items() if tok is not None]
    assert len(winners) == 1 and results[winners[0]] == 1
    with store.session(readonly=True) as s:
        lease = repos.get_lease(s, "hot")
        assert lease is not None and lease.owner == winners[0]


def test_concurrent_takeover_after_expiry_has_one_winner(store: Store) -> None:
    assert _acquire(store, "dead", 0, name="hot") == 1
    n = 6
    barrier = threading.Barrier(n)
    results: list[int | None] = []

    def contend(owner: str) -> None:
        barrier.wait()
        results.append(_acquire(store, owner, 31, name="hot"))

    threads = [threading.Thread(target=contend, args=(f"r{i}",)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=lambda x: x or 0) == [None] * (n - 1) + [2]
