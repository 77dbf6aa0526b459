"""Policy versions: content-hashed, kept forever, active only after a second compliance user approves.

States: ``proposed`` -> ``active`` (approve) -> ``superseded`` (when another version is approved);
``proposed`` -> ``rejected``. At most one version is active. A version is validated (loaded and
linted) when proposed and again when approved: nothing invalid can become active.

Storage sits behind the small :class:`VersionStore` protocol, implemented by the agent's database
store (``primeguard.app.policy_versions.DbVersionStore``: its ``content`` column holds
:func:`~primeguard.policy.bundle.canonical_content`, whose SHA-256 is the version hash). This module
does no I/O; the tests keep in-memory and file-backed stores of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol

from primeguard.domain.errors import InputError, PolicyError, SelfApprovalError
from primeguard.domain.identity import canonical_name
from primeguard.policy.bundle import canonical_content, content_hash, load_bundle
from primeguard.policy.lint import lint_policy
from primeguard.policy.policyset import PolicySet

PROPOSER_ROLES = frozenset({"compliance", "admin"})
APPROVER_ROLES = frozenset({"compliance"})


class VersionState(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    SUPERSEDED = "superseded"
    REJECTED = "rejected"


class PolicyApprovalError(PolicyError):
    """Four eyes or role rules broken: the proposer approving, or an approver without the role."""


class PolicySelfApprovalError(PolicyApprovalError, SelfApprovalError):
    """The proposer tried to approve their own version (code ``self_approval``)."""


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One policy version: its files, who proposed and approved it, and its state."""

    hash: str
    files: Mapping[str, str]
    proposed_by: str
    proposed_at: datetime
    state: VersionState = VersionState.PROPOSED
    note: str = ""
    approved_by: str | None = None
    approved_at: datetime | None = None
    closed_at: datetime | None = None  # superseded or rejected at
    proposed_by_id: int | None = None  # store user ids: four eyes compares these when known
    approved_by_id: int | None = None

    @property
    def content(self) -> str:
        return canonical_content(self.files)

    def meta(self) -> dict[str, Any]:
        return {
            "hash": self.hash, "state": self.state.value, "proposed_by": self.proposed_by,
            "proposed_at": self.proposed_at.isoformat(), "note": self.note, "approved_by": self.approved_by,
            "approved_at": self.approved_at.isoformat() if self.approved_at else None,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "proposed_by_id": self.proposed_by_id, "approved_by_id": self.approved_by_id,
            "files": sorted(self.files),
        }


class VersionStore(Protocol):
    """Where versions live. ``save`` must apply all given versions atomically (one transaction)."""

    def get(self, policy_hash: str) -> PolicyVersion | None: ...

    def all(self) -> list[PolicyVersion]: ...

    def save(self, versions: Sequence[PolicyVersion]) -> None: ...


# --- the pure core -----------------------------------------------------------------------------


def propose(store: VersionStore, files: Mapping[str, str], *, proposer: str, role: str, now: datetime,
            note: str = "", proposer_id: int | None = None) -> PolicyVersion:
    """Record ``files`` as a proposed version (idempotent for content already proposed or active).

    Raises:
        PolicyLoadError: the files do not load.
        PolicyError: lint finds errors.
        PolicyApprovalError: ``role`` may not propose.
    """
    if not proposer:
        raise PolicyApprovalError("a proposal needs the proposer's user name")
    if role not in PROPOSER_ROLES:
        raise PolicyApprovalError(f"{proposer} ({role}) may not propose policy versions; "
                                  f"roles allowed: {', '.join(sorted(PROPOSER_ROLES))}")
    policy = load_bundle(files)
    _lint_clean(policy, now)
    existing = store.get(policy.hash)
    if existing is not None and existing.state in (VersionState.PROPOSED, VersionState.ACTIVE):
        return existing
    version = PolicyVersion(policy.hash, MappingProxyType(dict(files)), proposer, now, VersionState.PROPOSED, note,
                            proposed_by_id=proposer_id)
    store.save([version])
    return version


def approve(store: VersionStore, ref: str, *, approver: str, role: str, now: datetime,
            approver_id: int | None = None) -> PolicyVersion:
    """Activate a proposed version; the previously active one becomes superseded.

    Four eyes: compared by user id when the version and the approver both carry one, otherwise by
    canonical name (NFKC casefold: ``Carol`` is ``carol``).

    Raises:
        PolicySelfApprovalError: the approver proposed it.
        PolicyApprovalError: the approver lacks the compliance role.
        PolicyError: unknown / ambiguous reference, not in state proposed, content altered, invalid.
    """
    version = resolve(store, ref)
    if version.state is not VersionState.PROPOSED:
        raise PolicyError(f"policy version {version.hash[:12]} is {version.state.value}; only proposed versions "
                          f"can be approved")
    if role not in APPROVER_ROLES:
        raise PolicyApprovalError(f"{approver} ({role}) may not approve policy versions; a compliance user must")
    if not approver or _same_person(version, approver, approver_id):
        raise PolicySelfApprovalError(f"{approver} proposed policy version {version.hash[:12]} and cannot approve it; "
                                  f"a different compliance user must")
    if content_hash(version.files) != version.hash:
        raise PolicyError(f"policy version {version.hash[:12]}: stored content does not match its hash")
    policy = load_bundle(version.files)  # validate again before it can decide anything
    _lint_clean(policy, now)
    activated = replace(version, state=VersionState.ACTIVE, approved_by=approver, approved_at=now,
                        approved_by_id=approver_id)
    changes = [activated]
    current = active_version(store)
    if current is not None:
        changes.append(replace(current, state=VersionState.SUPERSEDED, closed_at=now))
    store.save(changes)
    return activated


def reject(store: VersionStore, ref: str, *, actor: str, role: str, now: datetime) -> PolicyVersion:
    """Close a proposed version without activating it."""
    version = resolve(store, ref)
    if version.state is not VersionState.PROPOSED:
        raise PolicyError(f"policy version {version.hash[:12]} is {version.state.value}; only proposed versions "
                          f"can be rejected")
    if role not in APPROVER_ROLES | PROPOSER_ROLES:
        raise PolicyApprovalError(f"{actor} ({role}) may not reject policy versions")
    rejected = replace(version, state=VersionState.REJECTED, closed_at=now)
    store.save([rejected])
    return rejected


def resolve(store: VersionStore, ref: str) -> PolicyVersion:
    """A version by full hash or a unique prefix of at least 6 hex digits."""
    exact = store.get(ref)
    if exact is not None:
        return exact
    if len(ref) < 6:
        raise PolicyError(f"policy version reference {ref!r} is too short (give at least 6 hex digits)")
    matches = [v for v in store.all() if v.hash.startswith(ref)]
    if not matches:
        raise PolicyError(f"no policy version {ref!r}")
    if len(matches) > 1:
        raise PolicyError(f"policy version prefix {ref!r} is ambiguous ({len(matches)} versions)")
    return matches[0]


def active_version(store: VersionStore) -> PolicyVersion | None:
    active = [v for v in store.all() if v.state is VersionState.ACTIVE]
    if len(active) > 1:
        raise PolicyError(f"{len(active)} policy versions are active; the store is inconsistent")
    return active[0] if active else None


def load_active(store: VersionStore) -> PolicySet | None:
    """The active policy, loaded; ``None`` when nothing is approved (decisions then deny)."""
    version = active_version(store)
    return load_bundle(version.files, root=f"policy@{version.hash[:12]}") if version else None


def _same_person(version: PolicyVersion, approver: str, approver_id: int | None) -> bool:
    if version.proposed_by_id is not None or approver_id is not None:
        return version.proposed_by_id == approver_id
    try:
        return canonical_name(approver) == canonical_name(version.proposed_by)
    except InputError:
        return True  # an unusable name never counts as a second person


def _lint_clean(policy: PolicySet, now: datetime) -> None:
    errors = [i for i in lint_policy(policy, now=now) if i.severity == "error"]
    if errors:
        raise PolicyError("policy lint found errors: " + "; ".join(str(e) for e in errors))


__all__ = [
    "PolicyApprovalError",
    "PolicySelfApprovalError",
    "PolicyVersion",
    "VersionState",
    "VersionStore",
    "active_version",
    "approve",
    "load_active",
    "propose",
    "reject",
    "resolve",
]
