"""web3 connection per chain, with a round-trip counter and vendor errors mapped to ours."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import ContractLogicError, Web3Exception

from primeguard.domain.errors import ChainError, VenueUnavailable

T = TypeVar("T")


class CountingProvider(AsyncHTTPProvider):
    """AsyncHTTPProvider that counts HTTP round trips actually sent (a JSON-RPC batch counts once).

    No retries: a failed read must surface as a finding, not be hidden by a retry loop.
    """

    def __init__(self, url: str, timeout_s: float) -> None:
        super().__init__(url, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=None)
        self.round_trips = 0

    async def _make_request(self, method: Any, request_data: bytes) -> bytes:
        self.round_trips += 1
        return await super()._make_request(method, request_data)

    async def make_batch_request(self, requests: Any) -> Any:
        self.round_trips += 1
        return await super().make_batch_request(requests)


def connect(rpc_url: str, timeout_s: float = 5.0) -> tuple[AsyncWeb3, CountingProvider]:
    provider = CountingProvider(rpc_url, timeout_s)
    w3 = AsyncWeb3(provider)
    # The validation middleware asks the node for eth_chainId before every call; our reads are
    # eth_calls that carry no chain id, so it only doubles the round trips.
    w3.middleware_onion.remove("validation")
    return w3, provider


async def guarded(chain: str, what: str, call: Awaitable[T]) -> T:
    """Await a web3 call and translate its failures into our typed errors (no URLs with keys)."""
    try:
        return await call
    except ContractLogicError as exc:
        raise ChainError(f"{what} reverted", venue=f"evm:{chain}") from exc
    except (TimeoutError, ConnectionError, OSError) as exc:
        raise VenueUnavailable(f"{what}: node unreachable ({type(exc).__name__})", venue=f"evm:{chain}") from exc
    except Web3Exception as exc:
        raise ChainError(f"{what} failed: {type(exc).__name__}", venue=f"evm:{chain}") from exc
    except Exception as exc:
        # aiohttp raises its own ClientError family; treat any transport failure as unavailable.
        if type(exc).__module__.startswith("aiohttp"):
            raise VenueUnavailable(f"{what}: {type(exc).__name__}", venue=f"evm:{chain}") from exc
        raise
