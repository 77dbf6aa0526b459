"""The web layer's one error: an HTTP status, a stable code and a message a person can act on.

Every refusal the API makes is a :class:`WebError` rendered as ``{"error": code, "message": ...}``
(pages render the same message in a banner). Codes are stable strings; docs/web.md lists them.
Messages never contain tokens, cookies or SQL parameters.
"""

from __future__ import annotations

# code -> default HTTP status (documented in docs/web.md)
CODES: dict[str, int] = {
    "token_in_query": 400,  # a credential-like query parameter (?token=, ?access_token=, ...): never accepted
    "unauthenticated": 401,  # no, unknown or revoked token / no valid session
    "forbidden_role": 403,  # the user's role may not do this
    "csrf": 403,  # form POST without a valid CSRF token
    "self_approval": 403,  # four eyes: the requester/proposer may not approve
    "approval_refused": 403,  # other four-eyes/role rules of the store or policy core
    "not_found": 404,
    "not_pending": 409,  # the thing is no longer waiting for this step
    "illegal_transition": 409,  # e.g. approving a dry-run action
    "conflict": 409,  # changed concurrently: reload and decide again
    "invalid_input": 422,
    "invalid_policy": 422,  # a proposal does not load or lint
    "payload_too_large": 413,  # body over the limit (64 KiB API, 16 KiB forms), chunked or not
    "uri_too_long": 414,
    "headers_too_large": 431,
    "sanctioned": 422,  # the destination is on a sanctions list: refused, nothing proposed
    "withdrawals_unavailable": 503,  # no withdrawal service configured on this server
    "destinations_unavailable": 503,  # no destination service configured on this server
    "screening_unavailable": 503,  # no screening source could answer: refused (fail closed)
    "store_unavailable": 503,  # the database refused or failed
    "unavailable": 503,  # another part of primeguard could not do it now (venue, chain, signer)
    "internal": 500,
}


class WebError(Exception):
    """A refusal with an HTTP status and a stable code."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else CODES.get(code, 400)

    def json(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


def destinations_unavailable() -> WebError:
    """The refusal of every destination route on a server started without the destination service."""
    return WebError("destinations_unavailable", "this server has no destination service configured; start it with "
                                                "the agent's config (primeguard web --config)")
