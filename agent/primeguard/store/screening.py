"""Repository functions for imported sanctions lists (``screening_lists``, ``screening_addresses``).

Same contract as :mod:`primeguard.store.repos`: session first, nothing commits here, the audit
entry is appended in the caller's transaction, ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.store import audit
from primeguard.store._sql import table_of
from primeguard.store.codec import as_utc, utcnow
from primeguard.store.tables import ScreeningAddressRow, ScreeningListRow


def normal_address(address: str) -> str:
    """The form addresses are stored and looked up in: lower-case for ``0x`` hex, stripped otherwise."""
    a = address.strip()
    return a.lower() if a[:2].lower() == "0x" else a


def import_list(session: Session, *, source: str, fmt: str, source_date: str | None, sha256: str,
                addresses: Iterable[tuple[str, str | None]], actor: str,
                now: datetime | None = None) -> ScreeningListRow:
    """Record an imported list and its addresses; the addresses of earlier imports of the same
    ``source`` are dropped (their list rows stay as history). Audited as ``screening.list_imported``."""
    now = as_utc(now) if now is not None else utcnow()
    unique: dict[str, str | None] = {}
    for addr, label in addresses:
        unique.setdefault(normal_address(addr), label)
    row = ScreeningListRow(source=source, fmt=fmt, source_date=source_date, sha256=sha256, count=len(unique),
                           imported_by=actor, imported_at=now)
    session.add(row)
    session.flush()
    lists, addrs = table_of(ScreeningListRow), table_of(ScreeningAddressRow)
    older = sa.select(lists.c.id).where(lists.c.source == source, lists.c.id != row.id)
    session.execute(sa.delete(addrs).where(addrs.c.list_id.in_(older)))
    if unique:
        session.execute(sa.insert(addrs), [{"list_id": row.id, "address": a, "label": (lab or None) and lab[:200]}
                                           for a, lab in unique.items()])
    audit.append(session, actor=actor, kind="screening.list_imported", subject=source,
                 payload={"list_id": row.id, "format": fmt, "source_date": source_date, "sha256": sha256,
                          "count": len(unique)}, now=now)
    return row


def lists(session: Session) -> list[ScreeningListRow]:
    """Every imported list, newest first."""
    t = table_of(ScreeningListRow)
    return list(session.execute(sa.select(ScreeningListRow).order_by(t.c.imported_at.desc(), t.c.id.desc())).scalars())


def listed_in(session: Session, address: str) -> list[tuple[str, str | None]]:
    """``(source, label)`` of every current list holding ``address``."""
    lists_t, addrs = table_of(ScreeningListRow), table_of(ScreeningAddressRow)
    stmt = (sa.select(lists_t.c.source, addrs.c.label)
            .join(lists_t, lists_t.c.id == addrs.c.list_id)
            .where(addrs.c.address == normal_address(address)))
    return [(str(s), lab) for s, lab in session.execute(stmt).all()]


__all__ = ["import_list", "listed_in", "lists", "normal_address"]
