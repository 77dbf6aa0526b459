"""Helpers shared by the repository modules: time, row loading, argument checks, the acting user."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.errors import ApprovalError, InputError
from primeguard.store._sql import table_of
from primeguard.store.codec import as_utc, utcnow
from primeguard.store.tables import StoreModel, UserRow

M = TypeVar("M", bound=StoreModel)


def resolve_now(now: datetime | None) -> datetime:
    """``now`` as an aware UTC time; the current UTC time when None."""
    return as_utc(now) if now is not None else utcnow()


def get_row(session: Session, model: type[M], *key: Any, lock: bool = False) -> M | None:
    """Load a row by primary key, always fresh from the database (optionally ``FOR UPDATE``)."""
    t = table_of(model)
    stmt = sa.select(model).where(*(c == k for c, k in zip(t.primary_key.columns, key, strict=True)))
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()


def enum_value(enum: type[Any], value: Any, what: str) -> str:
    """``value`` as the string value of a member of ``enum``.

    Raises:
        InputError: not one of the enum's values (the message lists them).
    """
    try:
        return str(enum(value).value)
    except ValueError as exc:
        allowed = ", ".join(v.value for v in enum)
        raise InputError(f"{what}: {value!r} is not one of {allowed}") from exc


def required(value: str | None, what: str) -> str:
    """``value`` when it is a non-blank string.

    Raises:
        InputError: ``value`` is missing or blank.
    """
    if not value or not str(value).strip():
        raise InputError(f"{what} is required")
    return str(value)


def acting_user(session: Session, user_id: int | None, what: str) -> UserRow:
    """The active user ``user_id`` (who acts on a write). Four-eyes rules compare these ids.

    Raises:
        ApprovalError: no such user, or the user is revoked.
    """
    if user_id is None:
        raise ApprovalError(f"{what}: a user id is required (identities come from tokens, not names)")
    t = table_of(UserRow)
    user: UserRow | None = session.execute(sa.select(UserRow).where(t.c.id == int(user_id))
                                            .execution_options(populate_existing=True)).scalar_one_or_none()
    if user is None or user.revoked_at is not None:
        raise ApprovalError(f"{what}: user {user_id} does not exist or is revoked")
    return user
