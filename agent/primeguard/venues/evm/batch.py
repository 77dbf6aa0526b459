"""How one chain's reads are batched: the mode, its detection at start, and the Multicall3 codec.

Modes (config ``batch_mode``, per chain):

- ``deployed``: our ``BatchReader`` at the configured ``batch_reader`` address (today's path).
- ``multicall3``: Multicall3's ``aggregate3`` at its canonical address (the same on most EVM chains),
  every sub-call with ``allowFailure = true``.
- ``state_override``: ``BatchReader``'s runtime code placed at an unused address by the third
  ``eth_call`` parameter (a state override; geth-compatible nodes and anvil honour it). Nothing is
  deployed, nothing is written; the code comes from the artifact shipped in the package.
- ``per_call``: one JSON-RPC request per read (the last resort).
- ``auto`` (the default): ``deployed`` when a ``batch_reader`` address is configured, else
  ``multicall3`` when the chain has code at the canonical address and a probe aggregate3 answers as
  Multicall3 does, else ``state_override`` when a probe call proves the node applied the override,
  else ``per_call``.

A mode forced by the config is probed the same way (``deployed`` excepted: its reads already refuse
an empty answer); a forced mode whose probe fails is not used: the reader falls back to
``per_call`` and says why in its :class:`BatchChoice`. Detection runs once per process and chain
(:func:`choose`); a batched call that the node later refuses drops the cached choice, so the next
reader detects again.

Fail closed: a failed sub-call is a missing value for that read, never a zero (see
:func:`decode_aggregate3` and the ``mc3_*`` decoders).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from primeguard.domain.errors import ChainError, ChainIdMismatch
from primeguard.venues.evm.artifacts import contract_artifact
from primeguard.venues.evm.oracle import RawRound

log = logging.getLogger(__name__)

BatchMode = Literal["auto", "multicall3", "state_override", "deployed", "per_call"]
ResolvedMode = Literal["multicall3", "state_override", "deployed", "per_call"]
BATCH_MODES: tuple[str, ...] = get_args(BatchMode)

#: Multicall3's canonical address (deployed with the same address on most EVM chains).
MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11"
#: Where the state-override mode places BatchReader's code: an address derived from a fixed label,
#: with no known key and no code on any chain; the override replaces whatever is there for that
#: one call only (BatchReader reads no storage of its own).
OVERRIDE_ADDRESS = to_checksum_address(keccak(b"primeguard.BatchReader.state-override")[12:])

AGGREGATE3 = function_signature_to_4byte_selector("aggregate3((address,bool,bytes)[])")
GET_ETH_BALANCE = function_signature_to_4byte_selector("getEthBalance(address)")
CODE_SIZES = function_signature_to_4byte_selector("codeSizes(address[])")
BALANCE_OF = bytes.fromhex("70a08231")
ALLOWANCE = bytes.fromhex("dd62ed3e")
DECIMALS = bytes.fromhex("313ce567")
LATEST_ROUND_DATA = bytes.fromhex("feaf968c")

# Extra gas per aggregate3 sub-call on top of the read itself (the CALL, copying call data and the
# answer into memory, ABI-encoding the result): measured ~1.1k-1.5k on anvil with our
# Aggregate3Reader (a balanceOf sub-call costs ~5.8k in all at 200 per batch, ~6.2k at 2,000, as
# memory grows). A cap on sub-calls per aggregate3 keeps the quadratic memory cost small and the
# request body under ~1 MB (2,000 balanceOf sub-calls ≈ 780 kB of hex), which nodes accept.
GAS_PER_AGGREGATE3_CALL = 3_000
MAX_AGGREGATE3_CALLS = 2_000

UINT80_MAX = 2**80 - 1


@dataclass(frozen=True)
class BatchChoice:
    """The batching mode a chain's reader uses: ``mode`` (resolved), what the config ``requested``,
    ``reason`` in words (for logs and ``primeguard chains``), and ``address`` where the batched
    ``eth_call``s go (None for ``per_call``)."""

    mode: ResolvedMode
    requested: BatchMode
    reason: str
    address: str | None = None


#: ``(to, data, state_override) -> return data``; raises ChainError when the node refuses or reverts.
EthCall = Callable[[str, bytes, dict[str, Any] | None], Awaitable[bytes]]
#: ``address -> code``.
GetCode = Callable[[str], Awaitable[bytes]]

_CHOICES: dict[tuple[Any, ...], BatchChoice] = {}


def chosen_modes() -> dict[str, BatchChoice]:
    """The choices made in this process so far, by chain name (the latest per chain)."""
    return {key[0]: choice for key, choice in _CHOICES.items()}


def clear_choices() -> None:
    """Forget every cached choice: each chain's next reader detects again (tests, a config reload)."""
    _CHOICES.clear()


def forget(key: tuple[Any, ...]) -> None:
    """Drop a cached choice (the next reader for that chain detects again)."""
    if _CHOICES.pop(key, None) is not None:
        log.warning("chain %s: a batched read was refused; the batching mode will be detected again", key[0])


async def choose(key: tuple[Any, ...], requested: BatchMode, batch_reader: str | None, *, eth_call: EthCall,
                 get_code: GetCode) -> BatchChoice:
    """The mode for the chain ``key`` (its first item is the chain's name), detected on first use and
    cached for the process. Never caches when the node could not be asked. (Two readers of one chain
    detecting at once both probe and agree; each reader serialises its own first reads.)

    Raises:
        ChainIdMismatch / VenueUnavailable: the node serves another chain, or cannot be reached.
    """
    cached = _CHOICES.get(key)
    if cached is not None:
        return cached
    choice = await detect(requested, batch_reader, eth_call=eth_call, get_code=get_code)
    _CHOICES[key] = choice
    level = logging.WARNING if choice.requested not in ("auto", choice.mode) else logging.INFO
    log.log(level, "chain %s: batched reads via %s (%s)", key[0], choice.mode, choice.reason)
    return choice


async def detect(requested: BatchMode, batch_reader: str | None, *, eth_call: EthCall,
                 get_code: GetCode) -> BatchChoice:
    """Decide the mode now (no cache): see the module docstring for the order and the probes.

    Raises:
        ChainIdMismatch / VenueUnavailable: from the node, unchanged (not a reason to pick a mode).
    """
    fixed = static_choice(requested, batch_reader)
    if fixed is not None:
        return fixed
    notes: list[str] = []
    if requested in ("auto", "multicall3"):
        why = await _probe_multicall3(eth_call, get_code)
        if why is None:
            return BatchChoice("multicall3", requested, "Multicall3 answers at its canonical address",
                               MULTICALL3_ADDRESS)
        notes.append(f"multicall3: {why}")
    if requested in ("auto", "state_override"):
        why = await _probe_state_override(eth_call)
        if why is None:
            return BatchChoice("state_override", requested,
                               "; ".join([*notes, "the node applies eth_call state overrides"]), OVERRIDE_ADDRESS)
        notes.append(f"state override: {why}")
    return BatchChoice("per_call", requested, "; ".join(notes) or "no batched mode available")


def static_choice(requested: BatchMode, batch_reader: str | None) -> BatchChoice | None:
    """The choice that needs no probe: ``per_call``; ``deployed`` (or ``auto`` with a
    ``batch_reader``) at the configured address. None when the node must be asked."""
    if requested == "per_call":
        return BatchChoice("per_call", requested, "configured")
    if requested == "deployed" or (requested == "auto" and batch_reader):
        if not batch_reader:
            return BatchChoice("per_call", requested, "batch_mode deployed needs a batch_reader address")
        return BatchChoice("deployed", requested, "BatchReader configured", batch_reader)
    return None


async def _probe_multicall3(eth_call: EthCall, get_code: GetCode) -> str | None:
    """None when Multicall3 at its canonical address behaves as the reads need, else why not."""
    code = await get_code(MULTICALL3_ADDRESS)
    if not code:
        return "no code at the canonical address"
    # A failing sub-call (an unknown selector on Multicall3 itself) must come back as success=false
    # without reverting the batch; a call to an address without code as success with no data; and
    # getEthBalance must answer one word.
    calls = [(MULTICALL3_ADDRESS, b"\x00\x00\x00\x00"), (OVERRIDE_ADDRESS, BALANCE_OF + bytes(32)),
             (MULTICALL3_ADDRESS, GET_ETH_BALANCE + bytes(32))]
    try:
        got = decode_aggregate3(await eth_call(MULTICALL3_ADDRESS, encode_aggregate3(calls), None), len(calls))
    except ChainIdMismatch:
        raise
    except (ChainError, ValueError) as exc:
        return f"probe aggregate3 failed ({exc})"
    if got[0][0] or not got[1][0] or got[1][1] or not got[2][0] or len(got[2][1]) != 32:
        return "probe aggregate3 answered unlike Multicall3"
    return None


async def _probe_state_override(eth_call: EthCall) -> str | None:
    """None when the node runs BatchReader's code placed by a state override, else why not.

    The probe asks the overridden reader for its own code size: only a node that applied the
    override answers exactly the runtime code's length (one that ignores the override answers
    empty)."""
    code = reader_runtime_code()
    data = CODE_SIZES + _encode_address_array([OVERRIDE_ADDRESS])
    try:
        raw = await eth_call(OVERRIDE_ADDRESS, data, state_override())
    except ChainIdMismatch:
        raise
    except ChainError as exc:
        return f"the node refused the override ({exc})"
    expected = (32).to_bytes(32, "big") + (1).to_bytes(32, "big") + len(code).to_bytes(32, "big")
    if bytes(raw) != expected:
        return "the node ignored the override" if not raw else "the probe answered wrongly"
    return None


def reader_runtime_code() -> bytes:
    """BatchReader's runtime code, from the artifact shipped in the package."""
    return bytes.fromhex(str(contract_artifact("BatchReader")["deployedBytecode"]).removeprefix("0x"))


def state_override() -> dict[str, Any]:
    """The ``eth_call`` state override that places BatchReader at :data:`OVERRIDE_ADDRESS`."""
    return {OVERRIDE_ADDRESS: {"code": "0x" + reader_runtime_code().hex()}}


# --- aggregate3 codec ---------------------------------------------------------------------------


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def _encode_address_array(addresses: list[str]) -> bytes:
    return _word(32) + _word(len(addresses)) + b"".join(bytes(12) + bytes.fromhex(a[2:]) for a in addresses)


_ONE_AND_96 = _word(1) + _word(96)  # allowFailure = true; callData's offset inside its tuple


def encode_aggregate3(calls: list[tuple[str, bytes]]) -> bytes:
    """Call data of ``aggregate3`` for ``(target, call data)`` pairs, every one with
    ``allowFailure = true``: byte for byte the standard ABI encoding (a unit test holds it equal to
    eth-abi's), built directly because eth-abi's per-value checks cost more than the node's work
    for thousands of sub-calls."""
    heads: list[bytes] = []
    tails: list[bytes] = []
    pos = 32 * len(calls)
    targets: dict[str, bytes] = {}
    for target, data in calls:
        head = targets.get(target)
        if head is None:
            head = targets[target] = bytes(12) + bytes.fromhex(target[2:]) + _ONE_AND_96
        tail = b"".join((head, len(data).to_bytes(32, "big"), data, bytes(-len(data) % 32)))
        heads.append(pos.to_bytes(32, "big"))
        tails.append(tail)
        pos += len(tail)
    return b"".join((AGGREGATE3, _word(32), _word(len(calls)), *heads, *tails))


def decode_aggregate3(raw: bytes, n: int) -> list[tuple[bool, bytes]]:
    """``(success, returnData)`` per sub-call from aggregate3's answer, checked strictly.

    Raises:
        ValueError: the answer is not ``n`` well-formed results (short, out-of-range offsets, a
            non-boolean flag): the whole batch is then unusable, never partly read.
    """
    size = len(raw)
    frombytes = int.from_bytes
    if size < 64:
        raise ValueError("aggregate3: answer too short")
    top = frombytes(raw[:32], "big")
    if top > size - 32:
        raise ValueError("aggregate3: answer too short")
    count = frombytes(raw[top:top + 32], "big")
    if count != n:
        raise ValueError(f"aggregate3: {count} results for {n} calls")
    base = top + 32
    if base + 32 * n > size:
        raise ValueError("aggregate3: answer too short")
    out: list[tuple[bool, bytes]] = []
    append = out.append
    for i in range(n):
        at = base + frombytes(raw[base + 32 * i:base + 32 * i + 32], "big")
        if at + 64 > size:
            raise ValueError("aggregate3: result out of range")
        flag = frombytes(raw[at:at + 32], "big")
        if flag > 1:
            raise ValueError("aggregate3: malformed success flag")
        start = at + frombytes(raw[at + 32:at + 64], "big")
        if start + 32 > size:
            raise ValueError("aggregate3: result out of range")
        end = start + 32 + frombytes(raw[start:start + 32], "big")
        if end > size:
            raise ValueError("aggregate3: result data out of range")
        append((flag == 1, raw[start + 32:end]))
    return out


# --- reads through aggregate3 ------------------------------------------------------------------


def uint_answer(answer: tuple[bool, bytes]) -> int | None:
    """A one-word answer as an integer; None for a failed call or an answer shorter than a word
    (an address without code answers success with no data: that is a failed read, never a zero)."""
    ok, data = answer
    if not ok or len(data) < 32:
        return None
    return int.from_bytes(data[:32], "big")


def balance_calls(wallets: list[str], tokens: list[str]) -> list[tuple[str, bytes]]:
    """Sub-calls for every native balance (Multicall3's getEthBalance) and every token balance,
    wallet-major: ``[native(w), balanceOf(t0, w), balanceOf(t1, w), ...]`` per wallet."""
    calls: list[tuple[str, bytes]] = []
    for w in wallets:
        arg = bytes(12) + bytes.fromhex(w[2:])
        calls.append((MULTICALL3_ADDRESS, GET_ETH_BALANCE + arg))
        calls.extend((t, BALANCE_OF + arg) for t in tokens)
    return calls


def allowance_call(token: str, owner: str, spender: str) -> tuple[str, bytes]:
    """The sub-call ``token.allowance(owner, spender)``."""
    return token, ALLOWANCE + bytes(12) + bytes.fromhex(owner[2:]) + bytes(12) + bytes.fromhex(spender[2:])


def round_calls(feeds: list[str]) -> list[tuple[str, bytes]]:
    """``decimals()`` then ``latestRoundData()`` of each feed."""
    return [c for f in feeds for c in ((f, DECIMALS), (f, LATEST_ROUND_DATA))]


def decode_round(chain: str, feed: str, decimals: tuple[bool, bytes], data: tuple[bool, bytes]) -> RawRound:
    """A feed's round from its two answers, with BatchReader's checks: ``ok=False`` unless both
    calls succeeded with full answers and decimals, round ids fit their ABI types."""
    dec = uint_answer(decimals)
    ok, body = data
    if dec is None or not ok or len(body) < 160 or dec > 255:
        return RawRound(feed, chain, False)
    rid, ans, st, up, air = (int.from_bytes(body[i * 32:(i + 1) * 32], "big") for i in range(5))
    if rid > UINT80_MAX or air > UINT80_MAX:
        return RawRound(feed, chain, False)
    if ans >= 2**255:
        ans -= 2**256
    return RawRound(feed, chain, True, rid, ans, st, up, air, dec)
