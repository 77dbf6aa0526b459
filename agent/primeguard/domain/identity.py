"""Who acts: the pure half of identity, shared by the store, the CLI, the web and the policy core.

An :class:`Actor` is a user that exists in the store (resolved from a token by
:func:`primeguard.store.identity.resolve_token`, never from a name someone typed). Four-eyes rules
compare :attr:`Actor.user_id`; names are for people to read. Names are unique after
:func:`canonical_name` (NFKC, casefolded, stripped), so ``Tom``, ``TOM`` and ``ｔｏｍ`` are one name.
Roles and what they may do live here once (:data:`ROLE_PERMS`): the web and the CLI check the same table.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from primeguard.domain.errors import AuthorizationError, InputError

MAX_NAME_LENGTH = 64


class Perm(StrEnum):
    READ = "read"
    APPROVE_ACTION = "approve_action"
    APPROVE_POLICY = "approve_policy"
    CHANGE_DESTINATIONS = "change_destinations"  # propose (and remove) withdrawal destinations
    REQUEST_WITHDRAWAL = "request_withdrawal"
    APPROVE_WITHDRAWAL = "approve_withdrawal"
    EXECUTE_WITHDRAWAL = "execute_withdrawal"
    MANAGE_USERS = "manage_users"
    RECORD_ACK = "record_ack"  # record a client's acknowledgement of a margin call


ROLE_PERMS: dict[str, frozenset[Perm]] = {
    "viewer": frozenset({Perm.READ}),
    "treasury": frozenset({Perm.READ, Perm.REQUEST_WITHDRAWAL, Perm.APPROVE_WITHDRAWAL, Perm.EXECUTE_WITHDRAWAL,
                           Perm.RECORD_ACK}),
    "compliance": frozenset({Perm.READ, Perm.APPROVE_ACTION, Perm.APPROVE_POLICY, Perm.CHANGE_DESTINATIONS,
                             Perm.APPROVE_WITHDRAWAL, Perm.RECORD_ACK}),
    "admin": frozenset({Perm.READ, Perm.APPROVE_ACTION, Perm.APPROVE_WITHDRAWAL, Perm.EXECUTE_WITHDRAWAL,
                        Perm.CHANGE_DESTINATIONS, Perm.MANAGE_USERS, Perm.RECORD_ACK}),
}


def roles_with(perm: Perm) -> list[str]:
    """The roles that hold ``perm``, in table order."""
    return [r for r, perms in ROLE_PERMS.items() if perm in perms]


def canonical_name(name: object) -> str:
    """The comparison key of a user name: NFKC-normalised, casefolded, stripped.

    Raises:
        InputError: not a string, empty, too long, or containing control/format characters.
    """
    if not isinstance(name, str):
        raise InputError("a user name must be text")
    return _canonical_text(name)


@lru_cache(maxsize=4096)
def _canonical_text(name: str) -> str:
    """:func:`canonical_name` of a string (cached: every policy decision compares approvers' names)."""
    key = unicodedata.normalize("NFKC", name).casefold().strip()
    if not key:
        raise InputError("a user name must not be empty")
    if len(key) > MAX_NAME_LENGTH:
        raise InputError(f"a user name must be at most {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        raise InputError("a user name must not contain control or invisible characters")
    return key


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated user as the store knows it: its id, name and role (never a claimed one)."""

    user_id: int
    name: str
    role: str

    def can(self, perm: Perm) -> bool:
        return perm in ROLE_PERMS.get(self.role, frozenset())

    def require(self, perm: Perm) -> None:
        """Raises: AuthorizationError when the actor's role lacks ``perm``."""
        if not self.can(perm):
            raise AuthorizationError(
                f"{self.name} ({self.role}) may not {perm.value.replace('_', ' ')}; "
                f"roles allowed: {', '.join(roles_with(perm))}")


__all__ = ["MAX_NAME_LENGTH", "ROLE_PERMS", "Actor", "Perm", "canonical_name", "roles_with"]
