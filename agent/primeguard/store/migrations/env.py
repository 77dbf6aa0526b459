"""Alembic environment for the primeguard store.

Run programmatically through :meth:`primeguard.store.db.Store.migrate` (which passes an open
connection in ``config.attributes["connection"]``), or with a URL in ``sqlalchemy.url``
(see :func:`primeguard.store.db.alembic_config`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from primeguard.store.tables import metadata

config = context.config
target_metadata = metadata


def _configure_and_run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    from primeguard.store.db import open_store

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url: use primeguard.store.db.alembic_config(url)")
    store = open_store(url)
    try:
        with store.engine.begin() as conn:
            _configure_and_run(conn)
    finally:
        store.close()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
