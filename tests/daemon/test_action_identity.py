"""Ladder actions are done once per episode: the same (kind, client, episode) proposed again with a
newer LTV is the same action; a restarted guardian keeps the episode of the rung it restores; ready
actions run in a safe order; a failed lever records what it did before failing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from primeguard.playbooks.engine import ActionSpec, Playbook
from primeguard.risk.ladder import LadderState
from primeguard.store import repos
from primeguard.store.db import open_store
from primeguard.venues.cex.levers import CexLeverFailed, LeverItem, LeverReport

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _store(tmp_path: Path) -> Any:
    return open_store(f"sqlite:///{tmp_path / 'a.db'}", migrate=True)


def test_same_episode_with_a_newer_ltv_is_the_same_action(tmp_path: Path) -> None:
    book = Playbook(_store(tmp_path), {})
    first = ActionSpec("halt_cex", "firm-a", "firm-a:halt:t0", "automatic", {"ltv": "0.8242"})
    later = ActionSpec("halt_cex", "firm-a", "firm-a:halt:t0", "automatic", {"ltv": "0.8301"})
    assert book.propose([first]) == [first.id]
    assert book.propose([later]) == []
    other = ActionSpec("halt_cex", "firm-a", "firm-a:halt:t1", "automatic", {"ltv": "0.8242"})
    assert book.propose([other]) == [other.id]


def test_restored_rung_keeps_its_episode_and_deadline() -> None:
    from primeguard.daemon.guardian import _restored_status

    entered, row_at = T0, T0 + timedelta(minutes=7)
    deadline = T0 + timedelta(hours=4)
    stored = {"state": "margin_call", "entered_at": entered.isoformat(), "deadline": deadline.isoformat()}
    status = _restored_status("margin_call", row_at, stored)
    assert (status.state, status.entered_at, status.deadline) == (LadderState.MARGIN_CALL, entered, deadline)
    old_row = _restored_status("halt", row_at, None)  # rows written before the ladder was stored
    assert (old_row.state, old_row.entered_at, old_row.deadline) == (LadderState.HALT, row_at, None)
    assert _restored_status("halt", row_at, {"entered_at": "not a time"}).entered_at == row_at


def test_ready_actions_run_resumed_first_then_liquidate_before_halt(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ran: list[str] = []

    def lever(kind: str) -> Any:
        async def run(action: Any) -> dict[str, str]:
            ran.append(kind)
            return {"kind": kind}
        return run

    kinds = ("halt_vault", "halt_cex", "liquidate_cex", "halt_dydx", "liquidate_dydx", "margin_call")
    book = Playbook(store, {k: lever(k) for k in kinds})
    book.propose([ActionSpec("margin_call", "firm-a", "firm-a:margin_call:t0", "automatic")], now=T0)
    with store.session() as s:
        repos.transition_action(s, ActionSpec("margin_call", "firm-a", "firm-a:margin_call:t0").id, "executing",
                                expected="proposed", actor="daemon")
    book.propose([ActionSpec(k, "firm-a", "firm-a:liquidate:t1", "automatic") for k in kinds[:5]],
                 now=T0 + timedelta(minutes=1))
    asyncio.run(book.run_ready())
    assert ran[0] == "margin_call"
    assert set(ran[1:3]) == {"liquidate_cex", "liquidate_dydx"}
    assert set(ran[3:]) == {"halt_vault", "halt_cex", "halt_dydx"}


def test_failed_lever_records_what_it_did(tmp_path: Path) -> None:
    report = LeverReport("close_all_positions", "act", "firm-a-bybit", "bybit",
                         (LeverItem("position:ETH/USDT:USDT", "failed", "VenuePermissionDenied: frozen"),))

    async def failing(action: Any) -> dict[str, Any]:
        raise CexLeverFailed("1 lever item(s) failed", [report])

    book = Playbook(_store(tmp_path), {"liquidate_cex": failing})
    spec = ActionSpec("liquidate_cex", "firm-a", "firm-a:liquidate:t0", "automatic")
    book.propose([spec])
    [row] = asyncio.run(book.run_ready())
    assert row.state == "failed" and "CexLeverFailed" in (row.error or "")
    assert row.result == {"reports": [report.to_json()]}
