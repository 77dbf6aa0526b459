"""Playbook actions: inserted once per deterministic id, state changes with optimistic checks."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa

from primeguard.domain.errors import InputError
from primeguard.store import IllegalTransition, NotFound, StaleState, Store, audit, repos
from primeguard.store.codec import stable_id
from primeguard.store.tables import ActionRow
from tests.store.util import T0, at, user


def _action(mode: str = "needs_approval", action_id: str | None = None) -> ActionRow:
    return ActionRow(
        id=action_id or stable_id("margin_call", "client-1", "2026-01-01"), client_id="client-1",
        kind="margin_call", mode=mode, params={"topup_usd": Decimal("250000.00"), "ltv": Decimal("0.8123")},
    )


def test_insert_once(store: Store) -> None:
    with store.session() as s:
        assert repos.insert_action_once(s, _action(), now=T0) is True
    with store.session() as s:
        assert repos.insert_action_once(s, _action(), now=at(60)) is False  # same id: no-op
        assert repos.insert_action_once(s, _action(), now=at(61)) is False
    with store.session(readonly=True) as s:
        rows = repos.list_actions(s, client_id="client-1")
        assert len(rows) == 1
        assert rows[0].state == "proposed" and rows[0].created_at == T0
        assert rows[0].params == {"topup_usd": "250000.00", "ltv": "0.8123"}
        assert [e.kind for e in audit.entries(s)] == ["action.proposed"]  # one audit entry, not three


def test_concurrent_insert_once(store: Store) -> None:
    n = 6
    barrier = threading.Barrier(n)
    results: list[bool] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            barrier.wait()
            with store.session() as s:
                results.append(repos.insert_action_once(s, _action(action_id="a-race"), now=T0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [False] * (n - 1) + [True]
    with store.session(readonly=True) as s:
        assert s.execute(sa.text("SELECT count(*) FROM actions")).scalar() == 1
        assert s.execute(sa.text("SELECT count(*) FROM audit_log")).scalar() == 1


def test_lifecycle_needs_approval(store: Store) -> None:
    carol, dave = user(store, "carol", "compliance"), user(store, "dave", "admin")
    with store.session() as s:
        repos.insert_action_once(s, _action(), now=T0)
    aid = _action().id
    with pytest.raises(IllegalTransition, match="needs approval"), store.session() as s:
        repos.transition_action(s, aid, "executing", expected="proposed", actor="daemon", now=at(1))
    with store.session() as s:
        row = repos.transition_action(s, aid, "approved", expected="proposed", actor="x", actor_id=carol, now=at(2))
        assert (row.state, row.approved_by, row.version) == ("approved", "carol", 2)
    with pytest.raises(StaleState, match="is approved, expected proposed"), store.session() as s:
        repos.transition_action(s, aid, "approved", expected="proposed", actor="x", actor_id=dave, now=at(3))
    with store.session() as s:
        repos.transition_action(s, aid, "executing", expected="approved", actor="daemon", now=at(4))
        row = repos.transition_action(s, aid, "done", expected="executing", actor="daemon", now=at(5),
                                      result={"tx": "0xabc", "amount": Decimal("1.5")})
        assert row.result == {"tx": "0xabc", "amount": "1.5"} and row.updated_at == at(5)
    with pytest.raises(IllegalTransition), store.session() as s:
        repos.transition_action(s, aid, "failed", expected="done", actor="daemon", now=at(6))
    with store.session(readonly=True) as s:
        kinds = [e.kind for e in audit.entries(s) if e.kind.startswith("action.")]
    assert kinds == ["action.proposed", "action.approved", "action.executing", "action.done"]
    assert audit.verify(store).ok


def test_dry_run_is_never_executed(store: Store) -> None:
    with store.session() as s:
        repos.insert_action_once(s, _action("dry_run", "dry-1"), now=T0)
    for to in ("approved", "executing"):
        with pytest.raises(IllegalTransition, match="dry run"), store.session() as s:
            repos.transition_action(s, "dry-1", to, expected="proposed", actor="x", now=at(1))
    with store.session() as s:
        assert repos.transition_action(s, "dry-1", "done", expected="proposed", actor="x").state == "done"


def test_automatic_runs_without_approval_and_bad_input(store: Store) -> None:
    with store.session() as s:
        repos.insert_action_once(s, _action("automatic", "auto-1"), now=T0)
        assert repos.transition_action(s, "auto-1", "executing", expected="proposed", actor="d").state == "executing"
    with pytest.raises(NotFound), store.session() as s:
        repos.transition_action(s, "nope", "done", expected="proposed", actor="d")
    with pytest.raises(InputError, match="action mode"), store.session() as s:
        repos.insert_action_once(s, _action("yolo", "bad-1"))
    with pytest.raises(InputError, match="proposed"), store.session() as s:
        a = _action(action_id="bad-2")
        a.state = "done"
        repos.insert_action_once(s, a)
