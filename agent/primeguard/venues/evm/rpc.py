"""web3 connection per chain, with a round-trip counter and vendor errors mapped to ours."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp
from web3 import AsyncWeb3
from web3.exceptions import ContractLogicError, Web3Exception
from web3.providers.async_base import AsyncJSONBaseProvider

from primeguard.domain.errors import ChainError, ChainIdMismatch, VenueUnavailable

T = TypeVar("T")


class CountingProvider(AsyncJSONBaseProvider):
    """JSON-RPC over HTTP with our own aiohttp session, counting round trips (a batch counts once).

    We do not use web3's AsyncHTTPProvider: its session cache guards every request with one
    class-wide ``threading.Lock`` shared with all sync providers in the process, acquired from a
    thread pool; a cancelled request can leave it held and deadlock unrelated sync calls (seen
    in CI). One session per reader, no retries: a failed read must surface as a finding.

    Chain identity: with ``expected_chain_id`` set, the node's ``eth_chainId`` is checked before
    the first request and again whenever a new TCP connection has been opened since the last
    check (a reconnect may reach another node behind the same URL). An answer that arrived over a
    connection opened after the last check is returned only once a check passes again. A mismatch
    raises :class:`ChainIdMismatch` from every call until the node serves the configured chain.
    These checks are counted in ``chain_checks``, not in ``round_trips`` (which counts reads).
    """

    def __init__(self, url: str, timeout_s: float, *, expected_chain_id: int | None = None,
                 chain: str = "") -> None:
        super().__init__()
        self.endpoint_uri = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self.round_trips = 0
        self.expected_chain_id = expected_chain_id
        self.chain = chain
        self.chain_checks = 0
        self._connections = 0  # TCP connections opened by this provider's sessions
        self._verified_at = -1  # value of ``_connections`` right after the last passing check
        self._check_lock = asyncio.Lock()

    async def _on_connection(self, *_args: Any) -> None:
        self._connections += 1

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            trace = aiohttp.TraceConfig()
            trace.on_connection_create_end.append(self._on_connection)
            self._session = aiohttp.ClientSession(timeout=self._timeout, trace_configs=[trace])
        return self._session

    async def _send(self, body: bytes) -> bytes:
        async with self._open().post(self.endpoint_uri, data=body,
                                     headers={"Content-Type": "application/json"}) as resp:
            resp.raise_for_status()
            return await resp.read()

    async def _post(self, body: bytes) -> bytes:
        await self.verify_chain()
        self.round_trips += 1
        data = await self._send(body)
        if self._connections != self._verified_at:  # came over a connection opened since the check
            await self.verify_chain()
        return data

    async def verify_chain(self) -> None:
        """Raise :class:`ChainIdMismatch` unless the node behind the URL serves the configured chain
        (no-op without ``expected_chain_id``, or when no connection was opened since the last check)."""
        expected = self.expected_chain_id
        if expected is None or self._verified_at == self._connections:
            return
        async with self._check_lock:
            if self._verified_at == self._connections:
                return
            self.chain_checks += 1
            raw = await self._send(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "eth_chainId",
                                               "params": []}).encode())
            try:
                actual: int | None = int(json.loads(raw)["result"], 16)
            except (ValueError, KeyError, TypeError):
                actual = None
            if actual != expected:
                got = "no chain id" if actual is None else f"chain id {actual}"
                raise ChainIdMismatch(f"node answers {got}, the config says chain id {expected}",
                                      venue=f"evm:{self.chain}" if self.chain else "evm",
                                      expected=expected, actual=actual)
            self._verified_at = self._connections

    async def make_request(self, method: Any, params: Any) -> Any:
        return self.decode_rpc_response(await self._post(self.encode_rpc_request(method, params)))

    async def post_json(self, body: bytes) -> Any:
        """Post a JSON-RPC request (or batch) the caller encoded itself; the decoded answer, as is."""
        return self.decode_rpc_response(await self._post(body))

    async def make_batch_request(self, requests: Any) -> Any:
        response = self.decode_rpc_response(await self._post(self.encode_batch_rpc_request(requests)))
        if isinstance(response, list):
            return sorted(response, key=lambda r: int(r.get("id", 0)))
        return response

    async def disconnect(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def connect(rpc_url: str, timeout_s: float = 5.0, *, expected_chain_id: int | None = None,
            chain: str = "") -> tuple[AsyncWeb3, CountingProvider]:
    """A web3 client on our provider; with ``expected_chain_id`` every session checks chain identity."""
    provider = CountingProvider(rpc_url, timeout_s, expected_chain_id=expected_chain_id, chain=chain)
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
