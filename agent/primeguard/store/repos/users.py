"""Users: creation, token authentication (hashes only), revocation and token rotation.

Contract (session first, nothing commits, audit entry in the same transaction, ``now`` passed in):
see :mod:`primeguard.store.repos`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.errors import InputError
from primeguard.domain.identity import canonical_name
from primeguard.store import audit
from primeguard.store._sql import rowcount, table_of
from primeguard.store.errors import NotFound
from primeguard.store.repos._helpers import enum_value, resolve_now
from primeguard.store.tables import Role, UserRow

TOKEN_PREFIX = "pgt_"  # noqa: S105 - a prefix, not a secret
MIN_TOKEN_LENGTH = 24


def hash_token(token: str) -> str:
    """sha256 hex of a web token. Tokens are 256-bit random values, so a fast hash is enough (no
    salt or KDF needed) and lets :func:`authenticate` find the user by hash."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token(token: str | None) -> str:
    if token is None:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)
    if len(token) < MIN_TOKEN_LENGTH:
        raise InputError(f"tokens must be at least {MIN_TOKEN_LENGTH} characters")
    return token


def create_user(session: Session, name: str, role: str, *, actor: str = "admin", actor_id: int | None = None,
                token: str | None = None, now: datetime | None = None) -> tuple[UserRow, str]:
    """Create a user; returns ``(user, token)``. The plain token is returned once and never stored.

    Names are stripped and must be unique after NFKC casefolding (``Tom`` and ``TOM`` are one name).

    Args:
        actor, actor_id: who creates it (for the audit entry).
        token: use this token (e.g. provisioned from a secret file) instead of a random one.

    Raises:
        InputError: bad role, bad or taken name, short token.
    """
    now = resolve_now(now)
    role = enum_value(Role, role, "role")
    key = canonical_name(name)
    name = name.strip()
    if get_user(session, name) is not None:
        raise InputError(f"a user named {name!r} exists already (names are compared case-insensitively)")
    plain = _new_token(token)
    row = UserRow(name=name, name_key=key, role=role, token_hash=hash_token(plain), created_at=now)
    session.add(row)
    session.flush()
    audit.append(session, actor=actor, kind="user.created", subject=name, now=now,
                 payload={"role": role, "user_id": row.id, "by_id": actor_id})
    return row, plain


def authenticate(session: Session, token: str | None) -> UserRow | None:
    """The active user holding ``token``, or None. Compares hashes in constant time."""
    if not token:
        return None
    digest = hash_token(token)
    t = table_of(UserRow)
    row: UserRow | None = session.execute(
        sa.select(UserRow).where(t.c.token_hash == digest, t.c.revoked_at.is_(None))
    ).scalar_one_or_none()
    stored = row.token_hash if row is not None else "0" * 64
    if hmac.compare_digest(stored.encode(), digest.encode()) and row is not None:
        return row
    return None


def get_user(session: Session, name: str) -> UserRow | None:
    """The user whose canonical name equals ``name``'s (None when none, or ``name`` is not a valid name)."""
    try:
        key = canonical_name(name)
    except InputError:
        return None
    t = table_of(UserRow)
    return session.execute(sa.select(UserRow).where(t.c.name_key == key)
                           .execution_options(populate_existing=True)).scalar_one_or_none()


def list_users(session: Session) -> list[UserRow]:
    t = table_of(UserRow)
    return list(session.execute(sa.select(UserRow).order_by(t.c.name)).scalars())


def revoke_user(session: Session, name: str, *, actor: str, actor_id: int | None = None,
                now: datetime | None = None) -> bool:
    """Revoke a user's token at once. False when no active user has that (canonical) name."""
    now = resolve_now(now)
    user = get_user(session, name)
    if user is None:
        return False
    t = table_of(UserRow)
    res = session.execute(sa.update(t).where(t.c.id == user.id, t.c.revoked_at.is_(None)).values(revoked_at=now))
    if rowcount(res) == 1:
        audit.append(session, actor=actor, kind="user.revoked", subject=user.name, now=now,
                     payload={"user_id": user.id, "by_id": actor_id})
        return True
    return False


def rotate_token(session: Session, name: str, *, actor: str, actor_id: int | None = None, token: str | None = None,
                 now: datetime | None = None) -> str:
    """Give an active user a new token (the old one stops working); returns the new plain token."""
    now = resolve_now(now)
    plain = _new_token(token)
    user = get_user(session, name)
    t = table_of(UserRow)
    res = None if user is None else session.execute(
        sa.update(t).where(t.c.id == user.id, t.c.revoked_at.is_(None)).values(token_hash=hash_token(plain))
    )
    if user is None or res is None or rowcount(res) != 1:
        raise NotFound(f"no active user named {name}")
    audit.append(session, actor=actor, kind="user.token_rotated", subject=user.name, now=now,
                 payload={"user_id": user.id, "by_id": actor_id})
    return plain
