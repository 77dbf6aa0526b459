"""Which rows point into the audit chain, and what their entries must say: the table-driven half
of :func:`primeguard.store.audit.verify`.

Every repository write that appends an audit entry leaves a row behind (a decision, a withdrawal,
an approval, a playbook action, a policy version, a user). :data:`EVIDENCE` lists, per row type,
the entry each row must have (audit ``kind``, ``subject``, optionally one payload key that picks
the row's entry among several with the same kind and subject) and the fields that must agree
between the row and the entry's payload (and actor). :data:`LIFECYCLES` says which rows carry a
state that the chain's transition entries (``payload.to``) must end in.

To compare a new column (e.g. an approval's ``approver_id`` or a request ``digest``), add one
``(payload key, row getter)`` pair to the row type's :class:`Evidence`; nothing else changes.

:class:`EntryIndex` is filled while the chain is walked (one pass, O(1) per entry) and
:func:`cross_check` then reads each table once (O(1) per row), so the whole check stays linear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.store.codec import canonical_json, iso, jsonable, sha256_hex
from primeguard.store.tables import (
    ActionRow,
    DecisionRow,
    PolicyVersionRow,
    StoreModel,
    UserRow,
    WithdrawalApprovalRow,
    WithdrawalRow,
)

Getter = Callable[[Any], Any]
DECISION_KIND = "decision.recorded"


def decision_digest(row: DecisionRow) -> str:
    """Digest binding a decision row's content to its audit entry."""
    body = {
        "id": row.id, "kind": row.kind, "subject": row.subject, "outcome": row.outcome,
        "reasons": list(row.reasons), "rule_ids": list(row.rule_ids), "shadow": list(row.shadow),
        "approvals_required": row.approvals_required, "explanation": row.explanation,
        "policy_hash": row.policy_hash, "input": row.input, "masked_fields": list(row.masked_fields),
        "actor": row.actor, "decided_at": iso(row.decided_at),
    }
    return sha256_hex(canonical_json(body))


def col(name: str) -> Getter:
    """A getter for the row attribute ``name``."""
    return lambda row: getattr(row, name)


@dataclass(frozen=True)
class Evidence:
    """The audit entry a row of ``table`` must have.

    ``subject``: the entry's subject for this row. ``match``: a payload key and the row value it
    must hold, when several entries share kind and subject (approvals of one withdrawal, decisions
    about one subject). ``fields``: payload keys and the row values they must equal. ``actor``:
    the row value the entry's actor must equal. ``seq``: the row value that records the entry's seq.
    ``when``: only rows for which it is true need the entry. ``row_required``: an entry of this kind
    must also have its row (a deleted row is reported).
    """

    table: type[StoreModel]
    kind: str
    subject: Getter
    fields: tuple[tuple[str, Getter], ...] = ()
    actor: Getter | None = None
    match: tuple[str, Getter] | None = None
    seq: Getter | None = None
    when: Callable[[Any], bool] | None = None
    row_required: bool = False


@dataclass(frozen=True)
class Lifecycle:
    """Rows of ``table`` whose ``state`` must be the ``to`` of the last ``prefix*`` entry with a
    ``to`` in its payload for their subject (``initial`` when there is none)."""

    table: type[StoreModel]
    prefix: str
    subject: Getter
    state: Getter
    initial: str


EVIDENCE: tuple[Evidence, ...] = (
    Evidence(DecisionRow, DECISION_KIND, col("subject"), match=("decision_id", col("id")),
             fields=(("kind", col("kind")), ("outcome", col("outcome")), ("policy_hash", col("policy_hash")),
                     ("digest", decision_digest)),
             actor=col("actor"), seq=col("audit_seq"), row_required=True),
    Evidence(WithdrawalRow, "withdrawal.requested", col("id"),
             fields=(("client_id", col("client_id")), ("account_id", col("account_id")), ("venue", col("venue")),
                     ("chain", col("chain")), ("asset", col("asset")), ("amount", col("amount")),
                     ("destination", col("destination")), ("memo", col("memo")),
                     ("requested_by_id", col("requested_by_id")), ("digest", col("approval_digest"))),
             actor=col("requested_by"), row_required=True),
    Evidence(WithdrawalApprovalRow, "withdrawal.approval_added", col("withdrawal_id"),
             match=("approver", col("approver")),
             fields=(("role", col("role")), ("approver_id", col("approver_id")), ("digest", col("digest"))),
             actor=col("approver"),
             row_required=True),
    Evidence(ActionRow, "action.proposed", col("id"),
             fields=(("client_id", col("client_id")), ("kind", col("kind")), ("mode", col("mode")),
                     ("params", col("params"))), row_required=True),
    Evidence(ActionRow, "action.approved", col("id"), actor=col("approved_by"),
             when=lambda r: r.approved_by is not None),
    Evidence(PolicyVersionRow, "policy.proposed", col("hash"),
             fields=(("hash", col("hash")), ("format", col("format")), ("note", col("note")),
                     ("size", lambda r: len(r.content))),
             actor=col("proposed_by"), row_required=True),
    Evidence(PolicyVersionRow, "policy.approved", col("hash"), fields=(("proposed_by", col("proposed_by")),),
             actor=col("approved_by"), when=lambda r: r.approved_by is not None),
    Evidence(PolicyVersionRow, "policy.activated", col("hash"), when=lambda r: r.state in ("active", "retired")),
    Evidence(PolicyVersionRow, "policy.rejected", col("hash"), when=lambda r: r.state == "rejected"),
    Evidence(UserRow, "user.created", col("name"), fields=(("role", col("role")),), row_required=True),
    Evidence(UserRow, "user.revoked", col("name"), when=lambda r: r.revoked_at is not None),
)

LIFECYCLES: tuple[Lifecycle, ...] = (
    Lifecycle(WithdrawalRow, "withdrawal.", col("id"), col("state"), "requested"),
    Lifecycle(ActionRow, "action.", col("id"), col("state"), "proposed"),
)

_MATCH_KEY: dict[str, str] = {ev.kind: ev.match[0] for ev in EVIDENCE if ev.match is not None}
_KINDS = frozenset(ev.kind for ev in EVIDENCE)
_PREFIXES = tuple(lc.prefix for lc in LIFECYCLES)


@dataclass(frozen=True, slots=True)
class Problem:
    """One row (or entry, or anchor) that does not agree with the chain."""

    table: str
    row_id: str
    reason: str
    seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "row_id": self.row_id, "reason": self.reason, "seq": self.seq}


@dataclass
class EntryIndex:
    """The entries rows are checked against, keyed by ``(kind, subject, match value)``; for each
    lifecycle, the last transition per subject. Fed one entry at a time in seq order."""

    entries: dict[tuple[str, str, str | None], tuple[int, str, Any]] = field(default_factory=dict)
    last_to: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    seen: set[tuple[str, str, str | None]] = field(default_factory=set)

    def add(self, seq: int, actor: str, kind: str, subject: str, payload: Any) -> None:
        """Index one entry (cheap: most kinds are ignored)."""
        body = payload if isinstance(payload, dict) else {}
        if kind in _KINDS:
            mkey = _MATCH_KEY.get(kind)
            mval = None if mkey is None else _text(body.get(mkey))
            self.entries[(kind, subject, mval)] = (seq, actor, body)
        if "to" in body and kind.startswith(_PREFIXES):
            for prefix in _PREFIXES:
                if kind.startswith(prefix):
                    self.last_to[(prefix, subject)] = (seq, str(body["to"]))


def cross_check(session: Session, index: EntryIndex, *, batch: int = 2000,
                evidence: tuple[Evidence, ...] = EVIDENCE,
                lifecycles: tuple[Lifecycle, ...] = LIFECYCLES) -> Iterator[Problem]:
    """Every row that points into the chain against its entries (and every creation entry against
    its row). Yields problems; reads each table once."""
    tables: dict[type[StoreModel], tuple[list[Evidence], list[Lifecycle]]] = {}
    for ev in evidence:
        tables.setdefault(ev.table, ([], []))[0].append(ev)
    for lc in lifecycles:
        tables.setdefault(lc.table, ([], []))[1].append(lc)
    for model, (evs, lcs) in tables.items():
        name = str(model.__tablename__)
        for row in _rows(session, model, batch):
            rid = _row_id(model, row)
            for ev in evs:
                problem = _check_row(index, ev, row, name, rid)
                if problem is not None:
                    yield problem
            for lc in lcs:
                problem = _check_state(index, lc, row, name, rid)
                if problem is not None:
                    yield problem
    required = {ev.kind: str(ev.table.__tablename__) for ev in evidence if ev.row_required}
    for key, (seq, _actor, _body) in index.entries.items():
        missing_from = required.get(key[0])
        if missing_from is not None and key not in index.seen:
            name = missing_from
            rid = key[1] if key[2] is None else f"{key[1]}/{key[2]}"
            yield Problem(name, rid, f"{key[0]} entry {seq} records a {name} row ({rid}) that is missing from "
                                     f"the {name} table: deleted after it was recorded", seq)


def _check_row(index: EntryIndex, ev: Evidence, row: Any, table: str, rid: str) -> Problem | None:
    if ev.when is not None and not ev.when(row):
        return None
    subject = str(ev.subject(row))
    mval = None if ev.match is None else _text(ev.match[1](row))
    key = (ev.kind, subject, mval)
    found = index.entries.get(key)
    if found is None:
        return Problem(table, rid, f"{table} row {rid} has no {ev.kind} entry in the audit log: the entry is "
                                   "missing (the log was truncated or rolled back, or the entry deleted)")
    index.seen.add(key)
    seq, actor, body = found
    if ev.seq is not None and ev.seq(row) != seq:
        return Problem(table, rid, f"{table} row {rid} was changed after it was recorded: it points to audit "
                                   f"entry {ev.seq(row)} but its {ev.kind} entry is {seq}", seq)
    if ev.actor is not None and _text(ev.actor(row)) != actor:
        return Problem(table, rid, f"{table} row {rid} was changed after it was recorded: actor is "
                                   f"{_short(ev.actor(row))} but entry {seq} ({ev.kind}) says {_short(actor)}", seq)
    for pkey, get in ev.fields:
        mine, theirs = _norm(get(row)), body.get(pkey)
        if mine != theirs:
            return Problem(table, rid, f"{table} row {rid} was changed after it was recorded: {pkey} is "
                                       f"{_short(mine)} but entry {seq} ({ev.kind}) says {_short(theirs)}", seq)
    return None


def _check_state(index: EntryIndex, lc: Lifecycle, row: Any, table: str, rid: str) -> Problem | None:
    state = str(lc.state(row))
    seq, logged = index.last_to.get((lc.prefix, str(lc.subject(row))), (None, lc.initial))
    if state == logged:
        return None
    where = f"its last transition in the audit log (entry {seq}) is to {logged}" if seq is not None else (
        f"the audit log has no transition for it (it should be {lc.initial})")
    return Problem(table, rid, f"{table} row {rid} is {state} but {where}: transition entries are missing "
                               "(the log was truncated or rolled back) or the row was changed", seq)


def _rows(session: Session, model: type[StoreModel], batch: int) -> Iterator[Any]:
    stmt = sa.select(model).execution_options(yield_per=max(1, batch))
    yield from session.execute(stmt).scalars()


def _row_id(model: type[StoreModel], row: Any) -> str:
    table = model.__table__  # type: ignore[attr-defined]
    return ":".join(str(getattr(row, c.name)) for c in table.primary_key.columns)


def _norm(value: Any) -> Any:
    try:
        return jsonable(value)
    except Exception:  # an unstorable value never equals a stored one
        return repr(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
