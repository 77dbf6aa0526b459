"""Small SQL helpers shared by the repositories (dialect-specific INSERT ... ON CONFLICT)."""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session


def table_of(model: type[Any]) -> sa.Table:
    return cast(sa.Table, model.__table__)


def rowcount(result: sa.Result[Any]) -> int:
    """Rows matched by an INSERT/UPDATE/DELETE."""
    return int(cast(sa.CursorResult[Any], result).rowcount)


def upsert_insert(session: Session, table: sa.Table) -> Any:
    """An INSERT construct with ``on_conflict_do_nothing`` / ``on_conflict_do_update`` and ``excluded``."""
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(table)
    return sqlite_insert(table)


def insert_ignore(session: Session, table: sa.Table, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING. True when the row was inserted. Safe under concurrency."""
    # RETURNING rather than rowcount: psycopg reports -1 for INSERT ... ON CONFLICT here.
    pk = next(iter(table.primary_key.columns))
    stmt = upsert_insert(session, table).values(**values).on_conflict_do_nothing().returning(pk)
    return session.execute(stmt).first() is not None
