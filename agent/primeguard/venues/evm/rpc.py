"""web3 connection per chain, with a round-trip counter and vendor errors mapped to ours."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp
from web3 import AsyncWeb3
from web3.exceptions import ContractLogicError, Web3Exception
from web3.providers.async_base import AsyncJSONBaseProvider

from primeguard.domain.errors import ChainError, VenueUnavailable

T = TypeVar("T")


class CountingProvider(AsyncJSONBaseProvider):
    """JSON-RPC over HTTP with our own aiohttp session, counting round trips (a batch counts once).

    We do not use web3's AsyncHTTPProvider: its session cache guards every request with one
    class-wide ``threading.Lock`` shared with all sync providers in the process, acquired from a
    thread pool; a cancelled request can leave it held and deadlock unrelated sync calls (seen
    in CI). One session per reader, no retries: a failed read must surface as a finding.
    """

    def __init__(self, url: str, timeout_s: float) -> None:
        super().__init__()
        self.endpoint_uri = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self.round_trips = 0

    async def _post(self, body: bytes) -> bytes:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        self.round_trips += 1
        async with self._session.post(self.endpoint_uri, data=body,
                                      headers={"Content-Type": "application/json"}) as resp:
            resp.raise_for_status()
            return await resp.read()

    async def make_request(self, method: Any, params: Any) -> Any:
        return self.decode_rpc_response(await self._post(self.encode_rpc_request(method, params)))

    async def make_batch_request(self, requests: Any) -> Any:
        response = self.decode_rpc_response(await self._post(self.encode_batch_rpc_request(requests)))
        if isinstance(response, list):
            return sorted(response, key=lambda r: int(r.get("id", 0)))
        return response

    async def disconnect(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


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
