"""Read many balances and oracle rounds from one chain.

Batched paths (:mod:`primeguard.venues.evm.batch` picks one per chain): our ``BatchReader``
contract, deployed or placed by an ``eth_call`` state override, or Multicall3's ``aggregate3``,
answers thousands of reads in one ``eth_call``; reads are chunked so each call stays under the
node's call gas cap. Naive path (no batched mode available): one JSON-RPC call per read. All return
the same values.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types, get_abi_output_types
from web3 import AsyncWeb3

from primeguard.domain.errors import ChainError
from primeguard.venues.evm import batch
from primeguard.venues.evm.abicodec import decode_result, encode_args
from primeguard.venues.evm.artifacts import contract_abi
from primeguard.venues.evm.oracle import RawRound
from primeguard.venues.evm.rpc import CountingProvider, connect, guarded

# Upper bounds measured on anvil for one read inside BatchReader (cold account + SLOAD + call
# overhead); the chunk planner keeps each eth_call at half the gas cap for headroom.
GAS_PER_NATIVE_READ = 3_000
GAS_PER_TOKEN_READ = 9_000
GAS_PER_FEED_READ = 25_000
# A generic read through BatchReader.calls (token metadata, Permit2 allowance, isApprovedForAll,
# vault and lending views): the heaviest we make (Aave getUserAccountData walks the reserves) is
# far above a plain SLOAD, so this is a generous bound per call.
GAS_PER_GENERIC_READ = 60_000
# eth_getLogs requests per JSON-RPC batch (ChainReader.logs_many): small enough for the batch limits
# hosted nodes set, large enough that a scan of a few hundred thousand blocks is one request.
LOGS_PER_BATCH = 10

ERC20_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "allowance", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "decimals", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint8"}]},
]
AGGREGATOR_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "decimals", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint8"}]},
    {"type": "function", "name": "latestRoundData", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "roundId", "type": "uint80"}, {"name": "answer", "type": "int256"},
                 {"name": "startedAt", "type": "uint256"}, {"name": "updatedAt", "type": "uint256"},
                 {"name": "answeredInRound", "type": "uint80"}]},
]


def batch_reader_abi() -> list[dict[str, Any]]:
    """The BatchReader ABI shipped with the package (kept equal to the Foundry build by a test)."""
    return contract_abi("BatchReader")


@dataclass
class BalanceReads:
    """Raw integer balances keyed by (wallet, token address or None for native)."""

    values: dict[tuple[str, str | None], int] = field(default_factory=dict)
    failed: set[tuple[str, str | None]] = field(default_factory=set)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), max(1, size))]


class ChainReader:
    """Reads for one chain, batched as ``batch_mode`` says (:mod:`primeguard.venues.evm.batch`).

    ``batch_mode`` None keeps the explicit behaviour: ``deployed`` with a ``batch_reader`` address,
    else ``per_call`` (naive per-read calls). ``auto`` and the forced modes other than ``deployed``
    and ``per_call`` detect at the first batched read (once per process and chain).

    With ``expected_chain_id`` (the config's ``chain_id``) the node's chain identity is checked at
    the first read and after every reconnect; a node on another chain makes every read raise
    :class:`~primeguard.domain.errors.ChainIdMismatch` (see :class:`CountingProvider`).
    """

    def __init__(self, chain: str, rpc_url: str, *, batch_reader: str | None, call_gas_cap: int = 30_000_000,
                 timeout_s: float = 5.0, max_parallel: int = 8, expected_chain_id: int | None = None,
                 batch_mode: batch.BatchMode | None = None) -> None:
        self.chain = chain
        self.w3: AsyncWeb3
        self.provider: CountingProvider
        self.w3, self.provider = connect(rpc_url, timeout_s, expected_chain_id=expected_chain_id, chain=chain)
        self.call_gas_cap = call_gas_cap
        self._sem = asyncio.Semaphore(max_parallel)
        self._reader: Any = None  # BatchReader functions (deployed or state_override mode)
        self._override: dict[str, Any] | None = None  # the eth_call state override in that mode
        self._mc3: str | None = None  # the Multicall3 address in multicall3 mode
        self._batch_reader = batch_reader
        self._requested: batch.BatchMode = batch_mode or ("deployed" if batch_reader else "per_call")
        self._batch_key = (chain, rpc_url, expected_chain_id, batch_reader, self._requested)
        self._choice: batch.BatchChoice | None = None
        self._choice_lock = asyncio.Lock()
        fixed = batch.static_choice(self._requested, batch_reader)
        if fixed is not None:  # no I/O needed: decide now
            self._apply(fixed)

    async def close(self) -> None:
        """Close the HTTP session (one per reader and event loop)."""
        await self.provider.disconnect()

    async def batch_choice(self) -> batch.BatchChoice:
        """The batching mode this reader uses, detected now if not yet (see :func:`batch.choose`).

        Raises:
            ChainIdMismatch / VenueUnavailable: the node serves another chain or cannot be asked.
        """
        async with self._choice_lock:
            if self._choice is None:
                await self.verify_chain()
                self._apply(await batch.choose(self._batch_key, self._requested, self._batch_reader,
                                               eth_call=self._raw_call, get_code=self._get_code))
        assert self._choice is not None
        return self._choice

    def _apply(self, choice: batch.BatchChoice) -> None:
        self._choice = choice
        if choice.mode in ("deployed", "state_override") and choice.address:
            self._reader = self.w3.eth.contract(address=self.w3.to_checksum_address(choice.address),
                                                abi=batch_reader_abi())
            self._override = batch.state_override() if choice.mode == "state_override" else None
        elif choice.mode == "multicall3":
            self._mc3 = choice.address

    async def _raw_call(self, to: str, data: bytes, override: dict[str, Any] | None) -> bytes:
        """One eth_call with raw call data (and a state override); its raw answer."""
        async with self._sem:
            return bytes(await guarded(self.chain, "eth_call", self._eth_call(to, data, override)))

    def _eth_call(self, to: str, data: bytes, override: dict[str, Any] | None) -> Any:
        """The web3 eth_call awaitable at the latest block, with the state override when given."""
        tx = {"to": to, "data": data, "gas": self.call_gas_cap}
        if override:
            return self.w3.eth.call(tx, "latest", override)  # type: ignore[arg-type]
        return self.w3.eth.call(tx)  # type: ignore[arg-type]

    async def _get_code(self, address: str) -> bytes:
        return bytes(await guarded(self.chain, "eth_getCode", self.w3.eth.get_code(address)))  # type: ignore[arg-type]

    def _refused(self) -> None:
        """A batched call in a detected mode was refused: the next reader detects again."""
        if self._choice is not None and self._choice.mode in ("multicall3", "state_override"):
            batch.forget(self._batch_key)

    async def __aenter__(self) -> ChainReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def verify_chain(self) -> None:
        """Check the node's ``eth_chainId`` now (if not checked on this connection yet).

        Raises:
            ChainIdMismatch: the node serves another chain than ``expected_chain_id``.
            VenueUnavailable / ChainError: the node could not be asked.
        """
        await guarded(self.chain, "eth_chainId", self.provider.verify_chain())

    @property
    def round_trips(self) -> int:
        return self.provider.round_trips

    def _per_call(self, gas_per_read: int) -> int:
        return max(1, (self.call_gas_cap // 2) // gas_per_read)

    async def _call(self, what: str, fn: Any) -> Any:
        """eth_call a bound contract function, encoding its arguments and decoding its output with
        eth-abi directly (:func:`calldata`).

        web3's own ``.call()`` runs every value through Python normalizers (``map_abi_data``): for a
        batch of 10,000 reads that was 85 % of the time. Same bytes, same decoding, no normalizers.
        """
        override = self._override if self._reader is not None and fn.address == self._reader.address else None
        try:
            async with self._sem:
                raw = await guarded(self.chain, what, self._eth_call(fn.address, calldata(fn), override))
        except ChainError:
            if override:
                self._refused()
            raise
        if not raw:
            if override:
                self._refused()
            raise ValueError(f"{what}: empty result (no contract at {fn.address}?)")
        types = get_abi_output_types(fn.abi)
        try:
            values = _decode(types, bytes(raw))
        except Exception as exc:  # malformed return data is a bad response, not a crash
            raise ValueError(f"{what}: undecodable result") from exc
        return values[0] if len(values) == 1 else values

    async def _ready(self) -> None:
        if self._choice is None:
            await self.batch_choice()

    async def _aggregate(self, calls: list[tuple[str, bytes]], gas_per_call: int) -> list[tuple[bool, bytes]]:
        """``(success, returnData)`` of every call through Multicall3's aggregate3 (allowFailure on
        each), chunked under the call gas cap and :data:`batch.MAX_AGGREGATE3_CALLS`; input order.

        Raises:
            ChainError / VenueUnavailable: the node refused or could not be asked (the cached mode
                is then dropped); ValueError: a malformed answer.
        """
        assert self._mc3 is not None
        mc3 = self._mc3
        per = min(batch.MAX_AGGREGATE3_CALLS, self._per_call(gas_per_call + batch.GAS_PER_AGGREGATE3_CALL))

        async def one(part: list[tuple[str, bytes]]) -> list[tuple[bool, bytes]]:
            try:
                return batch.decode_aggregate3(await self._raw_call(mc3, batch.encode_aggregate3(part), None),
                                               len(part))
            except (ChainError, ValueError):  # refused or malformed: the next reader detects again
                self._refused()
                raise

        got = await asyncio.gather(*(one(p) for p in _chunks(calls, per)))
        return [a for g in got for a in g]

    # --- balances -----------------------------------------------------------------------------

    async def balances(self, wallets: list[str], tokens: list[str]) -> BalanceReads:
        """Native balance of every wallet and every token balance of every wallet."""
        await self._ready()
        if self._mc3 is not None:
            return await self._balances_mc3(wallets, tokens)
        if self._reader is None:
            return await self.balances_naive(wallets, tokens)
        out = BalanceReads()
        jobs: list[Any] = []
        for part in _chunks(wallets, self._per_call(GAS_PER_NATIVE_READ)):
            jobs.append(self._native_chunk(part, out))
        if tokens:
            # Chunk by wallets so one call covers all tokens of a wallet group (token-major result).
            per = max(1, self._per_call(GAS_PER_TOKEN_READ) // len(tokens))
            for part in _chunks(wallets, per):
                jobs.append(self._token_chunk(tokens, part, out))
        await asyncio.gather(*jobs)
        return out

    async def _native_chunk(self, wallets: list[str], out: BalanceReads) -> None:
        assert self._reader is not None
        got = await self._call("nativeBalances", self._reader.functions.nativeBalances(wallets))
        for w, v in zip(wallets, got, strict=True):
            out.values[(w, None)] = int(v)

    async def _token_chunk(self, tokens: list[str], wallets: list[str], out: BalanceReads) -> None:
        assert self._reader is not None
        got = await self._call("tokenBalances", self._reader.functions.tokenBalances(tokens, wallets))
        values, oks = _split_token_result(got, len(tokens) * len(wallets))
        i = 0
        for t in tokens:  # token-major: result[t * len(wallets) + w]
            for w in wallets:
                if oks[i]:
                    out.values[(w, t)] = int(values[i])
                else:
                    out.failed.add((w, t))
                i += 1

    async def _balances_mc3(self, wallets: list[str], tokens: list[str]) -> BalanceReads:
        answers = await self._aggregate(batch.balance_calls(wallets, tokens), GAS_PER_TOKEN_READ)
        out = BalanceReads()
        it = iter(answers)
        for w in wallets:
            native = batch.uint_answer(next(it))
            if native is None:  # Multicall3's own getEthBalance cannot fail: the answer is wrong
                raise ValueError(f"Multicall3 getEthBalance of {w} failed")
            out.values[(w, None)] = native
            for t in tokens:
                value = batch.uint_answer(next(it))
                if value is None:
                    out.failed.add((w, t))
                else:
                    out.values[(w, t)] = value
        return out

    async def balances_naive(self, wallets: list[str], tokens: list[str]) -> BalanceReads:
        """One JSON-RPC call per read (the baseline the batch path is measured against)."""
        out = BalanceReads()

        async def native(w: str) -> None:
            async with self._sem:
                out.values[(w, None)] = int(
                    await guarded(self.chain, "eth_getBalance", self.w3.eth.get_balance(w))
                )

        async def token(w: str, t: str) -> None:
            c = self.w3.eth.contract(address=t, abi=ERC20_ABI)
            try:
                out.values[(w, t)] = int(await self._call("balanceOf", c.functions.balanceOf(w)))
            except Exception:
                out.failed.add((w, t))
                raise

        await asyncio.gather(*(native(w) for w in wallets), *(token(w, t) for w in wallets for t in tokens))
        return out

    # --- oracles ------------------------------------------------------------------------------

    async def rounds(self, feeds: list[str]) -> list[RawRound]:
        """latestRoundData + decimals for every feed; a failing feed gives ``ok=False``."""
        if not feeds:
            return []
        await self._ready()
        if self._mc3 is not None:
            answers = await self._aggregate(batch.round_calls(feeds), GAS_PER_FEED_READ // 2)
            return [batch.decode_round(self.chain, f, answers[2 * i], answers[2 * i + 1])
                    for i, f in enumerate(feeds)]
        if self._reader is None:
            return await self.rounds_naive(feeds)
        results: list[RawRound] = []
        for part in _chunks(feeds, self._per_call(GAS_PER_FEED_READ)):
            got = await self._call("latestRounds", self._reader.functions.latestRounds(part))
            for addr, r in zip(part, got, strict=True):
                results.append(_raw_round(self.chain, addr, r))
        return results

    async def rounds_naive(self, feeds: list[str]) -> list[RawRound]:
        async def one(addr: str) -> RawRound:
            c = self.w3.eth.contract(address=addr, abi=AGGREGATOR_ABI)
            try:
                dec = await self._call("decimals", c.functions.decimals())
                rid, ans, st, up, air = await self._call("latestRoundData", c.functions.latestRoundData())
            except Exception:
                return RawRound(feed=addr, chain=self.chain, ok=False)
            return RawRound(addr, self.chain, True, int(rid), int(ans), int(st), int(up), int(air), int(dec))

        return list(await asyncio.gather(*(one(f) for f in feeds)))

    # --- capability scan reads ---------------------------------------------------------------------

    async def allowances(self, triples: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], int | None]:
        """allowance(owner, spender) per (token, owner, spender); None where the read failed."""
        out: dict[tuple[str, str, str], int | None] = {}
        if not triples:
            return out
        await self._ready()
        if self._mc3 is not None:
            answers = await self._aggregate([batch.allowance_call(*t) for t in triples], GAS_PER_TOKEN_READ)
            return {t: batch.uint_answer(a) for t, a in zip(triples, answers, strict=True)}
        if self._reader is None:
            async def one(t: tuple[str, str, str]) -> None:
                c = self.w3.eth.contract(address=t[0], abi=ERC20_ABI)
                try:
                    out[t] = int(await self._call("allowance", c.functions.allowance(t[1], t[2])))
                except Exception:
                    out[t] = None

            await asyncio.gather(*(one(t) for t in triples))
            return out

        async def chunk(part: list[tuple[str, str, str]]) -> None:
            assert self._reader is not None
            fn = self._reader.functions.allowances([t[0] for t in part], [t[1] for t in part], [t[2] for t in part])
            values, oks = await self._call("allowances", fn)
            for t, v, ok in zip(part, values, oks, strict=True):
                out[t] = int(v) if ok else None

        await asyncio.gather(*(chunk(p) for p in _chunks(triples, self._per_call(GAS_PER_TOKEN_READ))))
        return out

    async def multicall(self, calls: list[tuple[str, bytes]]) -> list[bytes | None]:
        """Raw answers to arbitrary read-only calls ``(target, calldata)``, in input order.

        ``None`` where the call reverted, the target has no code, or the node refused that one read;
        callers decode each answer tolerantly (a short or malformed answer is theirs to reject).
        Batched through ``BatchReader.calls`` or Multicall3's ``aggregate3`` (an empty answer is
        None there, as on the per-call path), else one ``eth_call`` each.
        Raises VenueError only when the node cannot be asked at all.
        """
        out: list[bytes | None] = [None] * len(calls)
        if not calls:
            return out
        await self._ready()
        if self._mc3 is not None:
            answers = await self._aggregate(calls, GAS_PER_GENERIC_READ)
            return [data if ok and data else None for ok, data in answers]
        if self._reader is None:
            async def one(i: int, target: str, data: bytes) -> None:
                tx = {"to": target, "data": data, "gas": self.call_gas_cap}
                try:
                    async with self._sem:
                        raw = await guarded(self.chain, "eth_call", self.w3.eth.call(tx))  # type: ignore[arg-type]
                except ChainError:
                    return  # this read reverted: the others stand
                out[i] = bytes(raw) if raw else None

            await asyncio.gather(*(one(i, t, d) for i, (t, d) in enumerate(calls)))
            return out

        indexed = list(enumerate(calls))

        async def chunk(part: list[tuple[int, tuple[str, bytes]]]) -> None:
            assert self._reader is not None
            fn = PlainCall(self._reader.address, batch_function_abi("calls"),
                           ([c[1][0] for c in part], [c[1][1] for c in part]))
            oks, results = await self._call("calls", fn)
            if len(oks) != len(part) or len(results) != len(part):
                raise ValueError(f"BatchReader returned {len(oks)} answers for {len(part)} calls")
            for (i, _c), ok, ret in zip(part, oks, results, strict=True):
                out[i] = bytes(ret) if ok else None

        await asyncio.gather(*(chunk(p) for p in _chunks(indexed, self._per_call(GAS_PER_GENERIC_READ))))
        return out

    async def codes(self, addresses: list[str]) -> dict[str, bytes]:
        """The code at each address (one ``eth_getCode`` each: used for the few short codes only)."""
        got = await asyncio.gather(
            *(guarded(self.chain, "eth_getCode", self.w3.eth.get_code(a)) for a in addresses)  # type: ignore[arg-type]
        )
        return {a: bytes(c) for a, c in zip(addresses, got, strict=True)}

    async def code_sizes(self, addresses: list[str]) -> dict[str, int]:
        """Code size per address: BatchReader.codeSizes; with Multicall3 (which has no code-size
        read) JSON-RPC batches of eth_getCode; else, or when the node refuses batches, one
        eth_getCode each."""
        await self._ready()
        if self._mc3 is not None:
            sizes = await self._code_sizes_rpc_batch(addresses)
            if sizes is not None:
                return sizes
        if self._reader is None:
            codes = await asyncio.gather(
                *(guarded(self.chain, "eth_getCode", self.w3.eth.get_code(a)) for a in addresses)
            )
            return {a: len(c) for a, c in zip(addresses, codes, strict=True)}
        got = await self._call("codeSizes", self._reader.functions.codeSizes(addresses))
        return {a: int(n) for a, n in zip(addresses, got, strict=True)}

    async def _code_sizes_rpc_batch(self, addresses: list[str]) -> dict[str, int] | None:
        """eth_getCode of every address in JSON-RPC batches of 500; None when the node does not
        answer batches with a list (the caller then asks one by one).

        Raises:
            ChainError: a batch answered with an error, a malformed or a duplicated answer.
        """
        async def one(part: list[str]) -> dict[str, int] | None:
            reqs = [("eth_getCode", [a, "latest"]) for a in part]
            async with self._sem:
                answers = await guarded(self.chain, "eth_getCode", self.provider.make_batch_request(reqs))
            if not isinstance(answers, list) or len(answers) != len(part):
                return None
            if len({a.get("id") if isinstance(a, dict) else None for a in answers}) != len(part):
                raise ChainError("eth_getCode batch: duplicated answers", venue=f"evm:{self.chain}")
            out: dict[str, int] = {}
            for a, ans in zip(part, answers, strict=True):  # sorted by request id = request order
                res = ans.get("result") if isinstance(ans, dict) else None
                if not isinstance(res, str) or not res.startswith("0x") or len(res) % 2:
                    raise ChainError(f"eth_getCode of {a} failed", venue=f"evm:{self.chain}")
                out[a] = (len(res) - 2) // 2
            return out

        got = await asyncio.gather(*(one(p) for p in _chunks(addresses, 500)))
        if any(g is None for g in got):
            return None
        return {a: n for g in got if g is not None for a, n in g.items()}

    async def head(self) -> tuple[int, str]:
        """(number, hash) of the latest block."""
        block = await guarded(self.chain, "eth_getBlockByNumber", self.w3.eth.get_block("latest"))
        return int(block["number"]), bytes(block["hash"]).hex()

    async def block_hash(self, number: int) -> str | None:
        try:
            block = await guarded(self.chain, "eth_getBlockByNumber", self.w3.eth.get_block(number))
        except Exception:
            return None
        return bytes(block["hash"]).hex()

    async def logs(self, addresses: list[str] | None, topics: list[Any], from_block: int,
                   to_block: int) -> list[Any]:
        """eth_getLogs over [from_block, to_block]; ``addresses`` None → logs of every contract.

        The logs come back as the node sent them (JSON: hex strings), not through web3's result
        formatters, which cost more than the node's own work on a scan's few hundred logs.

        Raises:
            ChainError: the node answered with an error (e.g. a range or result limit) or not a list.
            VenueUnavailable: the node could not be asked.
        """
        flt: dict[str, Any] = {"topics": topics, "fromBlock": hex(from_block), "toBlock": hex(to_block)}
        if addresses is not None:
            flt["address"] = addresses
        async with self._sem:
            answer = await guarded(self.chain, "eth_getLogs", self.provider.make_request("eth_getLogs", [flt]))
        return self._logs_result(answer)

    def _logs_result(self, answer: Any) -> list[Any]:
        result = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(result, list):
            error = answer.get("error") if isinstance(answer, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            raise ChainError(f"eth_getLogs failed (code {code})", venue=f"evm:{self.chain}")
        return result

    async def logs_many(self, addresses: list[str] | None, topics: list[Any],
                        ranges: list[tuple[int, int]]) -> list[list[Any]]:
        """:meth:`logs` for each block range, in order: one ``eth_getLogs`` per range, sent
        :data:`LOGS_PER_BATCH` at a time in one JSON-RPC batch request (groups concurrently). One
        HTTP request instead of one per range: for a scan over a few chunks that was a third of the
        time (connections, request handling), the node's own work being the same.

        A node that refuses batches (its answer is not a list) is asked one range at a time. The
        answers of a batch are matched to the ranges by their ids (0 to n-1 within each request).

        Raises:
            ChainError: the node answered an error for any range (a range or result limit), or a
                batch answer that does not match the request.
            VenueUnavailable: the node could not be asked.
        """
        filters: list[dict[str, Any]] = []
        for a, b in ranges:
            flt: dict[str, Any] = {"topics": topics, "fromBlock": hex(a), "toBlock": hex(b)}
            if addresses is not None:
                flt["address"] = addresses
            filters.append(flt)

        # The batch body by hand, the topic lists encoded once: 500 owner topics per range made
        # web3's encoding of a six-range batch (213 kB) about a tenth of the scan's Python time.
        shared = json.dumps({"topics": topics, **({"address": addresses} if addresses is not None else {})})

        async def group(part: list[dict[str, Any]]) -> list[list[Any]]:
            if len(part) == 1:
                return [self._logs_result(await self._get_logs(part[0]))]
            body = "[" + ",".join(
                f'{{"jsonrpc":"2.0","id":{i},"method":"eth_getLogs","params":[{{"fromBlock":"{f["fromBlock"]}",'
                f'"toBlock":"{f["toBlock"]}",{shared[1:]}]}}' for i, f in enumerate(part)) + "]"
            async with self._sem:
                answer = await guarded(self.chain, "eth_getLogs", self.provider.post_json(body.encode()))
            if not isinstance(answer, list):  # batches refused: one request per range
                return [self._logs_result(a) for a in await asyncio.gather(*(self._get_logs(f) for f in part))]
            by_id = {a.get("id"): a for a in answer if isinstance(a, dict)}  # answers may come in any order
            if len(answer) != len(part) or set(by_id) != set(range(len(part))):
                raise ChainError(f"eth_getLogs batch: {len(answer)} answers for {len(part)} ranges",
                                 venue=f"evm:{self.chain}")
            return [self._logs_result(by_id[i]) for i in range(len(part))]

        got = await asyncio.gather(*(group(p) for p in _chunks(filters, LOGS_PER_BATCH)))
        return [logs for part in got for logs in part]

    async def _get_logs(self, flt: dict[str, Any]) -> Any:
        async with self._sem:
            return await guarded(self.chain, "eth_getLogs", self.provider.make_request("eth_getLogs", [flt]))

    async def storage_at(self, address: str, slot: int) -> bytes:
        return bytes(await guarded(self.chain, "eth_getStorageAt", self.w3.eth.get_storage_at(address, slot)))

    async def call_fn(self, address: str, abi: list[dict[str, Any]], name: str, *args: Any) -> Any:
        c = self.w3.eth.contract(address=address, abi=abi)
        return await self._call(name, getattr(c.functions, name)(*args))

    async def block_timestamp(self) -> int:
        block = await guarded(self.chain, "eth_getBlockByNumber", self.w3.eth.get_block("latest"))
        return int(block["timestamp"])


@dataclass(frozen=True)
class PlainCall:
    """A contract function and its arguments, as :func:`calldata` and ``ChainReader._call`` read a
    bound web3 function (``address``, ``abi``, ``args``, ``kwargs``), bound without web3's
    per-argument validation: binding ``BatchReader.calls`` for 230 reads checksum-validated every
    target and was a tenth of the capability scan's Python time. For arguments we built ourselves
    (checksummed addresses, bytes); a malformed one still fails in :func:`calldata` (eth-abi)."""

    address: str
    abi: dict[str, Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


@functools.cache
def batch_function_abi(name: str) -> dict[str, Any]:
    """The ABI entry of BatchReader function ``name``."""
    return next(f for f in batch_reader_abi() if f.get("type") == "function" and f.get("name") == name)


def calldata(fn: Any) -> bytes:
    """The call data of a bound contract function: its 4-byte selector and its arguments encoded
    by eth-abi, byte for byte what web3's ``_encode_transaction_data`` gives for plain values
    (addresses as hex strings, ints, bytes), without web3's per-value normalizers, which were 95 %
    of the capability scan's time for a 200-triple allowance batch. Keyword arguments (none of
    ours) go through web3."""
    if getattr(fn, "kwargs", None):
        return bytes.fromhex(str(fn._encode_transaction_data()).removeprefix("0x"))
    abi = fn.abi
    types = get_abi_input_types(abi)
    # Addresses as their 20 bytes: web3 validated them when the function was bound, and eth-abi
    # would checksum-validate each hex string again (a keccak per address).
    args = [_address_bytes(v, t) for v, t in zip(fn.args, types, strict=True)]
    fast = encode_args(types, args)  # the batched reads' shapes, by slicing bytes (same bytes)
    return function_abi_to_4byte_selector(abi) + (fast if fast is not None else abi_encode(types, args))


def _decode(types: list[str], raw: bytes) -> Any:
    """eth-abi's decoding of ``raw``; the batched reads' result shapes by slicing bytes (same values,
    same strictness, see :mod:`.abicodec`)."""
    fast = decode_result(types, raw)
    return fast if fast is not None else abi_decode(types, raw)


def _address_bytes(value: Any, abi_type: str) -> Any:
    if abi_type == "address" and isinstance(value, str):
        return bytes.fromhex(value[2:])
    if abi_type == "address[]":
        return [bytes.fromhex(v[2:]) if isinstance(v, str) else v for v in value]
    return value


def _split_token_result(got: Any, n: int) -> tuple[list[int], list[bool]]:
    """tokenBalances returns (uint256[] balances, bool[] ok)."""
    values, oks = got
    if len(values) != n or len(oks) != n:
        raise ValueError(f"BatchReader returned {len(values)} balances for {n} reads")
    return list(values), list(oks)


def _raw_round(chain: str, addr: str, r: Any) -> RawRound:
    ok, rid, ans, st, up, air, dec = r
    return RawRound(addr, chain, bool(ok), int(rid), int(ans), int(st), int(up), int(air), int(dec))
