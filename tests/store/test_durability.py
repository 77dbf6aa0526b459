"""``Store.session(durable=False)``: the alert outbox's commits skip the flush to disk on that
transaction only; every other write session stays durable (SQLite ``synchronous=FULL``,
PostgreSQL ``synchronous_commit`` on), also on a pooled connection that served a lazy one."""

from __future__ import annotations

import sqlalchemy as sa

from primeguard.store import Store


def _setting(store: Store, s: object) -> str:
    sql = "SHOW synchronous_commit" if store.is_postgres else "PRAGMA synchronous"
    return str(s.execute(sa.text(sql)).scalar_one())  # type: ignore[attr-defined]


def test_only_a_lazy_session_skips_the_flush(store: Store) -> None:
    durable, lazy = ("on", "off") if store.is_postgres else ("2", "1")  # SQLite: 2 FULL, 1 NORMAL
    with store.session() as s:
        assert _setting(store, s) == durable
    for _ in range(3):  # the same pooled connection, turn by turn
        with store.session(durable=False) as s:
            assert _setting(store, s) == lazy
        with store.session() as s:
            assert _setting(store, s) == durable


def test_a_lazy_commit_is_committed(store: Store) -> None:
    from datetime import UTC, datetime

    from primeguard.store import repos

    now = datetime(2026, 12, 3, tzinfo=UTC)
    with store.session(durable=False) as s:
        created = repos.insert_alerts(s, [("k1", "log", 30)], now=now)
    assert created == {("k1", "log")}
    with store.session(readonly=True) as s:
        assert repos.get_alert(s, finding_key="k1", channel="log") is not None
