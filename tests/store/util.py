"""Helpers shared by the store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from primeguard.domain.decision import Decision, Outcome, ReasonCode
from primeguard.store import Store
from primeguard.store.tables import metadata

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def user(store: Store, name: str, role: str = "treasury") -> int:
    """Create a user (or find it) and return its id: every write acts as a stored user."""
    from primeguard.store import repos

    with store.session() as s:
        row = repos.get_user(s, name) or repos.create_user(s, name, role, now=T0)[0]
        assert row.id is not None
        return int(row.id)


def activate_policy(store: Store, files: dict[str, str]) -> str:
    """Propose, approve (by a second user) and activate a policy version made of ``files``; its hash."""
    from primeguard.policy.bundle import canonical_content
    from primeguard.store import repos

    proposer, approver = user(store, "pat"), user(store, "carol", "compliance")
    with store.session() as s:
        row, _ = repos.put_policy_version(s, canonical_content(files), proposed_by="pat", proposed_by_id=proposer,
                                          now=T0)
        repos.approve_policy_version(s, row.hash, approver_id=approver, now=T0)
        repos.activate_policy_version(s, row.hash, actor="carol", now=T0)
        return str(row.hash)


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def deny(reason: ReasonCode = ReasonCode.NOT_ALLOWLISTED) -> Decision:
    return Decision(Outcome.DENY, (reason,), ("allowlist.main",), "destination is not allowlisted", "p" * 64)


def dump_tables(store: Store) -> str:
    """Every row of every table (plus the migration version table) as text."""
    out: list[str] = []
    with store.engine.connect() as conn:
        names = sorted(set(sa.inspect(conn).get_table_names()) | set(metadata.tables))
        for name in names:
            for row in conn.execute(sa.text(f'SELECT * FROM "{name}"')):
                out.append(f"{name}: {tuple(row)!r}")
    return "\n".join(out)


def sql(store: Store, statement: str, **params: object) -> None:
    """Run raw SQL outside the repositories (tampering, inspection)."""
    with store.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def actor(store: Store, name: str, role: str = "treasury") -> Any:
    """The :class:`~primeguard.domain.identity.Actor` of a stored user (created when missing)."""
    from primeguard.store import repos
    from primeguard.store.identity import actor_of

    user(store, name, role)
    with store.session(readonly=True) as s:
        row = repos.get_user(s, name)
        assert row is not None
        return actor_of(row)
