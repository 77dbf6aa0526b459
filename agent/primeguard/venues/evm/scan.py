"""On-chain capability scan: who can move a wallet's money besides its key holder.

- Grants: ERC-20 approvals on *any* token, Permit2 allowances and ERC-721/1155 operators are
  *discovered* from logs filtered by owner across every contract (bounded block ranges, resumable
  from a stored cursor, the last ``reorg_depth`` blocks re-scanned every run so a reorg cannot hide
  a grant) and *confirmed* by batched reads of the current state, never a log replay. Revoked
  grants (allowance 0, operator off, Permit2 amount 0) disappear. See :mod:`.grants`.
- Wallet kind: EOA, EOA with an EIP-7702 delegation (code ``0xef0100 ‖ delegate``), Safe (version,
  owners, threshold, modules, guard, fallback handler; module guard only where the version has
  one) or other contract.

We read Safes with direct ABI calls rather than safe-eth-py: safe-eth-py's client is synchronous
and builds its own web3 instance, while every read here goes through our async, counted,
error-mapped reader; the handful of Safe view functions we need are stable across 1.x.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from primeguard.config.schema import ChainConfig, PrimeguardConfig, ScanConfig, TokenConfig, WalletConfig
from primeguard.domain.errors import ChainIdMismatch, VenueError
from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import Capability, Credential, Holder, VenueKind
from primeguard.venues.evm.grants import (
    DELEGATED_CODE_SIZE,
    PERMIT2,
    Grants,
    Pair,
    confirm_grants,
    delegate_of,
    discover_grants,
    discover_grants_naive,
    is_unlimited,
)
from primeguard.venues.evm.reader import ChainReader

SENTINEL_MODULES = "0x0000000000000000000000000000000000000001"
GUARD_SLOT = 0x4A204F620C8C5CCDCA3FD54D003BADD85BA500436A431F0CBDA4F558C93C34C8
FALLBACK_HANDLER_SLOT = 0x6C9A6C4A39284E37ED1CF53D337577D14212A4870FB976A4366C693B939918D5
# Safe 1.5 keeps the module guard at keccak256("module_manager.module_guard.address").
MODULE_GUARD_SLOT = 0xB104E0B93118902C651344349B610029D694CFDEC91C589C91EBAFBCD0289947

SAFE_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "VERSION", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "string"}]},
    {"type": "function", "name": "getOwners", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "address[]"}]},
    {"type": "function", "name": "getThreshold", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "getModulesPaginated", "stateMutability": "view",
     "inputs": [{"name": "start", "type": "address"}, {"name": "pageSize", "type": "uint256"}],
     "outputs": [{"name": "array", "type": "address[]"}, {"name": "next", "type": "address"}]},
]



@dataclass(frozen=True)
class ScanState:
    """Where the approval scan of one chain stopped, and which grants it has seen (and still holds):
    ERC-20 ``pairs``, NFT ``operators`` and ``permit2`` allowances, each (contract, owner, spender)."""

    last_block: int
    last_hash: str
    pairs: frozenset[Pair] = frozenset()
    operators: frozenset[Pair] = frozenset()
    permit2: frozenset[Pair] = frozenset()


class ScanCursorStore(Protocol):
    def load(self, chain: str) -> ScanState | None: ...

    def save(self, chain: str, state: ScanState) -> None: ...


class MemoryCursorStore:
    def __init__(self) -> None:
        self.states: dict[str, ScanState] = {}

    def load(self, chain: str) -> ScanState | None:
        return self.states.get(chain)

    def save(self, chain: str, state: ScanState) -> None:
        self.states[chain] = state


class JsonCursorStore:
    """A JSON file per config, written atomically. The database store replaces it in the daemon."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _all(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def load(self, chain: str) -> ScanState | None:
        raw = self._all().get(chain)
        if raw is None:
            return None
        def grants(key: str) -> frozenset[Pair]:
            return frozenset((str(p[0]), str(p[1]), str(p[2])) for p in raw.get(key, []))

        return ScanState(raw["last_block"], raw["last_hash"], grants("pairs"), grants("operators"),
                         grants("permit2"))

    def save(self, chain: str, state: ScanState) -> None:
        data = self._all()
        data[chain] = {"last_block": state.last_block, "last_hash": state.last_hash,
                       "pairs": sorted(list(p) for p in state.pairs),
                       "operators": sorted(list(p) for p in state.operators),
                       "permit2": sorted(list(p) for p in state.permit2)}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)


@dataclass(frozen=True)
class Approval:
    """A live ERC-20 allowance on any token (listed in the config or not)."""

    chain: str
    token: str
    symbol: str
    owner: str
    spender: str
    allowance: int
    balance: int | None
    total_supply: int | None = None
    listed: bool = True  # the token is in the config's token list

    @property
    def unlimited(self) -> bool:
        """At least 2**255, the maximum of the token's storage width (UNI/COMP: 2**96 - 1), or more
        than the token's whole supply (see :func:`~primeguard.venues.evm.grants.is_unlimited`)."""
        return is_unlimited(self.allowance, self.total_supply)

    @property
    def exceeds_balance(self) -> bool:
        return self.balance is not None and self.allowance > self.balance

    @property
    def to_permit2(self) -> bool:
        """The spender is Permit2: a gateway whose own allowances say who may actually spend."""
        return self.spender == PERMIT2


@dataclass(frozen=True)
class OperatorGrant:
    """``setApprovalForAll(operator, true)`` on an ERC-721 / ERC-1155 collection, confirmed live."""

    chain: str
    collection: str
    owner: str
    operator: str


@dataclass(frozen=True)
class Permit2Grant:
    """A Permit2 allowance (owner, token, spender) as Permit2 holds it now."""

    chain: str
    token: str
    symbol: str
    owner: str
    spender: str
    amount: int
    expiration: int
    nonce: int
    block_time: int
    total_supply: int | None = None

    @property
    def expired(self) -> bool:
        return self.block_time > self.expiration

    @property
    def unlimited(self) -> bool:
        return is_unlimited(self.amount, self.total_supply)


@dataclass(frozen=True)
class SafeInfo:
    address: str
    version: str
    owners: tuple[str, ...]
    threshold: int
    modules: tuple[str, ...]
    guard: str | None
    fallback_handler: str | None
    module_guard: str | None  # None also when the version has no module guard
    has_module_guard_slot: bool


@dataclass(frozen=True)
class WalletFacts:
    wallet: WalletConfig
    kind: str  # "eoa" | "eoa_7702" | "safe" | "contract"
    safe: SafeInfo | None = None
    delegate: str | None = None  # EIP-7702 delegate (kind "eoa_7702")


@dataclass
class ChainScan:
    chain: str
    approvals: list[Approval] = field(default_factory=list)
    operators: list[OperatorGrant] = field(default_factory=list)
    permit2: list[Permit2Grant] = field(default_factory=list)
    wallets: list[WalletFacts] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    scanned_from: int = 0
    scanned_to: int = 0
    round_trips: int = 0


async def discover_pairs(reader: ChainReader, tokens: list[str] | None, owners: list[str], start: int, end: int,
                         chunk: int) -> set[Pair]:
    """ERC-20 approval (token, owner, spender) pairs in [start, end], one getLogs per block chunk
    over every contract; ``tokens`` None → every token, else only those."""
    return (await discover_grants(reader, owners, start, end, chunk, tokens)).erc20


async def discover_pairs_naive(reader: ChainReader, tokens: list[str] | None, owners: list[str], start: int,
                               end: int, chunk: int) -> set[Pair]:
    """Baseline for :func:`discover_pairs`: a separate getLogs walk per wallet."""
    return (await discover_grants_naive(reader, owners, start, end, chunk, tokens)).erc20


async def read_safe(reader: ChainReader, address: str) -> SafeInfo | None:
    """Safe facts, or None when the contract does not answer like a Safe."""
    try:
        version, owners, threshold = await asyncio.gather(
            reader.call_fn(address, SAFE_ABI, "VERSION"),
            reader.call_fn(address, SAFE_ABI, "getOwners"),
            reader.call_fn(address, SAFE_ABI, "getThreshold"),
        )
        modules, _next = await reader.call_fn(address, SAFE_ABI, "getModulesPaginated", SENTINEL_MODULES, 100)
        guard_raw, handler_raw = await asyncio.gather(
            reader.storage_at(address, GUARD_SLOT), reader.storage_at(address, FALLBACK_HANDLER_SLOT)
        )
    except (VenueError, ValueError):
        return None
    has_mg = _version_tuple(str(version)) >= (1, 5, 0)
    module_guard = _slot_address(await reader.storage_at(address, MODULE_GUARD_SLOT), reader) if has_mg else None
    cs = reader.w3.to_checksum_address
    return SafeInfo(address, str(version), tuple(cs(o) for o in owners), int(threshold), tuple(cs(m) for m in modules),
                    _slot_address(guard_raw, reader), _slot_address(handler_raw, reader), module_guard, has_mg)


def _slot_address(raw: bytes, reader: ChainReader) -> str | None:
    value = int.from_bytes(raw, "big")
    if value == 0:
        return None
    return str(reader.w3.to_checksum_address("0x" + raw[-20:].hex()))


def _version_tuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in v.split("+", maxsplit=1)[0].split(".")[:3])
    except ValueError:
        return (0,)


async def scan_chain(cfg: PrimeguardConfig, chain: ChainConfig, store: ScanCursorStore,
                     scan: ScanConfig | None = None) -> ChainScan:
    """Approvals and wallet kinds on one chain. Faults become findings, never exceptions."""
    scan = scan or cfg.scan
    wallets = [w for w in cfg.wallets if w.chain == chain.id]
    tokens = cfg.tokens_on(chain.id)
    result = ChainScan(chain.id)
    async with ChainReader(chain.id, chain.rpc_url, batch_reader=chain.batch_reader, batch_mode=chain.batch_mode,
                           call_gas_cap=chain.call_gas_cap, timeout_s=chain.timeout_s,
                           expected_chain_id=chain.chain_id) as reader:
        try:
            await _scan(reader, cfg, chain, wallets, tokens, store, scan, result)
        except ChainIdMismatch as exc:
            result.findings.append(Finding(FindingCode.CHAIN_ID_MISMATCH, Severity.CRITICAL, f"chain:{chain.id}",
                                           f"capability scan of {chain.id} refused: {exc}", venue="evm",
                                           chain=chain.id, details={"expected_chain_id": exc.expected,
                                                                    "node_chain_id": exc.actual}))
        except VenueError as exc:
            result.findings.append(Finding(FindingCode.VENUE_UNREACHABLE, Severity.CRITICAL, f"chain:{chain.id}",
                                           f"capability scan of {chain.id} failed: {exc}", venue="evm",
                                           chain=chain.id))
        result.round_trips = reader.round_trips
    return result


async def _scan(reader: ChainReader, cfg: PrimeguardConfig, chain: ChainConfig, wallets: list[WalletConfig],
                tokens: list[TokenConfig], store: ScanCursorStore, scan: ScanConfig, result: ChainScan) -> None:
    head, head_hash = await reader.head()
    block_time = await reader.block_timestamp()
    state = store.load(chain.id)
    known = Grants()
    if state is not None:
        known = Grants(set(state.pairs), set(state.operators), set(state.permit2))
    start = scan.from_block if state is None else max(scan.from_block, state.last_block - scan.reorg_depth + 1)
    # The block we stopped at is gone (reorg deeper than reorg_depth): rescan from the start.
    if state is not None and state.last_block <= head and await reader.block_hash(state.last_block) != state.last_hash:
        start, known = scan.from_block, Grants()
    owners = [w.address for w in wallets]
    known.update(await discover_grants(reader, owners, start, head, scan.log_chunk_blocks))
    result.scanned_from, result.scanned_to = start, head
    by_addr = {t.address: t for t in tokens}
    triples = sorted(known.erc20)
    operator_triples = sorted(known.operators)
    p2_triples = sorted(known.permit2)
    metas_for = sorted({p[0] for p in triples} | {p[0] for p in p2_triples})
    # Every grant read (allowances, token metadata, operator flags, Permit2) in one batched read,
    # concurrently with the balances and code sizes.
    confirmed, balances, sizes = await asyncio.gather(
        confirm_grants(reader, triples, metas_for, operator_triples, p2_triples),
        reader.balances(owners, sorted({*by_addr, *(p[0] for p in triples)})) if owners
        else asyncio.sleep(0, None),
        reader.code_sizes(owners) if owners else asyncio.sleep(0, {}),
    )
    allowances, metas, flags, p2 = confirmed.allowances, confirmed.metas, confirmed.operators, confirmed.permit2

    def symbol(token: str) -> str:
        if token in by_addr:
            return by_addr[token].symbol
        meta = metas.get(token)
        return (meta.symbol if meta and meta.symbol else None) or f"token {token[:10]}"

    def supply(token: str) -> int | None:
        meta = metas.get(token)
        return meta.total_supply if meta else None

    def unreadable(owner: str, what: str) -> None:
        result.findings.append(Finding(FindingCode.VENUE_BAD_RESPONSE, Severity.HIGH, owner, f"{what} unreadable",
                                       venue="evm", chain=chain.id))

    still = Grants()
    for pair in triples:
        value = allowances.get(pair)
        if value is None:
            unreadable(pair[1], f"allowance of {symbol(pair[0])} to {pair[2]}")
            still.erc20.add(pair)  # unknown is not revoked: keep watching it
            continue
        if value == 0:
            continue
        still.erc20.add(pair)
        bal = balances.values.get((pair[1], pair[0])) if balances else None
        result.approvals.append(Approval(chain.id, pair[0], symbol(pair[0]), pair[1], pair[2], value, bal,
                                         supply(pair[0]), pair[0] in by_addr))
    for pair in operator_triples:
        flag = flags.get(pair)
        if flag is None:
            unreadable(pair[1], f"operator approval of {pair[2]} on collection {pair[0]}")
            still.operators.add(pair)
        elif flag:
            still.operators.add(pair)
            result.operators.append(OperatorGrant(chain.id, pair[0], pair[1], pair[2]))
    for pair in p2_triples:
        got = p2.get(pair)
        if got is None:
            unreadable(pair[1], f"Permit2 allowance of {symbol(pair[0])} to {pair[2]}")
            still.permit2.add(pair)
            continue
        if got.amount == 0:
            continue  # revoked or locked down: Permit2 holds nothing for this spender
        still.permit2.add(pair)
        result.permit2.append(Permit2Grant(chain.id, pair[0], symbol(pair[0]), pair[1], pair[2], got.amount,
                                           got.expiration, got.nonce, block_time, supply(pair[0])))
    store.save(chain.id, ScanState(head, head_hash, frozenset(still.erc20), frozenset(still.operators),
                                   frozenset(still.permit2)))
    short = [w.address for w in wallets if sizes and sizes.get(w.address, 0) == DELEGATED_CODE_SIZE]
    codes = await reader.codes(short) if short else {}
    cs = reader.w3.to_checksum_address
    for w in wallets:
        size = sizes.get(w.address, 0) if sizes else 0
        if size == 0:
            result.wallets.append(WalletFacts(w, "eoa"))
            continue
        delegate = delegate_of(codes.get(w.address, b""))
        if delegate is not None:
            result.wallets.append(WalletFacts(w, "eoa_7702", delegate=str(cs("0x" + delegate.hex()))))
            continue
        safe = await read_safe(reader, w.address)
        result.wallets.append(WalletFacts(w, "safe" if safe else "contract", safe))


async def scan_all(cfg: PrimeguardConfig, store: ScanCursorStore, *,
                   progress: Callable[[str], None] | None = None) -> list[ChainScan]:
    """Scan every configured chain concurrently for approvals and Safe facts, from each chain's cursor in ``store``
    (advanced only past reorg-safe blocks). Reads the chains; writes only the cursors. ``progress``,
    when given, is told a line for people as each chain's scan finishes."""
    loop = asyncio.get_running_loop()

    async def one(c: ChainConfig) -> ChainScan:
        t0 = loop.time()
        got = await scan_chain(cfg, c, store)
        if progress is not None:
            progress(f"scan {c.id}: blocks {got.scanned_from}..{got.scanned_to}, {len(got.approvals)} approvals, "
                     f"{got.round_trips} round trips in {loop.time() - t0:.1f} s")
        return got

    return list(await asyncio.gather(*(one(c) for c in cfg.chains)))


# --- normalization into the shared capability vocabulary ----------------------------------------


#: A known EIP-7702 delegate: (checksummed address, chain or None for every chain, label).
KnownDelegate = tuple[str, str | None, str]


def capabilities_from_scan(cfg: PrimeguardConfig, scans: list[ChainScan],
                           known_delegates: Iterable[KnownDelegate] = ()) -> tuple[list[Credential], list[Finding]]:
    """Turn scan facts into Credentials (same vocabulary as CEX keys and dYdX authenticators)
    plus default findings. Policies decide what is allowed; these findings say what is there.

    ``known_delegates`` are the policy's (``capability_rules.known_delegates``); the config's
    ``known_delegates`` are a deprecated fallback, still honoured (the union of both is known)."""
    creds: list[Credential] = []
    findings: list[Finding] = []
    known = {(k.address, k.chain) for k in cfg.known_spenders}
    labels = {k.address: k.label for k in cfg.known_spenders}
    labels.setdefault(PERMIT2, "Permit2")
    trusted = [*((k.address, k.chain, k.label) for k in cfg.known_delegates), *known_delegates]
    delegates = {(a, c) for a, c, _ in trusted}
    delegate_labels = {a: label for a, _, label in trusted}
    wallet_by = {(w.chain, w.address): w for w in cfg.wallets}

    def is_known(addr: str, chain: str) -> bool:
        return (addr, None) in known or (addr, chain) in known

    def name(addr: str) -> str:
        return f"{addr}{' (' + labels[addr] + ')' if addr in labels else ''}"

    for scan in scans:
        findings.extend(scan.findings)
        for ap in scan.approvals:
            w = wallet_by.get((ap.chain, ap.owner))
            if w is None:
                continue
            # Permit2 is a gateway, not the spender: its own allowances (below) say who may spend.
            gateway = ap.to_permit2
            spender_known = is_known(ap.spender, ap.chain)
            details = MappingProxyType({
                "token": ap.symbol, "token_address": ap.token, "spender": ap.spender,
                "spender_label": labels.get(ap.spender, ""), "allowance": str(ap.allowance),
                "unlimited": ap.unlimited, "exceeds_balance": ap.exceeds_balance, "known_spender": spender_known,
                "token_listed": ap.listed, "total_supply": None if ap.total_supply is None else str(ap.total_supply),
                "permit2_gateway": gateway,
            })
            cred = Credential(f"approval:{ap.chain}:{ap.symbol}:{ap.owner}:{ap.spender}", w.id, VenueKind.EVM,
                              "erc20_approval", Holder.CONTRACT, frozenset({Capability.SPEND_ALLOWANCE}),
                              chain=ap.chain, details=details)
            creds.append(cred)
            if spender_known or gateway:
                continue
            what = name(ap.spender)
            if ap.unlimited:
                findings.append(Finding(FindingCode.UNLIMITED_APPROVAL, Severity.HIGH, cred.id,
                                        f"{w.id} gave {what} an unlimited {ap.symbol} approval on {ap.chain}",
                                        venue="evm", chain=ap.chain, client_id=w.client, details=details))
            elif ap.exceeds_balance:
                findings.append(Finding(FindingCode.APPROVAL_EXCEEDS_BALANCE, Severity.WARNING, cred.id,
                                        f"{w.id}'s {ap.symbol} approval to {what} exceeds its balance",
                                        venue="evm", chain=ap.chain, client_id=w.client, details=details))
            findings.append(Finding(FindingCode.UNKNOWN_SPENDER, Severity.WARNING, cred.id,
                                    f"{ap.spender} is not a known spender ({ap.symbol}, {w.id})",
                                    venue="evm", chain=ap.chain, client_id=w.client, details=details))
        for p2 in scan.permit2:
            w = wallet_by.get((p2.chain, p2.owner))
            if w is None:
                continue
            spender_known = is_known(p2.spender, p2.chain)
            details = MappingProxyType[str, Any]({
                "token": p2.symbol, "token_address": p2.token, "spender": p2.spender,
                "spender_label": labels.get(p2.spender, ""), "allowance": str(p2.amount),
                "unlimited": p2.unlimited, "expiration": p2.expiration, "expired": p2.expired, "nonce": p2.nonce,
                "known_spender": spender_known, "via": "permit2", "permit2": PERMIT2,
            })
            cred = Credential(f"permit2:{p2.chain}:{p2.symbol}:{p2.owner}:{p2.spender}", w.id, VenueKind.EVM,
                              "permit2_allowance", Holder.CONTRACT,
                              frozenset() if p2.expired else frozenset({Capability.SPEND_ALLOWANCE}),
                              chain=p2.chain, details=details)
            creds.append(cred)
            if p2.expired or spender_known:
                continue  # shown (as expired), not a finding: Permit2 refuses to spend it
            if p2.unlimited:
                findings.append(Finding(FindingCode.UNLIMITED_APPROVAL, Severity.HIGH, cred.id,
                                        f"{w.id} gave {name(p2.spender)} an unlimited {p2.symbol} allowance through "
                                        f"Permit2 on {p2.chain}, live until {p2.expiration}",
                                        venue="evm", chain=p2.chain, client_id=w.client, details=details))
            findings.append(Finding(FindingCode.UNKNOWN_SPENDER, Severity.WARNING, cred.id,
                                    f"{p2.spender} is not a known spender ({p2.symbol} via Permit2, {w.id})",
                                    venue="evm", chain=p2.chain, client_id=w.client, details=details))
        for op in scan.operators:
            w = wallet_by.get((op.chain, op.owner))
            if w is None:
                continue
            op_known = is_known(op.operator, op.chain)
            details = MappingProxyType({"collection": op.collection, "operator": op.operator,
                                        "operator_label": labels.get(op.operator, ""), "known_spender": op_known})
            cred = Credential(f"operator:{op.chain}:{op.collection}:{op.owner}:{op.operator}", w.id, VenueKind.EVM,
                              "nft_operator", Holder.CONTRACT, frozenset({Capability.SPEND_ALLOWANCE}),
                              chain=op.chain, details=details)
            creds.append(cred)
            if not op_known:
                findings.append(Finding(FindingCode.NFT_OPERATOR, Severity.HIGH, cred.id,
                                        f"{w.id} made {name(op.operator)} an operator of every token of collection "
                                        f"{op.collection} on {op.chain}", venue="evm", chain=op.chain,
                                        client_id=w.client, details=details))
        for facts in scan.wallets:
            creds_f, finds_f = _wallet_capabilities(facts, scan.chain, delegates, delegate_labels)
            creds.extend(creds_f)
            findings.extend(finds_f)
    return creds, findings


_KIND_WORDS = {"eoa": "an EOA", "eoa_7702": "an EOA with delegated code (EIP-7702)", "safe": "a Safe",
               "contract": "a contract"}
# Detected kind → the configured kinds it satisfies (a delegated EOA is still an EOA: its key rules).
_KIND_OK = {"eoa": {"eoa"}, "eoa_7702": {"eoa"}, "safe": {"safe"}, "contract": {"contract"}}


def _wallet_capabilities(facts: WalletFacts, chain: str, delegates: set[tuple[str, str | None]],
                         delegate_labels: dict[str, str]) -> tuple[list[Credential], list[Finding]]:
    w = facts.wallet
    creds: list[Credential] = []
    findings: list[Finding] = []
    if w.kind not in _KIND_OK[facts.kind]:
        findings.append(Finding(FindingCode.WALLET_KIND_MISMATCH, Severity.HIGH, w.id,
                                f"{w.id} is configured as {w.kind} but {w.address} on {chain} is "
                                f"{_KIND_WORDS[facts.kind]}",
                                venue="evm", chain=chain, client_id=w.client))
    if facts.kind in ("eoa", "eoa_7702"):
        creds.append(Credential(f"eoa:{chain}:{w.address}", w.id, VenueKind.EVM, "evm_eoa", Holder.UNKNOWN,
                                frozenset({Capability.SIGN_ANYTHING}), chain=chain,
                                details=MappingProxyType({"address": w.address, "delegate": facts.delegate})))
    if facts.delegate is not None:
        d = facts.delegate
        known = (d, None) in delegates or (d, chain) in delegates
        details = MappingProxyType({"address": w.address, "delegate": d, "delegate_label": delegate_labels.get(d, ""),
                                    "known_delegate": known})
        cred = Credential(f"eip7702:{chain}:{w.address}", w.id, VenueKind.EVM, "eip7702_delegation",
                          Holder.CONTRACT, frozenset({Capability.DELEGATED_CODE}), chain=chain, details=details)
        creds.append(cred)
        if known:
            findings.append(Finding(FindingCode.EOA_DELEGATED_CODE, Severity.INFO, cred.id,
                                    f"{w.address} on {chain} delegates its code to known delegate {d} "
                                    f"({delegate_labels.get(d, '')})", venue="evm", chain=chain,
                                    client_id=w.client, details=details))
        else:
            findings.append(Finding(FindingCode.EOA_DELEGATED_CODE, Severity.CRITICAL, cred.id,
                                    f"{w.address} on {chain} ({w.id}) delegates its code to unknown contract {d} "
                                    f"(EIP-7702): that code can move everything the wallet holds. Clear it with an "
                                    f"authorization to the zero address signed by the wallet's key",
                                    venue="evm", chain=chain, client_id=w.client, details=details))
    if facts.safe is None:
        return creds, findings
    s = facts.safe
    base = {"safe": s.address, "version": s.version, "threshold": s.threshold, "owners": list(s.owners),
            "guard": s.guard, "fallback_handler": s.fallback_handler, "module_guard": s.module_guard,
            "module_guard_supported": s.has_module_guard_slot}
    creds.append(Credential(f"safe-owners:{chain}:{s.address}", w.id, VenueKind.EVM, "safe_owners", Holder.UNKNOWN,
                            frozenset({Capability.WITHDRAW, Capability.GRANT}), chain=chain,
                            details=MappingProxyType(base)))
    if s.threshold < 2:
        findings.append(Finding(FindingCode.SAFE_LOW_THRESHOLD, Severity.HIGH, w.id,
                                f"Safe {s.address} needs only {s.threshold} of {len(s.owners)} owners",
                                venue="evm", chain=chain, client_id=w.client, details=MappingProxyType(base)))
    for m in s.modules:
        bypass = not s.has_module_guard_slot or s.module_guard is None
        details = MappingProxyType({**base, "module": m, "bypasses_guard": bypass})
        creds.append(Credential(f"safe-module:{chain}:{s.address}:{m}", w.id, VenueKind.EVM, "safe_module",
                                Holder.CONTRACT, frozenset({Capability.MODULE_EXECUTE, Capability.DELEGATECALL}),
                                chain=chain, details=details))
        findings.append(Finding(FindingCode.SAFE_MODULE_ENABLED, Severity.HIGH, f"{w.id}:{m}",
                                f"Safe {s.address} has module {m} enabled: it can execute (and delegatecall) "
                                f"without the owners{' and bypasses the guard' if bypass else ''}",
                                venue="evm", chain=chain, client_id=w.client, details=details))
    if s.guard:
        findings.append(Finding(FindingCode.SAFE_GUARD_SET, Severity.INFO, w.id,
                                f"Safe {s.address} has transaction guard {s.guard}", venue="evm", chain=chain,
                                client_id=w.client, details=MappingProxyType(base)))
    return creds, findings
