"""The Alembic migrations are the schema's source of truth; the SQLModel tables must agree with them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from primeguard.domain.errors import StoreError
from primeguard.store import open_store
from primeguard.store.db import normalise_url
from primeguard.store.tables import ALL_TABLES, metadata


def _diff(store, target: sa.MetaData) -> list:
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        return compare_metadata(ctx, target)


@pytest.mark.parametrize("empty_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_migration_from_scratch_matches_models(empty_url: str) -> None:
    store = open_store(empty_url)
    try:
        assert store.schema_revision() is None
        assert not store.is_current()
        with pytest.raises(StoreError, match="migrat"):
            store.require_current()
        store.migrate()
        store.migrate()  # idempotent
        assert store.is_current()
        store.require_current()
        assert _diff(store, metadata) == []
        tables = set(sa.inspect(store.engine).get_table_names())
        assert {m.__tablename__ for m in ALL_TABLES} <= tables  # type: ignore[attr-defined]
        with store.session(readonly=True) as s:
            assert s.execute(sa.text("SELECT seq, hash FROM audit_head WHERE id = 1")).one() == (0, "0" * 64)

        # The comparison is not vacuous: a column the migrations lack is reported.
        changed = sa.MetaData()
        for table in metadata.sorted_tables:
            table.to_metadata(changed)
        changed.tables["leases"].append_column(sa.Column("extra_col", sa.Integer(), nullable=True))
        diff = _diff(store, changed)
        assert any(op[0] == "add_column" and op[3].name == "extra_col" for op in diff)
    finally:
        store.close()


def test_sqlite_pragmas(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    finally:
        store.close()


def test_urls() -> None:
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
    with pytest.raises(StoreError, match="in-memory"):
        open_store("sqlite://")
    with pytest.raises(StoreError, match="unsupported database"):
        open_store("mysql://u@h/db")
    with pytest.raises(StoreError, match="driver"):
        open_store("postgresql+psycopg2://u@h/db")


def test_database_errors_surface_as_store_error(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    try:
        with pytest.raises(StoreError, match="no such table"), store.session() as s:
            s.execute(sa.text("SELECT * FROM no_such_table"))
    finally:
        store.close()


def test_sessions_commit_roll_back_and_read(store) -> None:
    from primeguard.store import repos
    from tests.store.util import T0

    with store.session() as s:
        repos.set_cursor(s, "eth", "k", 1, "0x1", now=T0)
    with pytest.raises(RuntimeError), store.session() as s:
        repos.set_cursor(s, "eth", "k", 2, "0x2", now=T0)
        raise RuntimeError
    with store.session(readonly=True) as s:
        cursor = repos.get_cursor(s, "eth", "k")
    assert cursor is not None and cursor.last_block == 1  # rows stay usable after a read-only session
    if store.is_postgres:  # read-only sessions really are read-only
        with pytest.raises(StoreError, match="ReadOnly"), store.session(readonly=True) as s:
            repos.set_cursor(s, "eth", "k", 3, "0x3", now=T0)
