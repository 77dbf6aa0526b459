"""Typed errors for primeguard: one root, one branch per area.

A *denial* is never an exception (see :mod:`primeguard.domain.decision`); these errors are for
things that could not be done at all: bad input, an unreachable venue, a missing tool.
Messages must never contain secrets: adapters pass only redacted context here.
"""

from __future__ import annotations


class PrimeguardError(Exception):
    """Root of every error primeguard raises on purpose."""


class InputError(PrimeguardError, ValueError):
    """A value given by a user or a file is malformed (amount, address, asset...)."""


class ConfigError(PrimeguardError):
    """A config or scenario file is invalid. Carries the file and the field (or line)."""

    def __init__(self, message: str, *, file: str | None = None, location: str | None = None) -> None:
        self.file = file
        self.location = location
        where = ":".join(p for p in (file, location) if p)
        super().__init__(f"{where}: {message}" if where else message)


class YamlSourceError(PrimeguardError):
    """A YAML file is unreadable, too large, not valid YAML, or uses a refused construct (anchor,
    alias, deep nesting, duplicate key). ``line`` is 1-based when known. Callers add the file name."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class AuthenticationError(PrimeguardError):
    """No token, or a token no active user holds: the caller is nobody (code ``unauthenticated``)."""

    code = "unauthenticated"


class AuthorizationError(PrimeguardError):
    """The authenticated user's role may not do this (code ``forbidden_role``)."""

    code = "forbidden_role"


class ToolchainError(PrimeguardError):
    """A required external tool (anvil, forge, solc shim) is missing or failed."""


class SandboxError(PrimeguardError):
    """The local sandbox (anvil chain, venue simulators) could not be started or driven."""


# --- venues -------------------------------------------------------------------------------------


class VenueError(PrimeguardError):
    """A venue (exchange, chain node, indexer) did not give a usable answer.

    ``venue`` names the venue; ``code`` is the venue's own error code when there is one.
    """

    retryable: bool = False

    def __init__(self, message: str, *, venue: str = "", code: str | None = None) -> None:
        self.venue = venue
        self.code = code
        prefix = f"[{venue}{' ' + code if code else ''}] " if venue else ""
        super().__init__(prefix + message)


class VenueUnavailable(VenueError):
    """Timeout, connection refused, 5xx: the venue may answer later."""

    retryable = True


class VenueRateLimited(VenueUnavailable):
    """429 / 418 or a venue's rate-limit code. ``retry_after`` in seconds when the venue said."""

    def __init__(
        self, message: str, *, venue: str = "", code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, venue=venue, code=code)
        self.retry_after = retry_after


class VenueBadResponse(VenueError):
    """The venue answered with a body we cannot parse or that contradicts itself."""


class VenueBadRequest(VenueError):
    """The venue refused our request as invalid or naming nothing that exists (a malformed address,
    an unknown subaccount or id): our input is wrong, the venue is up. Never retried."""


class VenueAuthError(VenueError):
    """Bad signature, unknown or revoked key, IP not allowed. Never retried."""


class VenuePermissionDenied(VenueError):
    """The key is valid but lacks the permission for this call."""


class AddressNotWhitelisted(VenuePermissionDenied):
    """A withdrawal destination is not on the venue's whitelist."""


class InsufficientFunds(VenueError):
    """Not enough balance for the requested movement."""


class ChainError(VenueError):
    """An EVM node call failed or returned something unusable."""


class ChainIdMismatch(ChainError):
    """The node answers ``eth_chainId`` with another chain than the config names: nothing it says
    is trusted and nothing is signed for or sent to it. ``expected``/``actual`` are the two ids
    (``actual`` None when the node's answer was not a chain id at all)."""

    def __init__(self, message: str, *, venue: str = "", expected: int, actual: int | None) -> None:
        super().__init__(message, venue=venue, code="chain_id_mismatch")
        self.expected = expected
        self.actual = actual


# --- policy, custody, store -----------------------------------------------------------------


class PolicyError(PrimeguardError):
    """A policy file or version is invalid, or a policy operation is not allowed."""


class PolicyLoadError(PolicyError):
    """A policy file is malformed. ``file`` and ``line`` point at the problem."""

    def __init__(self, message: str, *, file: str, line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.reason = message
        super().__init__(f"{file}:{line if line is not None else '?'}: {message}")


class CustodyError(PrimeguardError):
    """A custody operation (withdrawal lifecycle, signing) cannot proceed."""


class ApprovalError(CustodyError):
    """An approval breaks four-eyes or role rules (self-approval, wrong role, already decided)."""


class SelfApprovalError(ApprovalError):
    """Four eyes: the requester or proposer tried to approve their own request (code ``self_approval``)."""

    code = "self_approval"


class ApprovalDigestMismatch(CustodyError):
    """What was approved is not what would be sent: the request changed after its approval."""


class SignerError(CustodyError):
    """The keystore cannot be opened or used. Never carries key material."""


class ScreeningError(PrimeguardError):
    """A destination failed screening (listed, or no source could answer): the operation is refused."""

    code = "sanctioned"


class ScreeningUnavailableError(ScreeningError):
    """No screening source could answer about a destination: refused (fail closed), not listed."""

    code = "screening_unavailable"


class StoreError(PrimeguardError):
    """The database refused or lost something."""


class AuditChainBroken(StoreError):
    """The audit log's hash chain does not verify."""
