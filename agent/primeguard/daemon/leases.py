"""Split the book between daemon replicas on one database with leases.

Clients are hashed into ``shards``; a replica works on the clients of the shards whose lease it
holds. Leases have a TTL and are renewed every sweep; a dead replica's shards are taken over once
its leases expire. The store guarantees two owners never hold the same unexpired lease.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from primeguard.store import repos
from primeguard.store.db import Store
from primeguard.store.tables import LeaseRow


def shard_of(client_id: str, shards: int) -> int:
    """The shard (0..shards-1) of ``client_id``: a stable hash, the same on every replica. Pure."""
    return int.from_bytes(hashlib.sha256(client_id.encode()).digest()[:4], "big") % shards


@dataclass
class ShardLeases:
    """This replica's shard leases in the store (lease rows with a TTL and fencing tokens)."""

    store: Store
    owner: str
    shards: int = 4
    ttl_s: float = 15.0
    held: dict[int, int] = field(default_factory=dict)  # shard -> fencing token

    def refresh(self, now: datetime | None = None) -> set[int]:
        """Heartbeat, renew held shards, and take free or expired ones up to a fair share
        (shards ÷ live replicas, rounded up). Returns the shards held now."""
        now = now or datetime.now(UTC)
        with self.store.session() as s:
            repos.acquire_lease(s, f"replica:{self.owner}", self.owner, self.ttl_s, now=now)
            t = LeaseRow.__table__  # type: ignore[attr-defined]
            live = s.execute(sa.select(sa.func.count()).select_from(t).where(
                t.c.name.like("replica:%"), t.c.expires_at > now)).scalar_one()
            fair = math.ceil(self.shards / max(1, int(live)))
            for shard in list(self.held):
                token = self.held[shard]
                if not repos.renew_lease(s, f"shard-{shard}", self.owner, token, self.ttl_s, now=now):
                    self.held.pop(shard)
            # Start at a replica-specific offset so replicas do not all contend for shard 0.
            start = int.from_bytes(hashlib.sha256(self.owner.encode()).digest()[:2], "big") % self.shards
            for i in range(self.shards):
                shard = (start + i) % self.shards
                if len(self.held) >= fair:
                    break
                if shard in self.held:
                    continue
                got = repos.acquire_lease(s, f"shard-{shard}", self.owner, self.ttl_s, now=now)
                if got is not None:
                    self.held[shard] = got
        return set(self.held)

    def owns(self, client_id: str) -> bool:
        """Whether this replica holds the shard of ``client_id`` (as of the last :meth:`refresh`; no I/O)."""
        return shard_of(client_id, self.shards) in self.held

    def release(self, now: datetime | None = None) -> None:
        """Give up every held shard and the replica heartbeat, so another replica takes them at once. Idempotent."""
        with self.store.session() as s:
            for shard, token in list(self.held.items()):
                repos.release_lease(s, f"shard-{shard}", self.owner, token, now=now)
            beat = repos.get_lease(s, f"replica:{self.owner}")
            if beat is not None:
                repos.release_lease(s, f"replica:{self.owner}", self.owner, beat.fencing_token, now=now)
        self.held.clear()
