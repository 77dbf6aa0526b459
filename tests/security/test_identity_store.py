"""Identity in the store: canonical names, one resolver for tokens, the 0002 migration filling
``users.name_key`` for existing users (and refusing names that collide after casefolding)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from primeguard.domain.errors import AuthenticationError, InputError, StoreError
from primeguard.domain.identity import canonical_name
from primeguard.store import repos
from primeguard.store.db import open_store
from primeguard.store.identity import bootstrap_admin, resolve_token

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_canonical_names() -> None:
    assert canonical_name("  Tom ") == canonical_name("TOM") == canonical_name("ｔｏｍ") == "tom"
    assert canonical_name("Straße") == canonical_name("STRASSE")
    for bad in ("", "   ", "to\x00m", "tom\u200b", "a" * 65, None):
        with pytest.raises(InputError):
            canonical_name(bad)


def test_tokens_resolve_to_stored_users(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}", migrate=True)
    with store.session() as s:
        admin, token = bootstrap_admin(s, "Root", now=T0)
        with pytest.raises(InputError, match="exist already"):
            bootstrap_admin(s, "other", now=T0)
        with pytest.raises(InputError, match="exists already"):
            repos.create_user(s, "ROOT", "viewer", now=T0)
        assert resolve_token(s, f"  {token}\n") == admin and admin.role == "admin"
        for bad in (None, "", "pgt_" + "x" * 40, "y" * 10_000):
            with pytest.raises(AuthenticationError):
                resolve_token(s, bad)
        assert repos.revoke_user(s, "root", actor="test")
        with pytest.raises(AuthenticationError, match="revoked"):
            resolve_token(s, token)
    store.close()


def _users_at_0001(tmp_path: Path, names: list[str]) -> str:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = open_store(url)
    store.migrate("0001_initial")
    with store.engine.begin() as conn:
        for i, name in enumerate(names):
            conn.execute(sa.text("INSERT INTO users (name, role, token_hash, created_at) "
                                 "VALUES (:n, 'viewer', :h, :t)"), {"n": name, "h": f"{i:064x}", "t": T0})
    store.close()
    return url


def test_migration_fills_name_keys(tmp_path: Path) -> None:
    url = _users_at_0001(tmp_path, ["Carol", "dave"])
    store = open_store(url)
    store.migrate()
    with store.session(readonly=True) as s:
        assert repos.get_user(s, "CAROL").name == "Carol"
        assert s.execute(sa.text("SELECT name_key FROM users ORDER BY id")).scalars().all() == ["carol", "dave"]
    store.close()


def test_migration_refuses_colliding_names(tmp_path: Path) -> None:
    url = _users_at_0001(tmp_path, ["carol", "CAROL"])
    store = open_store(url)
    with pytest.raises(StoreError, match="same name"):
        store.migrate()
    store.close()
