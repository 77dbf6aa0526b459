"""Who is acting, resolved from the store: one implementation for the CLI and the web.

A token (``PRIMEGUARD_TOKEN``, ``--token-file``, an ``Authorization: Bearer`` header, a login form)
is the only way to become someone. :func:`resolve_token` turns it into an
:class:`~primeguard.domain.identity.Actor` carrying the user's id and the role the *store* gives it;
four-eyes rules compare those ids. Names are unique after
:func:`~primeguard.domain.identity.canonical_name`.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.errors import AuthenticationError, InputError
from primeguard.domain.identity import Actor, canonical_name
from primeguard.store import repos
from primeguard.store.tables import Role, UserRow

MAX_TOKEN_LENGTH = 512


def actor_of(user: UserRow) -> Actor:
    """The :class:`Actor` for a stored user row."""
    assert user.id is not None
    return Actor(int(user.id), user.name, user.role)


def resolve_token(session: Session, token: str | None) -> Actor:
    """The active user holding ``token``.

    Raises:
        AuthenticationError: no token, an oversized one, or one no active user holds (revoked,
            rotated or never issued). The message never contains the token.
    """
    if token is None or not token.strip():
        raise AuthenticationError("no identity: set PRIMEGUARD_TOKEN or pass --token-file with a user token")
    token = token.strip()
    if len(token) > MAX_TOKEN_LENGTH:
        raise AuthenticationError("unknown or revoked token")
    user = repos.authenticate(session, token)
    if user is None:
        raise AuthenticationError("unknown or revoked token")
    return actor_of(user)


def user_by_id(session: Session, user_id: int) -> UserRow | None:
    """A user by id (active or revoked)."""
    t = UserRow.__table__  # type: ignore[attr-defined]
    return session.execute(sa.select(UserRow).where(t.c.id == user_id)
                           .execution_options(populate_existing=True)).scalar_one_or_none()


def has_users(session: Session) -> bool:
    """True when at least one user (active or revoked) exists."""
    t = UserRow.__table__  # type: ignore[attr-defined]
    return session.execute(sa.select(t.c.id).limit(1)).first() is not None


def bootstrap_admin(session: Session, name: str, *, token: str | None = None,
                    now: datetime | None = None) -> tuple[Actor, str]:
    """Create the first user, an admin, and return it with its token (shown once).

    Raises:
        InputError: users exist already (add more with an admin's token), or the name is invalid.
    """
    canonical_name(name)
    # Serialise bootstraps: the audit head lock is held by the user.created append below, but take
    # it first so two concurrent bootstraps cannot both see an empty table.
    from primeguard.store import audit

    audit.lock_head(session)
    if has_users(session):
        raise InputError("users exist already: bootstrap creates only the first admin; "
                         "use `primeguard users add` with an admin's token")
    row, plain = repos.create_user(session, name, Role.ADMIN.value, actor="bootstrap", token=token, now=now)
    return actor_of(row), plain


__all__ = ["MAX_TOKEN_LENGTH", "actor_of", "bootstrap_admin", "has_users", "resolve_token", "user_by_id"]
