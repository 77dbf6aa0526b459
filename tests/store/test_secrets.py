"""Secrets never reach the database: users' tokens are stored hashed, sensitive input is masked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import SecretStr

from primeguard.domain.errors import InputError
from primeguard.store import Store, audit, repos
from primeguard.store.tables import ActionRow
from tests.store.util import T0, at, deny, dump_tables

CANARY = "CANARY-7f3e9b1c-d0e5-4a8f-b2c6-secret-token"


def test_canary_secret_is_never_stored(store: Store, store_url: str) -> None:
    with store.session() as s:
        user, token = repos.create_user(s, "tina", "treasury", token=CANARY, now=T0)
        assert token == CANARY
        repos.record_decision(
            s, deny(), kind="withdrawal", subject="w1", now=at(1),
            input={"amount": "10", "venue": {"api_key": CANARY, "apiSecret": CANARY, "passphrase": CANARY},
                   "signer": {"private_key": CANARY, "keystore_password": SecretStr(CANARY)},
                   "headers": {"Authorization": f"Bearer {CANARY}"}, "note": "ok"},
        )
        audit.append(s, actor="tina", kind="login", subject="tina", payload={"token": CANARY}, now=at(2))
        repos.save_snapshot(s, sweep_id="sw1", account_id="a1", venue="binance", ok=True, observed_at=at(3),
                            payload={"credential": {"id": "k1", "secret": CANARY}, "balances": {"BTC": "1"}})
        repos.insert_action_once(s, ActionRow(id="act1", client_id="c1", kind="k", mode="dry_run",
                                              params={"mnemonic": CANARY}), now=at(4))
        d = repos.list_decisions(s)[0]
    assert d.masked_fields == ["$.headers.Authorization", "$.signer.keystore_password", "$.signer.private_key",
                               "$.venue.apiSecret", "$.venue.api_key", "$.venue.passphrase"]
    assert d.input["note"] == "ok" and d.input["venue"]["api_key"] == "***"

    with store.session() as s:
        assert repos.authenticate(s, CANARY) == user  # the token still works...
    dump = dump_tables(store)
    assert "tina" in dump and hashlib.sha256(CANARY.encode()).hexdigest() in dump  # ...stored as its hash
    assert CANARY not in dump
    assert CANARY[:20] not in dump
    if store.dialect == "sqlite":  # nothing in the raw files either (main database and WAL)
        db = Path(store_url.removeprefix("sqlite:///"))
        for f in (db, db.with_name(db.name + "-wal")):
            if f.exists():
                assert CANARY.encode() not in f.read_bytes()


def test_users_authenticate_revoke_rotate(store: Store) -> None:
    with store.session() as s:
        _, t1 = repos.create_user(s, "ann", "admin", now=T0)
        _, t2 = repos.create_user(s, "vic", "viewer", now=T0)
    assert t1.startswith("pgt_") and len(t1) > 40 and t1 != t2
    with store.session() as s:
        assert repos.authenticate(s, t1).name == "ann"
        assert repos.authenticate(s, t2).role == "viewer"
        assert repos.authenticate(s, t1 + "x") is None
        assert repos.authenticate(s, "") is None and repos.authenticate(s, None) is None
        new = repos.rotate_token(s, "ann", actor="ann", now=at(1))
        assert repos.authenticate(s, t1) is None and repos.authenticate(s, new).name == "ann"
        assert repos.revoke_user(s, "vic", actor="ann", now=at(2))
        assert not repos.revoke_user(s, "vic", actor="ann", now=at(3))
        assert repos.authenticate(s, t2) is None
        assert [u.name for u in repos.list_users(s)] == ["ann", "vic"]
    with pytest.raises(InputError, match="role"), store.session() as s:
        repos.create_user(s, "x", "root")
    with pytest.raises(InputError, match="at least"), store.session() as s:
        repos.create_user(s, "x", "viewer", token="short")
    with store.session(readonly=True) as s:
        kinds = [e.kind for e in audit.entries(s)]
    assert kinds == ["user.created", "user.created", "user.token_rotated", "user.revoked"]
