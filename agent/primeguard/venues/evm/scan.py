"""On-chain capability scan: who can move a wallet's money besides its key holder.

- ERC-20 approvals: spenders are *discovered* from ``Approval`` logs (bounded block ranges,
  resumable from a stored cursor, the last ``reorg_depth`` blocks re-scanned every run so a reorg
  cannot hide an approval) and *confirmed* by a batched ``allowance`` read, so the result is the
  current allowance, never a log replay. Revoked approvals (allowance 0) disappear.
- Wallet kind: EOA, Safe (version, owners, threshold, modules, guard, fallback handler; module guard
  only where the version has one) or other contract.

We read Safes with direct ABI calls rather than safe-eth-py: safe-eth-py's client is synchronous
and builds its own web3 instance, while every read here goes through our async, counted,
error-mapped reader; the handful of Safe view functions we need are stable across 1.x.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from primeguard.config.schema import ChainConfig, PrimeguardConfig, ScanConfig, TokenConfig, WalletConfig
from primeguard.domain.errors import ChainIdMismatch, VenueError
from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import Capability, Credential, Holder, VenueKind
from primeguard.venues.evm.reader import ChainReader

APPROVAL_TOPIC = "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"
UNLIMITED_FROM = 2**255  # anything this large is "unlimited" in practice (max uint, or near it)
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

Pair = tuple[str, str, str]  # (token, owner, spender), checksummed


@dataclass(frozen=True)
class ScanState:
    """Where the approval scan of one chain stopped, and which pairs it has seen."""

    last_block: int
    last_hash: str
    pairs: frozenset[Pair] = frozenset()


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
        return ScanState(raw["last_block"], raw["last_hash"], frozenset(tuple(p) for p in raw["pairs"]))  # type: ignore[misc]

    def save(self, chain: str, state: ScanState) -> None:
        data = self._all()
        data[chain] = {"last_block": state.last_block, "last_hash": state.last_hash,
                       "pairs": sorted(list(p) for p in state.pairs)}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)


@dataclass(frozen=True)
class Approval:
    chain: str
    token: str
    symbol: str
    owner: str
    spender: str
    allowance: int
    balance: int | None

    @property
    def unlimited(self) -> bool:
        return self.allowance >= UNLIMITED_FROM

    @property
    def exceeds_balance(self) -> bool:
        return self.balance is not None and self.allowance > self.balance


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
    kind: str  # "eoa" | "safe" | "contract"
    safe: SafeInfo | None = None


@dataclass
class ChainScan:
    chain: str
    approvals: list[Approval] = field(default_factory=list)
    wallets: list[WalletFacts] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    scanned_from: int = 0
    scanned_to: int = 0
    round_trips: int = 0


def _topic_address(addr: str) -> str:
    return "0x" + "0" * 24 + addr[2:].lower()


def _address_from_topic(topic: Any, to_checksum: Any) -> str:
    raw = bytes(topic).hex() if not isinstance(topic, str) else topic.removeprefix("0x")
    return str(to_checksum("0x" + raw[-40:]))


async def discover_pairs(reader: ChainReader, tokens: list[str], owners: list[str], start: int, end: int,
                         chunk: int) -> set[Pair]:
    """Approval (token, owner, spender) pairs in [start, end], one getLogs per block chunk."""
    found: set[Pair] = set()
    if not tokens or not owners or start > end:
        return found
    owner_topics = [_topic_address(o) for o in owners]
    ranges = [(b, min(end, b + chunk - 1)) for b in range(start, end + 1, chunk)]
    results = await asyncio.gather(
        *(reader.logs(tokens, [APPROVAL_TOPIC, owner_topics], a, b) for a, b in ranges)
    )
    cs = reader.w3.to_checksum_address
    for logs in results:
        for log in logs:
            topics = log["topics"]
            if len(topics) < 3:
                continue
            found.add((cs(log["address"]), _address_from_topic(topics[1], cs), _address_from_topic(topics[2], cs)))
    return found


async def discover_pairs_naive(reader: ChainReader, tokens: list[str], owners: list[str], start: int, end: int,
                               chunk: int) -> set[Pair]:
    """Baseline: a separate getLogs walk for every (wallet, token), as many in flight as the reader allows."""
    cs = reader.w3.to_checksum_address

    async def walk(owner: str, token: str) -> set[Pair]:
        got: set[Pair] = set()
        for a in range(start, end + 1, chunk):
            for log in await reader.logs([token], [APPROVAL_TOPIC, [_topic_address(owner)]], a,
                                         min(end, a + chunk - 1)):
                got.add((cs(log["address"]), owner, _address_from_topic(log["topics"][2], cs)))
        return got

    parts = await asyncio.gather(*(walk(o, t) for o in owners for t in tokens))
    return set().union(*parts) if parts else set()


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
    async with ChainReader(chain.id, chain.rpc_url, batch_reader=chain.batch_reader,
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
    state = store.load(chain.id)
    known: set[Pair] = set(state.pairs) if state else set()
    start = scan.from_block if state is None else max(scan.from_block, state.last_block - scan.reorg_depth + 1)
    # The block we stopped at is gone (reorg deeper than reorg_depth): rescan from the start.
    if state is not None and state.last_block <= head and await reader.block_hash(state.last_block) != state.last_hash:
        start, known = scan.from_block, set()
    owners = [w.address for w in wallets]
    known |= await discover_pairs(reader, [t.address for t in tokens], owners, start, head, scan.log_chunk_blocks)
    result.scanned_from, result.scanned_to = start, head
    by_addr = {t.address: t for t in tokens}
    triples = sorted(p for p in known if p[0] in by_addr)
    allowances, balances, sizes = await asyncio.gather(
        reader.allowances(triples),
        reader.balances(owners, [t.address for t in tokens]) if owners else asyncio.sleep(0, None),
        reader.code_sizes(owners) if owners else asyncio.sleep(0, {}),
    )
    still: set[Pair] = set()
    for pair in triples:
        value = allowances.get(pair)
        if value is None:
            result.findings.append(Finding(FindingCode.VENUE_BAD_RESPONSE, Severity.HIGH, pair[1],
                                           f"allowance of {by_addr[pair[0]].symbol} to {pair[2]} unreadable",
                                           venue="evm", chain=chain.id))
            still.add(pair)  # unknown is not revoked: keep watching it
            continue
        if value == 0:
            continue
        still.add(pair)
        bal = balances.values.get((pair[1], pair[0])) if balances else None
        result.approvals.append(Approval(chain.id, pair[0], by_addr[pair[0]].symbol, pair[1], pair[2], value, bal))
    store.save(chain.id, ScanState(head, head_hash, frozenset(still)))
    for w in wallets:
        size = sizes.get(w.address, 0) if sizes else 0
        if size == 0:
            result.wallets.append(WalletFacts(w, "eoa"))
            continue
        safe = await read_safe(reader, w.address)
        result.wallets.append(WalletFacts(w, "safe" if safe else "contract", safe))


async def scan_all(cfg: PrimeguardConfig, store: ScanCursorStore) -> list[ChainScan]:
    """Scan every configured chain concurrently for approvals and Safe facts, from each chain's cursor in ``store``
    (advanced only past reorg-safe blocks). Reads the chains; writes only the cursors."""
    return list(await asyncio.gather(*(scan_chain(cfg, c, store) for c in cfg.chains)))


# --- normalization into the shared capability vocabulary ----------------------------------------


def capabilities_from_scan(cfg: PrimeguardConfig, scans: list[ChainScan]) -> tuple[list[Credential], list[Finding]]:
    """Turn scan facts into Credentials (same vocabulary as CEX keys and dYdX authenticators)
    plus default findings. Policies decide what is allowed; these findings say what is there."""
    creds: list[Credential] = []
    findings: list[Finding] = []
    known = {(k.address, k.chain) for k in cfg.known_spenders}
    labels = {k.address: k.label for k in cfg.known_spenders}
    wallet_by = {(w.chain, w.address): w for w in cfg.wallets}
    for scan in scans:
        findings.extend(scan.findings)
        for ap in scan.approvals:
            w = wallet_by.get((ap.chain, ap.owner))
            if w is None:
                continue
            is_known = (ap.spender, None) in known or (ap.spender, ap.chain) in known
            details = MappingProxyType({
                "token": ap.symbol, "token_address": ap.token, "spender": ap.spender,
                "spender_label": labels.get(ap.spender, ""), "allowance": str(ap.allowance),
                "unlimited": ap.unlimited, "exceeds_balance": ap.exceeds_balance, "known_spender": is_known,
            })
            cred = Credential(f"approval:{ap.chain}:{ap.symbol}:{ap.owner}:{ap.spender}", w.id, VenueKind.EVM,
                              "erc20_approval", Holder.CONTRACT, frozenset({Capability.SPEND_ALLOWANCE}),
                              chain=ap.chain, details=details)
            creds.append(cred)
            what = f"{ap.spender}{' (' + labels[ap.spender] + ')' if ap.spender in labels else ''}"
            if ap.unlimited and not is_known:
                findings.append(Finding(FindingCode.UNLIMITED_APPROVAL, Severity.HIGH, cred.id,
                                        f"{w.id} gave {what} an unlimited {ap.symbol} approval on {ap.chain}",
                                        venue="evm", chain=ap.chain, client_id=w.client, details=details))
            elif ap.exceeds_balance and not is_known:
                findings.append(Finding(FindingCode.APPROVAL_EXCEEDS_BALANCE, Severity.WARNING, cred.id,
                                        f"{w.id}'s {ap.symbol} approval to {what} exceeds its balance",
                                        venue="evm", chain=ap.chain, client_id=w.client, details=details))
            if not is_known:
                findings.append(Finding(FindingCode.UNKNOWN_SPENDER, Severity.WARNING, cred.id,
                                        f"{ap.spender} is not a known spender ({ap.symbol}, {w.id})",
                                        venue="evm", chain=ap.chain, client_id=w.client, details=details))
        for facts in scan.wallets:
            creds_f, finds_f = _wallet_capabilities(facts, scan.chain)
            creds.extend(creds_f)
            findings.extend(finds_f)
    return creds, findings


_KIND_WORDS = {"eoa": "an EOA", "safe": "a Safe", "contract": "a contract"}


def _wallet_capabilities(facts: WalletFacts, chain: str) -> tuple[list[Credential], list[Finding]]:
    w = facts.wallet
    creds: list[Credential] = []
    findings: list[Finding] = []
    if facts.kind != w.kind:
        findings.append(Finding(FindingCode.WALLET_KIND_MISMATCH, Severity.HIGH, w.id,
                                f"{w.id} is configured as {w.kind} but {w.address} on {chain} is "
                                f"{_KIND_WORDS[facts.kind]}",
                                venue="evm", chain=chain, client_id=w.client))
    if facts.kind == "eoa":
        creds.append(Credential(f"eoa:{chain}:{w.address}", w.id, VenueKind.EVM, "evm_eoa", Holder.UNKNOWN,
                                frozenset({Capability.SIGN_ANYTHING}), chain=chain,
                                details=MappingProxyType({"address": w.address})))
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
