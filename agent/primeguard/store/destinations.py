"""Repository functions for destinations on vaults (``vault_destinations``).

Same contract as :mod:`primeguard.store.repos`: session first, nothing commits here, every state
change appends its audit entry in the caller's transaction, ``now`` is passed in.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.errors import InputError
from primeguard.store import audit
from primeguard.store._sql import table_of
from primeguard.store.codec import as_utc, utcnow
from primeguard.store.tables import VaultDestinationRow, VaultDestinationState


def destination_key(vault_id: str, asset: str, address: str) -> str:
    return f"{vault_id}:{asset.lower()}:{address.lower()}"


def get(session: Session, vault_id: str, asset: str, address: str) -> VaultDestinationRow | None:
    t = table_of(VaultDestinationRow)
    stmt = sa.select(VaultDestinationRow).where(t.c.id == destination_key(vault_id, asset, address))
    return session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()


def all_rows(session: Session) -> list[VaultDestinationRow]:
    t = table_of(VaultDestinationRow)
    return list(session.execute(sa.select(VaultDestinationRow).order_by(t.c.vault_id, t.c.address)).scalars())


def record(session: Session, *, vault_id: str, client_id: str, chain: str, asset: str, address: str,
           state: str, actor: str, entry_id: str | None = None, activates_at: datetime | None = None,
           tx_hash: str | None = None, error: str | None = None, now: datetime | None = None) -> VaultDestinationRow:
    """Create or move a vault destination to ``state`` and audit it as ``destination.<state>``
    (nothing is written when the state and activation time are unchanged).

    Raises:
        InputError: unknown state.
    """
    now = as_utc(now) if now is not None else utcnow()
    if state not in {s.value for s in VaultDestinationState}:
        raise InputError(f"unknown vault destination state {state!r}")
    row = get(session, vault_id, asset, address)
    if row is not None and row.state == state and row.activates_at == activates_at and error is None:
        return row
    previous = None if row is None else row.state
    if row is None:
        row = VaultDestinationRow(id=destination_key(vault_id, asset, address), vault_id=vault_id,
                                  client_id=client_id, chain=chain, asset=asset, address=address,
                                  state=state, updated_at=now)
    row.state, row.activates_at, row.updated_at = state, activates_at, now
    row.entry_id = entry_id or row.entry_id
    row.tx_hash = tx_hash or row.tx_hash
    row.error = error
    session.add(row)
    session.flush()
    audit.append(session, actor=actor, kind=f"destination.{state}", subject=row.id,
                 payload={"vault": vault_id, "asset": asset, "address": address, "entry": row.entry_id,
                          "previous": previous, "activates_at": activates_at.isoformat() if activates_at else None,
                          "tx_hash": tx_hash, "error": error}, now=now)
    return row


__all__ = ["all_rows", "destination_key", "get", "record"]
