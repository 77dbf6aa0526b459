"""The hash-chained audit log: append, verify, tamper detection, durability, concurrency."""

from __future__ import annotations

import itertools
import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa

from primeguard.domain.errors import StoreError
from primeguard.store import Store, audit, repos
from primeguard.store.audit import GENESIS_HASH
from tests.store.util import T0, at, deny, sql


def _append_n(store: Store, n: int) -> None:
    with store.session() as s:
        for i in range(n):
            audit.append(s, actor="alice", kind="test.event", subject=f"s{i}",
                         payload={"i": i, "amount": Decimal("1.10") * i}, now=at(i))


def test_append_links_entries_and_verifies(store: Store) -> None:
    r = audit.verify(store)
    assert (r.ok, r.checked, r.head_seq) == (True, 0, 0)
    _append_n(store, 5)
    with store.session(readonly=True) as s:
        entries = audit.entries(s)
        head = audit.head(s)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert head == (5, entries[-1].hash)
    assert entries[3].payload == {"i": 3, "amount": "3.30"}  # Decimal kept exact, as a string
    assert entries[3].at == at(3)
    assert audit.entry_hash(3, at(2), "alice", "test.event", "s2", {"i": 2, "amount": "2.20"},
                            entries[1].hash) == entries[2].hash
    r = audit.verify(store)
    assert r.ok and r.checked == 5 and r.head_seq == 5 and r.first_broken_seq is None


def test_payload_rules(store: Store) -> None:
    with pytest.raises(StoreError, match="float"), store.session() as s:
        audit.append(s, actor="a", kind="k", subject="x", payload={"price": 1.5})
    with store.session() as s:
        e = audit.append(s, actor="a", kind="k", subject="x", payload={"api": {"api_secret": "hunter2", "key": "id"}})
    assert e.payload == {"api": {"api_secret": "***", "key": "id"}, "_masked": ["$.api.api_secret"]}
    with pytest.raises(StoreError, match="naive"), store.session() as s:
        audit.append(s, actor="a", kind="k", subject="x", now=T0.replace(tzinfo=None))
    assert audit.verify(store).checked == 1  # the failed appends left nothing behind


def test_rollback_drops_record_and_entry_together(store: Store) -> None:
    with pytest.raises(RuntimeError), store.session() as s:
        repos.record_decision(s, deny(), kind="withdrawal", subject="w1", input={"amount": "5"}, now=T0)
        raise RuntimeError("crash after the decision, before commit")
    with store.session(readonly=True) as s:
        assert repos.list_decisions(s) == []
        assert audit.head(s) == (0, GENESIS_HASH)
    assert audit.verify(store).ok


@pytest.mark.parametrize(
    ("tamper", "broken", "why"),
    [
        ("UPDATE audit_log SET payload = :p WHERE seq = 3", 3, "modified"),
        ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2", 2, "modified"),
        ("UPDATE audit_log SET at = :t WHERE seq = 4", 4, "modified"),
        ("DELETE FROM audit_log WHERE seq = 3", 3, "missing"),
        ("DELETE FROM audit_log WHERE seq = 1", 1, "missing"),
        ("DELETE FROM audit_log WHERE seq = 5", 5, "removed from the end"),
        ("UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit_log WHERE seq = 4)", 5, "altered"),
    ],
)
def test_tampering_is_detected(store: Store, tamper: str, broken: int, why: str) -> None:
    _append_n(store, 5)
    params = {}
    if ":p" in tamper:
        params["p"] = '{"i": 2, "amount": "999.00"}'
    if ":t" in tamper:
        params["t"] = at(100).replace(tzinfo=None) if store.dialect == "sqlite" else at(100)
    sql(store, tamper, **params)
    r = audit.verify(store)
    assert not r.ok
    assert r.first_broken_seq == broken
    assert why in (r.reason or "")


def test_reordering_is_detected(store: Store) -> None:
    _append_n(store, 4)
    # Swap entries 2 and 3 (their seq numbers) through a free seq.
    sql(store, "UPDATE audit_log SET seq = 100 WHERE seq = 2")
    sql(store, "UPDATE audit_log SET seq = 2 WHERE seq = 3")
    sql(store, "UPDATE audit_log SET seq = 3 WHERE seq = 100")
    r = audit.verify(store)
    assert not r.ok and r.first_broken_seq == 2 and "does not link" in (r.reason or "")


def test_rewritten_decision_row_is_detected(store: Store) -> None:
    with store.session() as s:
        d = repos.record_decision(s, deny(), kind="withdrawal", subject="w1", input={"amount": "5"}, now=T0)
        _ = repos.record_decision(s, deny(), kind="withdrawal", subject="w2", input={"amount": "6"}, now=at(1))
    assert audit.verify(store).ok
    sql(store, "UPDATE decisions SET outcome = 'allow' WHERE id = :i", i=d.id)
    r = audit.verify(store)
    assert not r.ok and r.first_broken_seq == d.audit_seq and "changed after it was recorded" in (r.reason or "")
    sql(store, "DELETE FROM decisions WHERE id = :i", i=d.id)
    r = audit.verify(store)
    assert not r.ok and "missing" in (r.reason or "")


def test_verify_never_raises(store: Store) -> None:
    _append_n(store, 2)
    sql(store, "ALTER TABLE audit_log RENAME TO audit_log_away")
    try:
        r = audit.verify(store)
    finally:
        sql(store, "ALTER TABLE audit_log_away RENAME TO audit_log")
    assert not r.ok and "could not read" in (r.reason or "")
    assert audit.verify(store).ok


def test_verify_in_batches(store: Store) -> None:
    _append_n(store, 25)
    assert audit.verify(store, batch=7).checked == 25
    sql(store, "UPDATE audit_log SET subject = 'x' WHERE seq = 15")
    assert audit.verify(store, batch=7).first_broken_seq == 15


def test_concurrent_appends_keep_one_chain(store: Store) -> None:
    """Threads appending at once (each append its own transaction) never fork the chain."""
    threads_n, per_thread = 6, 15
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n)

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                with store.session() as s:
                    audit.append(s, actor=f"t{t}", kind="race", subject=f"{t}:{i}", payload={"i": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    r = audit.verify(store)
    assert r.ok, r.reason
    assert r.checked == r.head_seq == threads_n * per_thread
    with store.session(readonly=True) as s:
        subjects = s.execute(sa.text("SELECT subject FROM audit_log")).scalars().all()
    assert len(set(subjects)) == threads_n * per_thread
