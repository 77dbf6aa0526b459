"""Opening the store: engine, sessions, migrations.

SQLite (file, WAL): foreign keys on, ``busy_timeout``, ``synchronous=FULL`` (``NORMAL`` only for a
``session(durable=False)``: bookkeeping derived again after a power loss). Write sessions start with
``BEGIN IMMEDIATE`` (the write lock is taken up front, so a read-then-write never fails half way and
audit appends are serialised); read-only sessions start with a deferred ``BEGIN`` (a consistent WAL
snapshot). PostgreSQL through psycopg 3: write sessions are READ COMMITTED, read-only sessions are
REPEATABLE READ READ ONLY (one snapshot). SQL parameters never appear in error messages or logs.

Every database failure inside :meth:`Store.session` surfaces as :class:`StoreError` (chained to the
driver's error); the transaction is rolled back, nothing is half-written.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from primeguard.domain.errors import StoreError
from primeguard.store.codec import dumps_json

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key taken while migrating, so replicas starting together migrate once.
MIGRATE_LOCK_KEY = zlib.crc32(b"primeguard.store.migrate")


def normalise_url(url: str) -> str:
    """``postgres://`` / ``postgresql://`` → ``postgresql+psycopg://``; other URLs unchanged."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at our migrations (no alembic.ini needed).

    For a new revision: ``alembic.command.revision(alembic_config(url), "msg", autogenerate=True)``
    against a database at head, then review the generated file.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url:
        cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


class Store:
    """A database holding primeguard's state. Create with :func:`open_store`; close with :meth:`close`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name
        if self.dialect == "postgresql":
            self._read_engine = engine.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        else:
            self._read_engine = engine.execution_options(sqlite_begin="DEFERRED")
        # Commits that need not survive a power loss (see ``session(durable=False)``).
        self._lazy_engine = engine.execution_options(primeguard_durable=False)

    @property
    def url(self) -> str:
        """The URL with any password hidden (safe to log)."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    # --- sessions -----------------------------------------------------------------------------

    @contextmanager
    def session(self, *, readonly: bool = False, durable: bool = True) -> Iterator[Session]:
        """A unit of work: commits on normal exit, rolls back on any exception.

        Args:
            readonly: a consistent read snapshot; nothing is committed.
            durable: False for bookkeeping whose loss on a power failure is harmless because it is
                derived again (the alert outbox: the next sweep plans from the live state). The
                commit is atomic and survives a crash of the process, but is not flushed to disk
                before it returns (SQLite: ``synchronous=NORMAL`` for this transaction, the next
                durable commit flushes it; PostgreSQL: ``synchronous_commit = off``). Decisions,
                approvals, audit entries of people's acts and policy versions are always durable.

        Raises:
            StoreError: the database refused or failed (wraps the SQLAlchemy error).
        """
        bind = self._read_engine if readonly else self.engine if durable else self._lazy_engine
        session = Session(bind=bind, expire_on_commit=False, autoflush=True)
        try:
            yield session
            if not readonly:
                session.commit()
            # readonly: close() below ends the transaction; rollback() would expire the loaded rows
        except SQLAlchemyError as exc:
            session.rollback()
            raise StoreError(f"store ({self.dialect}): {describe_db_error(exc)}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    # --- schema ---------------------------------------------------------------------------------

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` with Alembic (idempotent; safe for replicas starting together).

        Raises:
            StoreError: a migration failed (the transaction is rolled back).
        """
        cfg = alembic_config()
        try:
            with self.engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE serialises migrators
                if self.is_postgres:
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATE_LOCK_KEY})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        except SQLAlchemyError as exc:
            raise StoreError(f"migration to {revision} failed: {describe_db_error(exc)}") from exc

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None: never migrated)."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def is_current(self) -> bool:
        """True when the schema is at the newest migration."""
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        return self.schema_revision() == head

    def require_current(self) -> None:
        """Raise :class:`StoreError` unless the schema is at head (run ``migrate`` first)."""
        if not self.is_current():
            raise StoreError(
                f"database schema is at {self.schema_revision() or 'nothing'}, not the newest migration: "
                "run the store migration (Store.migrate()) first"
            )

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe_db_error(exc: SQLAlchemyError) -> str:
    """The driver's message without SQL parameters (the engine also hides them)."""
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc)
    return f"{type(orig or exc).__name__}: {text.strip().splitlines()[0] if text.strip() else ''}"


def open_store(url: str, *, migrate: bool = False, busy_timeout_ms: int = 10_000, echo: bool = False) -> Store:
    """Open (and optionally migrate) the store at ``url``.

    Args:
        url: ``sqlite:///path.db`` or ``postgresql://...`` / ``postgresql+psycopg://...``.
        migrate: run :meth:`Store.migrate` before returning.
        busy_timeout_ms: SQLite only: how long a writer waits for the write lock.
        echo: log SQL (parameters stay hidden).

    Raises:
        StoreError: unsupported URL, or the database cannot be opened or migrated.
    """
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise StoreError(f"not a database URL: {url.split('@')[-1]!r}") from exc
    backend = parsed.get_backend_name()
    # dumps_json: json.dumps, with pre-rendered parts (RawJSON) written as their text
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True, "future": True, "json_serializer": dumps_json}
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or "mode=memory" in url:
            raise StoreError("in-memory SQLite is not supported (no WAL, one connection): use a file URL")
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
        engine = sa.create_engine(url, **kwargs)
        _install_sqlite_hooks(engine, busy_timeout_ms)
    elif backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise StoreError(f"PostgreSQL driver {parsed.get_driver_name()!r} unsupported: use postgresql+psycopg://")
        engine = sa.create_engine(url, pool_pre_ping=True, **kwargs)
        _install_postgres_hooks(engine)
    else:
        raise StoreError(f"unsupported database {backend!r}: use sqlite:///FILE or postgresql://...")
    store = Store(engine)
    try:
        with engine.connect():
            pass
        if migrate:
            store.migrate()
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(f"cannot open {store.url}: {describe_db_error(exc)}") from exc
    except BaseException:
        engine.dispose()
        raise
    return store


def _install_postgres_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("primeguard_durable") is False:
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")  # this transaction only


def _install_sqlite_hooks(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            mode = cur.fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"SQLite refused WAL journal mode (got {mode!r})")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA synchronous=FULL")  # a committed decision survives power loss
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        opts = conn.get_execution_options()
        mode = opts.get("sqlite_begin", "IMMEDIATE")
        if mode not in ("IMMEDIATE", "DEFERRED", "EXCLUSIVE"):
            raise StoreError(f"bad sqlite_begin option {mode!r}")
        # Per transaction (the pragma stays on the pooled connection): FULL unless asked otherwise.
        conn.exec_driver_sql("PRAGMA synchronous=NORMAL" if opts.get("primeguard_durable") is False
                             else "PRAGMA synchronous=FULL")
        conn.exec_driver_sql(f"BEGIN {mode}")
