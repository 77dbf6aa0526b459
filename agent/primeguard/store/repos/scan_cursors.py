"""Scan cursors: how far a chain scanner got (block number and hash), advanced optimistically.

Contract (session first, nothing commits, audit entry in the same transaction, ``now`` passed in):
see :mod:`primeguard.store.repos`.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.errors import InputError
from primeguard.store._sql import rowcount, table_of, upsert_insert
from primeguard.store.errors import StaleState
from primeguard.store.repos._helpers import get_row, resolve_now
from primeguard.store.tables import ScanCursorRow


def get_cursor(session: Session, chain: str, kind: str) -> ScanCursorRow | None:
    return get_row(session, ScanCursorRow, chain, kind)


def set_cursor(
    session: Session, chain: str, kind: str, last_block: int, block_hash: str, *,
    expected_block: int | None = None, now: datetime | None = None,
) -> ScanCursorRow:
    """Save how far a scanner got. With ``expected_block`` the update only happens if the cursor is
    still there (two scanners cannot both advance it); otherwise it is an upsert.

    Raises:
        StaleState: ``expected_block`` given and the cursor moved (or does not exist).
    """
    now = resolve_now(now)
    if last_block < 0:
        raise InputError("last_block must be >= 0")
    t = table_of(ScanCursorRow)
    if expected_block is not None:
        res = session.execute(
            sa.update(t).where(t.c.chain == chain, t.c.kind == kind, t.c.last_block == expected_block)
            .values(last_block=last_block, block_hash=block_hash, updated_at=now)
        )
        if rowcount(res) != 1:
            raise StaleState(f"scan cursor {chain}/{kind} is not at block {expected_block}")
    else:
        ins = upsert_insert(session, t).values(
            chain=chain, kind=kind, last_block=last_block, block_hash=block_hash, updated_at=now
        )
        session.execute(ins.on_conflict_do_update(
            index_elements=[t.c.chain, t.c.kind],
            set_={"last_block": ins.excluded.last_block, "block_hash": ins.excluded.block_hash,
                  "updated_at": ins.excluded.updated_at},
        ))
    row = get_row(session, ScanCursorRow, chain, kind)
    assert row is not None
    return row
