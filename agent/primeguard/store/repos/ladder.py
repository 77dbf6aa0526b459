"""Ladder states: each client's rung and its clocks (entered_at, margin-call deadline, cooldowns),
stored so that a restarted daemon resumes them exactly, and the client's acknowledgement of a
margin call.

Contract (session first, nothing commits, audit entry in the same transaction, ``now`` passed in):
see :mod:`primeguard.store.repos`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.errors import InputError
from primeguard.store import audit
from primeguard.store._sql import table_of
from primeguard.store.codec import as_utc
from primeguard.store.errors import NotFound
from primeguard.store.repos._helpers import acting_user, enum_value, get_row, required, resolve_now
from primeguard.store.tables import LadderRung, LadderStateRow


def get_ladder_state(session: Session, client_id: str) -> LadderStateRow | None:
    """The stored ladder state of ``client_id`` (None when never recorded)."""
    return get_row(session, LadderStateRow, client_id)


def ladder_states(session: Session) -> list[LadderStateRow]:
    """Every stored ladder state, by client id."""
    t = table_of(LadderStateRow)
    return list(session.execute(sa.select(LadderStateRow).order_by(t.c.client_id)).scalars())


def save_ladder_state(session: Session, client_id: str, *, state: str, entered_at: datetime,
                      deadline: datetime | None, below: Sequence[datetime | None], actor: str = "daemon",
                      now: datetime | None = None) -> LadderStateRow:
    """Store where ``client_id`` stands and its clocks, exactly as given (times as aware UTC).

    Nothing is written when nothing changed. A change of rung, episode (``entered_at``) or deadline
    is audited as ``ladder.<state>``; a change of the cooldown clocks alone as ``ladder.clock``. A
    new episode clears the previous episode's acknowledgement.

    Raises:
        InputError: unknown state, or a naive time.
    """
    row = get_row(session, LadderStateRow, required(client_id, "client_id"))
    return _save(session, client_id, row, state=state, entered_at=entered_at, deadline=deadline, below=below,
                 actor=actor, now=now)


@dataclass(frozen=True)
class LadderSave:
    """One client's rung and clocks for :func:`save_ladder_states` (the arguments of :func:`save_ladder_state`)."""

    client_id: str
    state: str
    entered_at: datetime
    deadline: datetime | None
    below: Sequence[datetime | None]


_CHUNK = 500  # client ids per SELECT


def save_ladder_states(session: Session, states: Iterable[LadderSave], *, actor: str = "daemon",
                       now: datetime | None = None) -> None:
    """:func:`save_ladder_state` for many clients (same checks, writes and audit entries, in the
    order given), reading their stored rows with one SELECT per 500 clients instead of one each."""
    todo = list(states)
    t = table_of(LadderStateRow)
    ids = [required(x.client_id, "client_id") for x in todo]
    rows: dict[str, LadderStateRow] = {}
    for i in range(0, len(ids), _CHUNK):
        stmt = sa.select(LadderStateRow).where(t.c.client_id.in_(ids[i:i + _CHUNK]))
        rows.update((r.client_id, r) for r in session.execute(stmt.execution_options(populate_existing=True)).scalars())
    for x in todo:
        rows[x.client_id] = _save(session, x.client_id, rows.get(x.client_id), state=x.state,
                                  entered_at=x.entered_at, deadline=x.deadline, below=x.below, actor=actor, now=now)


def _save(session: Session, client_id: str, row: LadderStateRow | None, *, state: str, entered_at: datetime,
          deadline: datetime | None, below: Sequence[datetime | None], actor: str,
          now: datetime | None) -> LadderStateRow:
    """The body of :func:`save_ladder_state` once the stored ``row`` (or None) is read."""
    now = resolve_now(now)
    state = enum_value(LadderRung, state, "ladder state")
    entered = as_utc(entered_at)
    due = None if deadline is None else as_utc(deadline)
    clocks = [None if t is None else as_utc(t).isoformat() for t in below]
    if row is not None and (row.state, as_utc(row.entered_at), _opt(row.deadline), list(row.below)) == (
            state, entered, due, clocks):
        return row
    moved = row is None or (row.state, as_utc(row.entered_at), _opt(row.deadline)) != (state, entered, due)
    if row is None:
        row = LadderStateRow(client_id=client_id, state=state, entered_at=entered, deadline=due, below=clocks,
                             updated_at=now)
    elif as_utc(row.entered_at) != entered:
        row.ack_at = row.ack_by = row.ack_note = None
    row.state, row.entered_at, row.deadline, row.below, row.updated_at = state, entered, due, clocks, now
    session.add(row)
    session.flush()
    audit.append(session, actor=actor, kind=f"ladder.{state}" if moved else "ladder.clock", subject=client_id,
                 now=now, payload={"state": state, "entered_at": entered.isoformat(),
                                   "deadline": None if due is None else due.isoformat(), "below": clocks})
    return row


def acknowledge_margin_call(session: Session, client_id: str, *, actor_id: int | None, note: str = "",
                            now: datetime | None = None) -> LadderStateRow:
    """Record that ``client_id`` acknowledged its margin call, entered by the active user
    ``actor_id`` (audited as ``ladder.acknowledged``). The deadline and the rung do not change: an
    acknowledgement never stops the clock.

    Raises:
        NotFound: no ladder state for the client. InputError: the client is not in margin call or
        above, or the note is too long. ApprovalError: no such active user.
    """
    now = resolve_now(now)
    if len(note) > 2000:
        raise InputError("acknowledgement note: at most 2000 characters")
    row = get_row(session, LadderStateRow, required(client_id, "client_id"))
    if row is None:
        raise NotFound(f"no ladder state for client {client_id}")
    if row.state in (LadderRung.NORMAL, LadderRung.WARN):
        raise InputError(f"client {client_id} is at {row.state}: there is no margin call to acknowledge")
    user = acting_user(session, actor_id, f"acknowledging {client_id}'s margin call")
    row.ack_at, row.ack_by, row.ack_note, row.updated_at = now, user.name, note or None, now
    session.add(row)
    session.flush()
    audit.append(session, actor=user.name, kind="ladder.acknowledged", subject=client_id, now=now,
                 payload={"state": row.state, "entered_at": as_utc(row.entered_at).isoformat(),
                          "deadline": None if row.deadline is None else as_utc(row.deadline).isoformat(),
                          "note": note or None, "user_id": user.id})
    return row


def _opt(t: datetime | None) -> datetime | None:
    return None if t is None else as_utc(t)


__all__ = ["LadderSave", "acknowledge_margin_call", "get_ladder_state", "ladder_states", "save_ladder_state",
           "save_ladder_states"]
