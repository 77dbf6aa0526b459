"""Who may move a wallet's tokens: approvals on *any* token, Permit2 allowances, NFT operators.

Discovery reads logs filtered by the owner topic across every contract (no address filter), one
``eth_getLogs`` per block chunk for all owners and all event kinds at once:

- ERC-20 ``Approval(owner, spender, value)`` (three topics) on any token contract;
- ERC-721 / ERC-1155 ``ApprovalForAll(owner, operator, approved)``;
- Permit2's ``Approval``, ``Permit`` and ``Lockdown`` (only from the canonical Permit2 address:
  anyone can emit look-alike events from another contract).

Logs only say where to look. What counts is confirmed by batched reads of the current state
(``allowance``, ``isApprovedForAll``, Permit2 ``allowance(owner, token, spender)``), so a revoked or
expired grant never comes from a log replay. Token metadata is read tolerantly: string or bytes32
symbols, missing ``decimals`` or ``totalSupply`` (None, never a guess).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak

from primeguard.venues.evm.reader import ChainReader


def _topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


#: Permit2 lives at the same address on every chain (deterministic deployment).
PERMIT2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3"

APPROVAL_TOPIC = _topic("Approval(address,address,uint256)")  # ERC-20 (3 topics) and ERC-721 (4)
APPROVAL_FOR_ALL_TOPIC = _topic("ApprovalForAll(address,address,bool)")  # ERC-721 and ERC-1155
P2_APPROVAL_TOPIC = _topic("Approval(address,address,address,uint160,uint48)")
P2_PERMIT_TOPIC = _topic("Permit(address,address,address,uint160,uint48,uint48)")
P2_LOCKDOWN_TOPIC = _topic("Lockdown(address,address,address)")
GRANT_TOPICS = [APPROVAL_TOPIC, APPROVAL_FOR_ALL_TOPIC, P2_APPROVAL_TOPIC, P2_PERMIT_TOPIC, P2_LOCKDOWN_TOPIC]

SEL_SYMBOL = _selector("symbol()")
SEL_DECIMALS = _selector("decimals()")
SEL_TOTAL_SUPPLY = _selector("totalSupply()")
SEL_IS_APPROVED_FOR_ALL = _selector("isApprovedForAll(address,address)")
SEL_P2_ALLOWANCE = _selector("allowance(address,address,address)")

#: Allowances this large are unlimited in practice whatever the token (max uint256 or near it).
UNLIMITED_FROM = 2**255
#: Integer widths tokens store allowances in. UNI and COMP keep uint96 and turn
#: ``approve(2**256 - 1)`` into ``2**96 - 1``: the maximum of the storage type is "unlimited" too.
STORAGE_WIDTHS = (64, 96, 112, 128, 160, 192, 224, 256)
PERMIT2_MAX = 2**160 - 1  # Permit2 amounts are uint160; the maximum never decrements

Pair = tuple[str, str, str]  # (token or collection, owner, spender/operator), checksummed


def is_unlimited(amount: int, total_supply: int | None = None) -> bool:
    """True when ``amount`` lets the spender take everything: at least 2**255, exactly the maximum
    of a storage width tokens use (2**96 - 1 for UNI/COMP, 2**160 - 1 for Permit2, ...), or more
    than the token's whole supply (when known and non-zero)."""
    if amount >= UNLIMITED_FROM:
        return True
    if any(amount == 2**w - 1 for w in STORAGE_WIDTHS):
        return True
    return total_supply is not None and total_supply > 0 and amount > total_supply


@dataclass
class Grants:
    """Grants discovered from logs: ERC-20 (token, owner, spender), operators (collection, owner,
    operator) and Permit2 (token, owner, spender)."""

    erc20: set[Pair] = field(default_factory=set)
    operators: set[Pair] = field(default_factory=set)
    permit2: set[Pair] = field(default_factory=set)

    def update(self, other: Grants) -> None:
        self.erc20 |= other.erc20
        self.operators |= other.operators
        self.permit2 |= other.permit2


_TOPIC_PAD = "0x" + "0" * 24


def topic_address(addr: str) -> str:
    """An address as the 32-byte topic an indexed ``address`` parameter is logged as."""
    return _TOPIC_PAD + addr[2:].lower()


def _hex(value: Any) -> str:
    return value.hex() if not isinstance(value, str) else value.removeprefix("0x")


_HEX40 = re.compile("[0-9a-f]{40}")
_CHECKSUMMED: dict[str, str] = {}  # lower-case hex → EIP-55 form; process-wide (it never changes)
_CHECKSUMMED_MAX = 100_000


def checksum_address(address: str) -> str:
    """The EIP-55 checksummed form of a ``0x`` address (any case), cached for the process: a scan
    sees the same tokens, owners and spenders every run, and eth-utils' ``to_checksum_address``
    (validation, conversions, a keccak) was most of the log parsing time.

    Raises:
        ValueError: not 20 bytes of hex.
    """
    key = address.removeprefix("0x").removeprefix("0X").lower()
    got = _CHECKSUMMED.get(key)
    if got is None:
        if not _HEX40.fullmatch(key):
            raise ValueError(f"not an address: {address!r}")
        digest = keccak(key.encode()).hex()
        got = "0x" + "".join(c.upper() if digest[i] in "89abcdef" else c for i, c in enumerate(key))
        if len(_CHECKSUMMED) >= _CHECKSUMMED_MAX:
            _CHECKSUMMED.clear()
        _CHECKSUMMED[key] = got
    return got


def classify_logs(logs: list[Any], cs: Any = checksum_address, tokens: set[str] | None = None,
                  known: Iterable[str] = ()) -> Grants:
    """Sort raw logs into grants. ``tokens`` (checksummed) restricts ERC-20 approvals to a list.

    ``cs`` checksums an address (default :func:`checksum_address`, cached for the process). Each
    distinct address is checksummed once per call, and ``known`` addresses (already checksummed:
    the owners asked about, the listed tokens) not at all."""
    out = Grants()
    memo: dict[str, str] = {a[2:].lower(): a for a in known}
    if tokens is not None:
        memo.update((a[2:].lower(), a) for a in tokens)
    get = memo.get

    def addr(raw: Any) -> str:
        # The last 20 bytes of a topic or an address, as the node sends them (hex text) or as bytes.
        key = (raw if isinstance(raw, str) else raw.hex())[-40:].lower()
        got = get(key)
        if got is None:
            got = memo[key] = str(cs("0x" + key))
        return got

    for log in logs:
        topics = log["topics"]
        n = len(topics)
        if n < 2:
            continue
        t0 = topics[0]
        t0 = t0.lower() if isinstance(t0, str) else "0x" + t0.hex()
        if not t0.startswith("0x"):
            t0 = "0x" + t0
        where = addr(log["address"])
        if t0 == APPROVAL_TOPIC and n == 3:  # ERC-20; ERC-721 single-token approvals have 4
            if tokens is None or where in tokens:
                out.erc20.add((where, addr(topics[1]), addr(topics[2])))
        elif t0 == APPROVAL_FOR_ALL_TOPIC and n == 3:
            out.operators.add((where, addr(topics[1]), addr(topics[2])))
        elif where == PERMIT2 and t0 in (P2_APPROVAL_TOPIC, P2_PERMIT_TOPIC) and n == 4:
            out.permit2.add((addr(topics[2]), addr(topics[1]), addr(topics[3])))
        elif where == PERMIT2 and t0 == P2_LOCKDOWN_TOPIC:
            data = bytes.fromhex(_hex(log["data"]))
            if len(data) >= 64:
                out.permit2.add((addr(data[:32]), addr(topics[1]), addr(data[32:64])))
    return out


async def discover_grants(reader: ChainReader, owners: list[str], start: int, end: int, chunk: int,
                          tokens: list[str] | None = None) -> Grants:
    """Every grant by ``owners`` (checksummed, as the config holds them) logged in [start, end]: one
    getLogs per block chunk, no address filter (all contracts), topic lists for the event kinds and
    the owners.

    ``tokens`` given: ERC-20 approvals of those tokens only (the logs asked for are the same)."""
    found = Grants()
    if not owners or start > end:
        return found
    owner_topics = [topic_address(o) for o in owners]
    ranges = [(b, min(end, b + chunk - 1)) for b in range(start, end + 1, chunk)]
    results = await reader.logs_many(None, [GRANT_TOPICS, owner_topics], ranges)
    wanted = {checksum_address(t) for t in tokens} if tokens is not None else None
    # One pass over every chunk's logs: each distinct address is checksummed once per scan.
    return classify_logs([log for logs in results for log in logs], checksum_address, wanted, owners)


async def discover_grants_naive(reader: ChainReader, owners: list[str], start: int, end: int, chunk: int,
                                tokens: list[str] | None = None) -> Grants:
    """Baseline: a separate getLogs walk per wallet (same topics and chunks), as many in flight as
    the reader allows. Same answer as :func:`discover_grants`."""
    cs = checksum_address
    wanted = {cs(t) for t in tokens} if tokens is not None else None

    async def walk(owner: str) -> Grants:
        got = Grants()
        for a in range(start, end + 1, chunk):
            logs = await reader.logs(None, [GRANT_TOPICS, [topic_address(owner)]], a, min(end, a + chunk - 1))
            got.update(classify_logs(logs, cs, wanted))
        return got

    out = Grants()
    for part in await asyncio.gather(*(walk(o) for o in owners)):
        out.update(part)
    return out


# --- confirmation reads ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenMeta:
    """What a token says about itself; None where it would not say (or said nonsense)."""

    address: str
    symbol: str | None
    decimals: int | None
    total_supply: int | None


def decode_symbol(raw: bytes | None) -> str | None:
    """A string symbol, or a bytes32 one (old tokens such as MKR), printable ASCII only."""
    if not raw:
        return None
    text: str | None = None
    if len(raw) >= 64:
        try:
            (s,) = abi_decode(["string"], raw)
            text = str(s)
        except Exception:
            text = None
    if text is None and len(raw) == 32:
        text = raw.rstrip(b"\0").decode("ascii", errors="replace")
    if text is None:
        return None
    text = "".join(ch for ch in text if ch.isprintable()).strip()[:32]
    return text or None


def decode_uint(raw: bytes | None, bits: int = 256) -> int | None:
    """The first word as an unsigned integer if the answer has one and it fits ``bits``."""
    if raw is None or len(raw) < 32:
        return None
    value = int.from_bytes(raw[:32], "big")
    return value if value < 2**bits else None


SEL_ALLOWANCE = _selector("allowance(address,address)")


_WORD_PAD = bytes(12)


def _word_address(addr: str) -> bytes:
    """An address as an ABI word (what ``abi_encode(["address"], ...)`` gives for a valid one)."""
    raw = bytes.fromhex(addr[2:]) if addr[:2] in ("0x", "0X") else b""
    if len(raw) != 20:
        raise ValueError(f"not an address: {addr!r}")
    return _WORD_PAD + raw


def _meta_calls(tokens: list[str]) -> list[tuple[str, bytes]]:
    return [(t, sel) for t in tokens for sel in (SEL_SYMBOL, SEL_DECIMALS, SEL_TOTAL_SUPPLY)]


def _meta_answers(tokens: list[str], raw: list[bytes | None]) -> dict[str, TokenMeta]:
    out: dict[str, TokenMeta] = {}
    for i, t in enumerate(tokens):
        dec = decode_uint(raw[3 * i + 1], 8)
        out[t] = TokenMeta(t, decode_symbol(raw[3 * i]), dec if dec is not None and dec <= 77 else None,
                           decode_uint(raw[3 * i + 2]))
    return out


def _allowance_calls(triples: list[Pair]) -> list[tuple[str, bytes]]:
    return [(t, SEL_ALLOWANCE + _word_address(o) + _word_address(s)) for t, o, s in triples]


def _allowance_answers(triples: list[Pair], raw: list[bytes | None]) -> dict[Pair, int | None]:
    return {t: decode_uint(r) for t, r in zip(triples, raw, strict=True)}


def _operator_calls(triples: list[Pair]) -> list[tuple[str, bytes]]:
    return [(c, SEL_IS_APPROVED_FOR_ALL + _word_address(o) + _word_address(op)) for c, o, op in triples]


def _operator_answers(triples: list[Pair], raw: list[bytes | None]) -> dict[Pair, bool | None]:
    out: dict[Pair, bool | None] = {}
    for t, r in zip(triples, raw, strict=True):
        v = decode_uint(r)
        out[t] = None if v is None or v > 1 else bool(v)
    return out


@dataclass(frozen=True)
class Permit2Allowance:
    amount: int
    expiration: int  # unix seconds; spendable while the block time is <= expiration
    nonce: int


def _permit2_calls(triples: list[Pair], permit2: str) -> list[tuple[str, bytes]]:
    return [(permit2, SEL_P2_ALLOWANCE + _word_address(o) + _word_address(t) + _word_address(s))
            for t, o, s in triples]


def _permit2_answers(triples: list[Pair], raw: list[bytes | None]) -> dict[Pair, Permit2Allowance | None]:
    out: dict[Pair, Permit2Allowance | None] = {}
    for t, r in zip(triples, raw, strict=True):
        if r is None or len(r) < 96:
            out[t] = None
            continue
        amount, expiration, nonce = (int.from_bytes(r[i * 32:(i + 1) * 32], "big") for i in range(3))
        if amount >= 2**160 or expiration >= 2**48 or nonce >= 2**48:
            out[t] = None  # not Permit2's shape: unreadable, not "nothing"
            continue
        out[t] = Permit2Allowance(amount, expiration, nonce)
    return out


async def token_metadata(reader: ChainReader, tokens: list[str]) -> dict[str, TokenMeta]:
    """symbol / decimals / totalSupply of each token in one batched read, tolerant of old tokens."""
    return _meta_answers(tokens, await reader.multicall(_meta_calls(tokens)))


async def operator_flags(reader: ChainReader, triples: list[Pair]) -> dict[Pair, bool | None]:
    """isApprovedForAll(owner, operator) per (collection, owner, operator); None where unreadable."""
    return _operator_answers(triples, await reader.multicall(_operator_calls(triples)))


async def permit2_allowances(reader: ChainReader, triples: list[Pair],
                             permit2: str = PERMIT2) -> dict[Pair, Permit2Allowance | None]:
    """Permit2 ``allowance(owner, token, spender)`` per (token, owner, spender); None where unreadable."""
    return _permit2_answers(triples, await reader.multicall(_permit2_calls(triples, permit2)))


@dataclass
class Confirmed:
    """The current state behind discovered grants (None where a read failed: unknown, not zero)."""

    allowances: dict[Pair, int | None] = field(default_factory=dict)
    metas: dict[str, TokenMeta] = field(default_factory=dict)
    operators: dict[Pair, bool | None] = field(default_factory=dict)
    permit2: dict[Pair, Permit2Allowance | None] = field(default_factory=dict)


async def confirm_grants(reader: ChainReader, erc20: Sequence[Pair], meta_tokens: Sequence[str],
                         operators: Sequence[Pair] = (), permit2: Sequence[Pair] = (),
                         permit2_address: str = PERMIT2) -> Confirmed:
    """Every read that confirms grants, in one :meth:`ChainReader.multicall` (one ``eth_call`` per
    gas-capped chunk, chunks concurrently): ``allowance(owner, spender)`` per ERC-20 pair, the
    metadata of ``meta_tokens`` (as :func:`token_metadata`), ``isApprovedForAll`` per operator pair
    (as :func:`operator_flags`) and Permit2 allowances (as :func:`permit2_allowances`).

    An allowance that did not answer a full word is None (unreadable: the caller keeps the grant
    and reports it), exactly as ``BatchReader.allowances`` reports a failed read.
    Raises VenueError only when the node cannot be asked at all."""
    pairs, tokens, ops, p2 = list(erc20), list(meta_tokens), list(operators), list(permit2)
    parts = [_allowance_calls(pairs), _meta_calls(tokens), _operator_calls(ops), _permit2_calls(p2, permit2_address)]
    raw = await reader.multicall([c for part in parts for c in part])
    cuts: list[list[bytes | None]] = []
    at = 0
    for part in parts:
        cuts.append(raw[at:at + len(part)])
        at += len(part)
    return Confirmed(_allowance_answers(pairs, cuts[0]), _meta_answers(tokens, cuts[1]),
                     _operator_answers(ops, cuts[2]), _permit2_answers(p2, cuts[3]))


PERMIT2_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "approve", "stateMutability": "nonpayable",
     "inputs": [{"name": "token", "type": "address"}, {"name": "spender", "type": "address"},
                {"name": "amount", "type": "uint160"}, {"name": "expiration", "type": "uint48"}], "outputs": []},
    {"type": "function", "name": "lockdown", "stateMutability": "nonpayable",
     "inputs": [{"name": "approvals", "type": "tuple[]",
                 "components": [{"name": "token", "type": "address"}, {"name": "spender", "type": "address"}]}],
     "outputs": []},
    {"type": "function", "name": "allowance", "stateMutability": "view",
     "inputs": [{"name": "user", "type": "address"}, {"name": "token", "type": "address"},
                {"name": "spender", "type": "address"}],
     "outputs": [{"name": "amount", "type": "uint160"}, {"name": "expiration", "type": "uint48"},
                 {"name": "nonce", "type": "uint48"}]},
]
OPERATOR_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "setApprovalForAll", "stateMutability": "nonpayable",
     "inputs": [{"name": "operator", "type": "address"}, {"name": "approved", "type": "bool"}], "outputs": []},
    {"type": "function", "name": "isApprovedForAll", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}, {"name": "operator", "type": "address"}],
     "outputs": [{"name": "", "type": "bool"}]},
]


# --- EIP-7702 -------------------------------------------------------------------------------------

DELEGATION_PREFIX = bytes.fromhex("ef0100")
DELEGATED_CODE_SIZE = 23


def delegate_of(code: bytes) -> bytes | None:
    """The delegate address (20 bytes) of an EIP-7702 delegated EOA's code ``0xef0100 ‖ address``,
    or None when the code is anything else."""
    if len(code) == DELEGATED_CODE_SIZE and code[:3] == DELEGATION_PREFIX:
        return code[3:]
    return None
