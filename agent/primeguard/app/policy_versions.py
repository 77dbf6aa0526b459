"""Policy versions kept in the agent's database, so the daemon, the CLI and the dashboard agree on
what is active. Adapts the pure propose/approve core (``policy.versions``) to the store's
``policy_versions`` table: four eyes are checked by both (the core and the store's approve)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from types import MappingProxyType

from primeguard.domain.errors import ApprovalError
from primeguard.policy.loader import canonical_content, files_from_canonical
from primeguard.policy.versions import PolicyVersion, VersionState
from primeguard.store import repos
from primeguard.store.db import Store

_STATE = {"proposed": VersionState.PROPOSED, "approved": VersionState.PROPOSED, "active": VersionState.ACTIVE,
          "retired": VersionState.SUPERSEDED, "rejected": VersionState.REJECTED}


class DbVersionStore:
    """The pure propose/approve core's version store, kept in the store's ``policy_versions`` table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _version(self, row: object) -> PolicyVersion:
        r = row
        return PolicyVersion(
            hash=r.hash, files=MappingProxyType(files_from_canonical(r.content)),  # type: ignore[attr-defined]
            proposed_by=r.proposed_by, proposed_at=_utc(r.proposed_at),  # type: ignore[attr-defined]
            state=_STATE[r.state], note=r.note or "",  # type: ignore[attr-defined]
            approved_by=r.approved_by, approved_at=None if r.approved_at is None else _utc(r.approved_at),  # type: ignore[attr-defined]
            proposed_by_id=r.proposed_by_id, approved_by_id=r.approved_by_id)  # type: ignore[attr-defined]

    def get(self, policy_hash: str) -> PolicyVersion | None:
        """The version with this hash, or ``None``. Reads only."""
        with self.store.session(readonly=True) as s:
            row = repos.get_policy_version(s, policy_hash)
            return None if row is None else self._version(row)

    def all(self) -> list[PolicyVersion]:
        """Every version (up to 1000), as the store lists them. Reads only."""
        with self.store.session(readonly=True) as s:
            return [self._version(r) for r in repos.list_policy_versions(s, limit=1000)]

    def save(self, versions: Sequence[PolicyVersion]) -> None:
        """Write ``versions`` in one transaction: new ones proposed, approved ones activated (four eyes checked
        again by the store), rejected ones closed. Raises :class:`ApprovalError` when an activation
        lacks the approver's user id; then nothing is written."""
        with self.store.session() as s:
            for v in versions:
                row = repos.get_policy_version(s, v.hash)
                if row is None:
                    repos.put_policy_version(s, canonical_content(v.files), proposed_by=v.proposed_by,
                                             proposed_by_id=v.proposed_by_id, policy_hash=v.hash, fmt="yaml-bundle",
                                             note=v.note or None,
                                             now=v.proposed_at)
                    row = repos.get_policy_version(s, v.hash)
                assert row is not None
                if v.state is VersionState.ACTIVE and row.state != "active":
                    if row.state == "proposed":
                        if v.approved_by_id is None:
                            raise ApprovalError(f"policy version {v.hash[:12]}: the approver's user id is required")
                        repos.approve_policy_version(s, v.hash, approver_id=v.approved_by_id, now=v.approved_at)
                    repos.activate_policy_version(s, v.hash, actor=v.approved_by or "", now=v.approved_at)
                elif v.state is VersionState.REJECTED and row.state in ("proposed", "approved"):
                    repos.reject_policy_version(s, v.hash, actor=v.approved_by or "compliance", now=v.closed_at)


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)
