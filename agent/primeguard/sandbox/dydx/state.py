"""The simulated dYdX v4 world shared by the indexer and node simulators: addresses, subaccounts,
perpetual positions, authenticators, oracle prices, faults. Thread-safe: the servers read it from
their own threads while tests change it."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bech32 import bech32_decode, bech32_encode, convertbits
from coincurve import PrivateKey
from Crypto.Hash import RIPEMD160

from primeguard.domain.errors import SandboxError
from primeguard.sandbox.dydx.scenario import DydxAccountScenario, DydxAuthenticatorScenario
from primeguard.sandbox.faults import FaultConfig
from primeguard.sandbox.scenario import Scenario

STABLES = frozenset({"USDC", "USDT", "DAI", "USD"})
# Real clob pair ids for the first markets; others get ids from 1000 on, in order of appearance.
KNOWN_CLOB_IDS = {"BTC-USD": 0, "ETH-USD": 1, "LINK-USD": 2}
IMF = {"BTC-USD": Decimal("0.05"), "ETH-USD": Decimal("0.05")}
DEFAULT_IMF = Decimal("0.1")
BASE_HEIGHT = 40_000_000
CHAIN_ID = "dydx-sandbox-1"
DEFAULT_SPREAD = Decimal("0.001")
FIRST_ACCOUNT_NUMBER = 1000


def owner_secret(client: str, index: int) -> bytes:
    """The sandbox owner (mnemonic-level) private key of a client's ``index``-th dYdX account."""
    return hashlib.sha256(f"primeguard-sandbox:dydx:{client}:{index}".encode()).digest()


def pubkey_address(pub: bytes, hrp: str = "dydx") -> str:
    """The bech32 account address of a compressed secp256k1 public key: ripemd160(sha256(pub))."""
    digest = RIPEMD160.new(hashlib.sha256(pub).digest()).digest()
    data = convertbits(digest, 8, 5)
    assert data is not None
    return str(bech32_encode(hrp, data))


def derive_address(client: str, index: int) -> str:
    """A valid bech32 ``dydx1…`` address derived deterministically from the client id: the address
    of the sandbox owner key (:func:`owner_secret`), so the owner can sign transactions."""
    return pubkey_address(PrivateKey(owner_secret(client, index)).public_key.format(compressed=True))


def bech32_address_error(address: str, hrp: str = "dydx") -> str | None:
    """The error the chain's ``AccAddressFromBech32`` gives for ``address`` (None: it is valid)."""
    if not address.strip():
        return "empty address string is not allowed"
    got_hrp, data = bech32_decode(address)
    if got_hrp is None or data is None:
        return "decoding bech32 failed: invalid checksum or character"
    if got_hrp != hrp:
        return f"invalid Bech32 prefix; expected {hrp}, got {got_hrp}"
    raw = convertbits(data, 5, 8, False)
    if not raw or len(raw) > 255:
        return "decoding bech32 failed: invalid address length"
    return None


def check_address(address: str) -> str:
    hrp, data = bech32_decode(address)
    if hrp != "dydx" or data is None:
        raise SandboxError(f"dYdX address {address[:60]!r} is not a valid bech32 dydx1… address")
    return address


@dataclass
class OrderRec:
    """One order the simulated chain knows (open, filled or cancelled): what ``/v4/orders`` lists."""

    client_id: int
    flags: int  # 0 short-term, 64 long-term, 32 conditional
    clob_pair_id: int
    market: str
    side: str  # BUY | SELL
    size: Decimal
    price: Decimal
    ioc: bool
    reduce_only: bool
    good_til_block: int | None
    good_til_block_time: int | None
    created_height: int
    seq: int
    status: str = "OPEN"  # OPEN | FILLED | CANCELED
    filled: Decimal = Decimal(0)
    removal_reason: str | None = None


@dataclass
class SubState:
    number: int
    usdc: Decimal
    orders: dict[tuple[int, int, int], OrderRec] = field(default_factory=dict)  # (client id, flags, clob pair)
    perps: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # market -> (size, entry)
    opened: dict[str, int] = field(default_factory=dict)  # market -> open sequence (the indexer's openEventId)
    closed: list[ClosedPerp] = field(default_factory=list)


@dataclass(frozen=True)
class ClosedPerp:
    """A position that was closed: listed by /v4/perpetualPositions with status CLOSED."""

    market: str
    size: Decimal  # signed size it had when closed
    entry: Decimal
    exit: Decimal
    seq: int
    closed_at: float


@dataclass(frozen=True)
class AuthRecord:
    id: int
    type: str
    config: bytes
    holder: str = "client"


@dataclass
class AddressState:
    address: str
    client: str
    index: int
    subaccounts: dict[int, SubState]
    authenticators: dict[int, AuthRecord]
    v3_holders: tuple[str, ...]
    transfers: list[dict[str, Any]] = field(default_factory=list)
    account_number: int = 0
    sequence: int = 0
    pubkey: bytes | None = None  # set from the owner key, or on the first transaction the owner signs


@dataclass(frozen=True)
class FaultDecision:
    latency_s: float = 0.0
    action: str | None = None  # down | rate_limit | timeout | error | malformed
    retry_after_s: int = 0
    timeout_s: float = 0.0


class FaultBox:
    """Applies one :class:`FaultConfig` to a stream of requests (seeded, so runs repeat)."""

    def __init__(self, cfg: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._seen = 0
        self._peers: set[object] = set()
        self.set(cfg or FaultConfig())

    def set(self, cfg: FaultConfig) -> None:
        with self._lock:
            self.cfg = cfg
            self._rng = random.Random(cfg.seed)
            self._count = 0

    @property
    def requests(self) -> int:
        """Requests seen since the box was created, whatever was decided (for benchmarks)."""
        return self._seen

    def note_peer(self, peer: object) -> None:
        """Record the client end (host, port) of the TCP connection a request came on."""
        with self._lock:
            self._peers.add(peer)

    def forget_connections(self) -> None:
        """Start counting :attr:`connections` afresh (a bench counts each round's own)."""
        with self._lock:
            self._peers.clear()

    @property
    def connections(self) -> int:
        """Distinct TCP connections requests came on since the box was created (for tests and
        benchmarks: a client that keeps a connection pool opens few, one per request opens many)."""
        with self._lock:
            return len(self._peers)

    def decide(self, path: str) -> FaultDecision:
        with self._lock:
            self._seen += 1
            c = self.cfg
            if c.only_paths and not any(p in path for p in c.only_paths):
                return FaultDecision()
            latency = c.latency_ms / 1000
            if c.down:
                return FaultDecision(latency, "down")
            self._count += 1
            if c.rate_limit_every and self._count % c.rate_limit_every == 0:
                return FaultDecision(latency, "rate_limit", retry_after_s=c.retry_after_s)
            roll = self._rng.random
            if c.timeout_rate and roll() < c.timeout_rate:
                return FaultDecision(latency, "timeout", timeout_s=c.timeout_s)
            if c.error_5xx_rate and roll() < c.error_5xx_rate:
                return FaultDecision(latency, "error")
            if c.malformed_rate and roll() < c.malformed_rate:
                return FaultDecision(latency, "malformed")
            return FaultDecision(latency)


class DydxWorld:
    """Mutable simulated state. Every accessor takes the lock; readers get copies."""

    def __init__(self, scenario: Scenario, oracle_prices: dict[str, Decimal] | None = None) -> None:
        self.lock = threading.RLock()
        self.started = time.time()
        self.lag_s = 0.0
        self.geo_blocked = False
        self.addresses: dict[str, AddressState] = {}
        self.order: list[AddressState] = []
        self.oracle: dict[str, Decimal] = {}
        self.clob_ids: dict[str, int] = {}
        self.seq = 0
        self.chain_id = CHAIN_ID
        self.spread = DEFAULT_SPREAD  # the simulated book quotes oracle ± spread (a fraction)
        self.txs: dict[str, bytes] = {}
        self.next_account_number = FIRST_ACCOUNT_NUMBER
        self.faults = {"dydx": FaultBox(scenario.faults.get("dydx")),
                       "dydx-node": FaultBox(scenario.faults.get("dydx-node"))}
        for f in scenario.feeds:  # first feed per asset wins (the scenario's primary chain first)
            if f.asset not in STABLES and f"{f.asset}-USD" not in self.oracle:
                self.set_price(f"{f.asset}-USD", f.answer)
        for market, price in (oracle_prices or {}).items():
            self.set_price(market, Decimal(price))
        for client in scenario.clients:
            for index, acct in enumerate(client.dydx):
                self._add_account(client.id, index, acct)

    def set_price(self, market: str, price: Decimal) -> None:
        self.oracle[market] = price
        if market not in self.clob_ids:
            self.clob_ids[market] = KNOWN_CLOB_IDS.get(market, 1000 + len(
                [m for m in self.clob_ids if m not in KNOWN_CLOB_IDS]))

    def _add_account(self, client: str, index: int, acct: DydxAccountScenario) -> None:
        address = check_address(acct.address) if acct.address else derive_address(client, index)
        if address in self.addresses:
            raise SandboxError(f"dYdX address {address} appears twice in the scenario")
        pubkey = None if acct.address else PrivateKey(owner_secret(client, index)).public_key.format(compressed=True)
        subs = {}
        for s in acct.subaccounts:
            sub = SubState(s.number, s.usdc)
            for p in s.perps:
                sub.perps[p.market] = (p.size, p.entry_price)
                sub.opened[p.market] = self.next_seq()
                if p.market not in self.oracle:  # a market without a feed trades at its entry price
                    self.set_price(p.market, p.entry_price)
            subs[s.number] = sub
        state = AddressState(address, client, index, subs, {}, tuple(acct.v3_stark_key_holders),
                             account_number=self._new_account_number(), pubkey=pubkey)
        for a in acct.authenticators:
            state.authenticators[a.id] = self.record(address, a)
        self.addresses[address] = state
        self.order.append(state)

    def _new_account_number(self) -> int:
        self.next_account_number += 1
        return self.next_account_number - 1

    def ensure_account(self, address: str) -> AddressState:
        """An address outside the scenario (a transfer's recipient): created empty on first use and
        not listed among the scenario's accounts."""
        st = self.addresses.get(address)
        if st is None:
            st = AddressState(address, "", -1, {}, {}, (), account_number=self._new_account_number())
            self.addresses[address] = st
        return st

    @staticmethod
    def record(address: str, a: DydxAuthenticatorScenario) -> AuthRecord:
        return AuthRecord(a.id, a.type, a.config_bytes(seed=f"{address}:{a.id}"), a.holder)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # --- reads (under lock, copies) --------------------------------------------------------------

    def height(self) -> tuple[int, float]:
        now = time.time() - self.lag_s
        return BASE_HEIGHT + int(max(0.0, now - self.started)), now

    def imf(self, market: str) -> Decimal:
        return IMF.get(market, DEFAULT_IMF)

    def price(self, market: str, fallback: Decimal) -> Decimal:
        return self.oracle.get(market, fallback)

    def account(self, address: str) -> AddressState | None:
        return self.addresses.get(address)

    def authenticators(self, address: str) -> list[AuthRecord]:
        with self.lock:
            st = self.addresses.get(address)
            # The keeper iterates its store, keyed "<address>/<id>/": ids come back in string order.
            if st is None:
                return []
            return [st.authenticators[k] for k in sorted(st.authenticators, key=lambda i: f"{i}/")]

    # --- changes ---------------------------------------------------------------------------------

    def resolve(self, who: str, index: int = 0) -> AddressState:
        """An address, or a client id (its ``index``-th dYdX account)."""
        with self.lock:
            if who in self.addresses:
                return self.addresses[who]
            mine = [s for s in self.order if s.client == who]
            if index < len(mine):
                return mine[index]
        raise KeyError(f"no dYdX account {who!r} (index {index}) in the sandbox")

    def sub(self, who: str, number: int) -> SubState:
        st = self.resolve(who)
        if number not in st.subaccounts:
            st.subaccounts[number] = SubState(number, Decimal(0))
        return st.subaccounts[number]
