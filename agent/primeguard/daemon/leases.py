"""Split the book between daemon replicas on one database with leases.

Clients are hashed into ``shards``; a replica works on the clients of the shards whose lease it
holds. Leases have a TTL and are renewed every sweep; a dead replica's shards are taken over once
its leases expire. The store guarantees two owners never hold the same unexpired lease.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from primeguard.store import repos
from primeguard.store.db import Store


def shard_of(client_id: str, shards: int) -> int:
    return int.from_bytes(hashlib.sha256(client_id.encode()).digest()[:4], "big") % shards


@dataclass
class ShardLeases:
    store: Store
    owner: str
    shards: int = 4
    ttl_s: float = 15.0
    held: dict[int, int] = field(default_factory=dict)  # shard -> fencing token

    def refresh(self, now: datetime | None = None) -> set[int]:
        """Renew held leases and try to take free or expired ones. Returns the shards held now."""
        now = now or datetime.now(UTC)
        with self.store.session() as s:
            for shard in range(self.shards):
                name = f"shard-{shard}"
                token = self.held.get(shard)
                if token is not None and repos.renew_lease(s, name, self.owner, token, self.ttl_s, now=now):
                    continue
                self.held.pop(shard, None)
                got = repos.acquire_lease(s, name, self.owner, self.ttl_s, now=now)
                if got is not None:
                    self.held[shard] = got
        return set(self.held)

    def owns(self, client_id: str) -> bool:
        return shard_of(client_id, self.shards) in self.held

    def release(self, now: datetime | None = None) -> None:
        with self.store.session() as s:
            for shard, token in list(self.held.items()):
                repos.release_lease(s, f"shard-{shard}", self.owner, token, now=now)
        self.held.clear()
