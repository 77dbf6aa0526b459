"""List an address's ``x/accountplus`` authenticators through ``dydx_v4_client``'s QueryNodeClient.

``QueryNodeClient.get_authenticators`` is declared ``async`` but calls the blocking gRPC stub with
no deadline. We therefore (1) give the channel an interceptor that puts a deadline on every call,
(2) run the call in a worker thread of a small dedicated pool, and (3) bound the wait with
``asyncio.wait_for``; if that outer bound trips, the channel is closed, which cancels the call
and frees the thread.

The response's protobuf fields are read directly. The client's JSON transcoding is not used: it
base64-decodes any string that looks like base64 (an id "1234" came back as bytes).
"""

from __future__ import annotations

import asyncio
import collections
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
from dydx_v4_client.node.client import QueryNodeClient

from primeguard.domain.errors import VenueBadRequest, VenueBadResponse, VenueRateLimited, VenueUnavailable

VENUE = "dydx-node"
OUTER_FACTOR = 4
# The chain's query server answers a bad address or an unknown id with INTERNAL and the keeper's
# error text; these fragments tell those apart from a real internal failure.
BAD_INPUT_TEXT = ("decoding bech32 failed", "invalid bech32 prefix", "empty address string", "invalid address",
                  "authenticator is not found", "not found for account")
# Node queries block a thread each: a pool of their own keeps them from starving asyncio.to_thread users.
_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="dydx-node-query")


@dataclass(frozen=True, slots=True)
class RawAuthenticator:
    id: int
    type: str
    config: bytes


class _CallDetails(
    collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                                            "compression")),
    grpc.ClientCallDetails,  # type: ignore[misc]
):
    pass


class DeadlineInterceptor(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Puts ``timeout_s`` on every unary call that has no deadline of its own."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        d = client_call_details
        timeout = d.timeout if d.timeout is not None else self.timeout_s
        details = _CallDetails(d.method, timeout, d.metadata, d.credentials, getattr(d, "wait_for_ready", None),
                               getattr(d, "compression", None))
        return continuation(details, request)


def _query(channel: grpc.Channel, address: str) -> Any:
    # The coroutine never awaits: it performs the blocking gRPC call when first stepped.
    return asyncio.run(QueryNodeClient(channel).get_authenticators(address))


async def list_authenticators(target: str, address: str, timeout_s: float) -> tuple[RawAuthenticator, ...]:
    """Every authenticator of ``address`` on the node at ``target`` (``host:port``).

    Raises:
        VenueUnavailable: unreachable, deadline exceeded, node error.
        VenueRateLimited: the node refused for load.
        VenueBadRequest: the node says the address is not a valid ``dydx1…`` address (or names
            nothing): bad input, not an outage.
        VenueBadResponse: any other gRPC status, or a response we cannot read.
    """
    raw_channel = grpc.insecure_channel(target)
    channel = grpc.intercept_channel(raw_channel, DeadlineInterceptor(timeout_s))
    loop = asyncio.get_running_loop()
    try:
        # The gRPC deadline is the real bound; this outer one only guards against a wedged thread,
        # and leaves room for queueing in the pool when many accounts are read at once.
        response = await asyncio.wait_for(loop.run_in_executor(_POOL, _query, channel, address),
                                          timeout_s * OUTER_FACTOR + 1.0)
    except TimeoutError as exc:
        raise VenueUnavailable(f"authenticators of {address}: no answer within {timeout_s:g} s", venue=VENUE,
                               code="timeout") from exc
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else None
        name = code.name if code is not None else "UNKNOWN"
        if is_bad_input(code, exc.details() if hasattr(exc, "details") else None):
            raise VenueBadRequest(f"authenticators of {address}: the node refused the address as invalid ({name})",
                                  venue=VENUE, code="bad_address") from exc
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL,
                    grpc.StatusCode.CANCELLED):
            raise VenueUnavailable(f"authenticators of {address}: {name}", venue=VENUE, code=name) from exc
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise VenueRateLimited(f"authenticators of {address}: {name}", venue=VENUE, code=name) from exc
        raise VenueBadResponse(f"authenticators of {address}: {name}", venue=VENUE, code=name) from exc
    finally:
        raw_channel.close()
    try:
        return tuple(RawAuthenticator(int(a.id), str(a.type), bytes(a.config))
                     for a in response.account_authenticators)
    except (AttributeError, TypeError, ValueError) as exc:
        raise VenueBadResponse(f"authenticators of {address}: unreadable response", venue=VENUE) from exc


def is_bad_input(code: grpc.StatusCode | None, details: str | None) -> bool:
    """Whether a gRPC failure says our request was wrong (bad address, unknown id) rather than the
    node being unwell. The chain answers those with INTERNAL plus the keeper's text."""
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
        return True
    if code is grpc.StatusCode.INTERNAL and isinstance(details, str):
        text = details.lower()
        return any(fragment in text for fragment in BAD_INPUT_TEXT)
    return False
