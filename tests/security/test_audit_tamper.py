"""Issue N defect 4: ``audit verify`` uses the evidence it has. Every row that records an audit
entry must find that entry in the chain, with the same content; deleting the whole log, rolling it
back past a row that still exists, or editing a row fails verification with the table, the row id
and the reason."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sqlalchemy as sa

from primeguard.store import Store, audit
from primeguard.store.audit import GENESIS_HASH
from tests.json_schemas import check
from tests.security.book import write_book
from tests.store.util import sql


def _rollback(store: Store, keep: int) -> None:
    """Cut the log after entry ``keep`` and move the head there, as a careful attacker would."""
    with store.engine.begin() as conn:
        row = conn.execute(sa.text("SELECT hash FROM audit_log WHERE seq = :k"), {"k": keep}).first()
        digest = row[0] if row is not None else GENESIS_HASH
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq > :k"), {"k": keep})
        conn.execute(sa.text("UPDATE audit_head SET seq = :k, hash = :h WHERE id = 1"), {"k": keep, "h": digest})


def _problems(r) -> list[tuple[str, str, str]]:
    return [(p.table, p.row_id, p.reason) for p in r.problems]


def test_clean_book_verifies(store: Store) -> None:
    book = write_book(store)
    r = audit.verify(store)
    assert r.ok, r.problems
    assert r.checked == book.seq["tail"] and r.problems == () and r.reason is None


def test_deleting_the_whole_log_fails(store: Store) -> None:
    write_book(store)
    _rollback(store, 0)  # every entry gone, the head reset to genesis: the chain itself is consistent
    r = audit.verify(store)
    assert not r.ok and r.checked == 0
    tables = {p.table for p in r.problems}
    assert tables == {"users", "policy_versions", "withdrawals", "decisions", "withdrawal_approvals", "actions"}
    assert all("missing" in p.reason for p in r.problems)
    assert r.reason == r.problems[0].reason


@pytest.mark.parametrize(("past", "table", "row", "words"), [
    ("decision", "decisions", "decision", "decision.recorded"),
    ("withdrawal", "withdrawals", "withdrawal", "withdrawal.requested"),
    ("approval", "withdrawal_approvals", "approval", "withdrawal.approval_added"),
    ("withdrawal_approved", "withdrawals", "withdrawal", "is approved but"),
    ("action", "actions", "action", "action.proposed"),
    ("action_approved", "actions", "action", "action.approved"),
    ("policy", "policy_versions", "policy", "policy.proposed"),
    ("policy_activated", "policy_versions", "policy", "policy.activated"),
    ("user", "users", None, "user.created"),
])
def test_rolling_back_past_a_row_that_exists_fails(store: Store, past: str, table: str, row: str | None,
                                                   words: str) -> None:
    book = write_book(store)
    _rollback(store, book.seq[past] - 1)
    r = audit.verify(store)
    assert not r.ok
    hits = [p for p in r.problems if p.table == table and (row is None or p.row_id == book.ids[row])
            and words in p.reason]
    assert hits, _problems(r)


@pytest.mark.parametrize(("tamper", "table", "row", "field"), [
    ("UPDATE withdrawals SET amount = '1500000' WHERE id = 'w1'", "withdrawals", "withdrawal", "amount"),
    ("UPDATE withdrawals SET destination = '0x000000000000000000000000000000000000bAd0'", "withdrawals",
     "withdrawal", "destination"),
    ("UPDATE withdrawals SET account_id = 'other-vault'", "withdrawals", "withdrawal", "account_id"),
    ("UPDATE withdrawals SET asset = 'WETH'", "withdrawals", "withdrawal", "asset"),
    ("UPDATE withdrawals SET requested_by = 'mallory'", "withdrawals", "withdrawal", "actor"),
    ("UPDATE withdrawals SET state = 'confirmed'", "withdrawals", "withdrawal", "is confirmed but"),
    ("UPDATE withdrawal_approvals SET role = 'admin'", "withdrawal_approvals", "approval", "role"),
    ("UPDATE withdrawal_approvals SET approver = 'mallory'", "withdrawal_approvals", "approval",
     "withdrawal.approval_added"),
    ("UPDATE actions SET params = '{\"ltv\": \"0.1\"}'", "actions", "action", "params"),
    ("UPDATE actions SET approved_by = 'mallory'", "actions", "action", "actor"),
    ("UPDATE decisions SET outcome = 'allow'", "decisions", "decision", "outcome"),
    ("UPDATE decisions SET explanation = 'fine'", "decisions", "decision", "digest"),
    ("UPDATE policy_versions SET content = 'rules: [allow-all]\n'", "policy_versions", "policy", "size"),
    ("UPDATE policy_versions SET approved_by = 'carol'", "policy_versions", "policy", "actor"),
    ("UPDATE users SET role = 'admin'", "users", None, "role"),
])
def test_an_edited_row_fails(store: Store, tamper: str, table: str, row: str | None, field: str) -> None:
    book = write_book(store)
    sql(store, tamper)
    r = audit.verify(store)
    assert not r.ok
    hits = [p for p in r.problems if p.table == table and (row is None or p.row_id == book.ids[row])
            and field in p.reason]
    assert hits, _problems(r)


@pytest.mark.parametrize(("table", "kind"), [
    ("withdrawal_approvals", "withdrawal.approval_added"), ("actions", "action.proposed"),
    ("decisions", "decision.recorded"),
])
def test_a_deleted_row_fails(store: Store, table: str, kind: str) -> None:
    write_book(store)
    sql(store, f"DELETE FROM {table}")
    r = audit.verify(store)
    assert not r.ok
    assert any(p.table == table and kind in p.reason and "missing" in p.reason for p in r.problems), _problems(r)


def test_cli_reports_problems_and_exits_1(sqlite_url: str) -> None:
    from primeguard.store import open_store

    store = open_store(sqlite_url)
    write_book(store)
    store.close()
    ok = subprocess.run([sys.executable, "-m", "primeguard.cli", "audit", "verify", "--store", sqlite_url, "--json"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["problems"] == []
    check("audit_verify", json.loads(ok.stdout))
    store = open_store(sqlite_url)
    _rollback(store, 0)
    store.close()
    for extra in ((), ("--json",)):
        bad = subprocess.run([sys.executable, "-m", "primeguard.cli", "audit", "verify", "--store", sqlite_url, *extra],
                             capture_output=True, text=True, timeout=120)
        assert bad.returncode == 1, bad.stdout + bad.stderr
    body = json.loads(bad.stdout)
    check("audit_verify", body)
    assert body["ok"] is False and {"table": "withdrawals", "row_id": "w1"}.items() <= {
        k: v for p in body["problems"] if p["table"] == "withdrawals" for k, v in p.items()}.items()
