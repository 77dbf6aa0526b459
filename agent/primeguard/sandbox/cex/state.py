"""The simulated venues' state: accounts (master + sub-accounts), keys, markets, orders, positions.

One :class:`VenueState` per venue, shared by that venue's HTTP handlers (in the simulator thread)
and by tests (any thread): every mutation happens under ``state.lock``. Quantities are Decimals;
the handlers format them as strings the way each venue does.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from primeguard.sandbox.cex.keys import KeyMaterial, derive_key, derive_uid, sandbox_seed
from primeguard.sandbox.cex.scenario import CexAccountScenario, CexKeyScenario, WhitelistEntryScenario
from primeguard.sandbox.faults import FaultConfig
from primeguard.sandbox.scenario import Scenario

VENUES: tuple[str, ...] = ("binance", "okx", "bybit")
SANDBOX_IP = "127.0.0.1"  # every request reaches the simulator from loopback
DEFAULT_MARKS: dict[str, Decimal] = {"BTC": Decimal(60000), "ETH": Decimal(3000), "SOL": Decimal(150)}
MAINT_MARGIN_RATE = Decimal("0.004")
# (tick size, quantity step, OKX contract value) per base asset; unknown bases get the last row
_SPECS: dict[str, tuple[Decimal, Decimal, Decimal]] = {
    "BTC": (Decimal("0.1"), Decimal("0.001"), Decimal("0.01")),
    "ETH": (Decimal("0.01"), Decimal("0.001"), Decimal("0.1")),
    "*": (Decimal("0.001"), Decimal("0.01"), Decimal("1")),
}


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class SimKey:
    id: str
    venue: str
    account_uid: str
    holder: str
    material: KeyMaterial = field(repr=False)
    perms: frozenset[str]
    ips: tuple[str, ...]
    created_ms: int
    expires_ms: int | None = None
    deleted: bool = False
    label: str = ""
    config_account: str | None = None  # the CexAccountConfig id the key is written for

    @property
    def api_key(self) -> str:
        return self.material.api_key

    @property
    def secret(self) -> str:
        return self.material.secret

    @property
    def passphrase(self) -> str | None:
        return self.material.passphrase

    def ip_allowed(self, ip: str) -> bool:
        return not self.ips or ip in self.ips

    def expired(self, at_ms: int) -> bool:
        return self.expires_ms is not None and self.expires_ms <= at_ms


@dataclass
class SimOrder:
    order_id: str
    client_id: str
    symbol: str  # base asset + market kind make the instrument: see SimMarket
    market: Literal["spot", "futures"]
    side: Literal["buy", "sell"]
    amount: Decimal
    price: Decimal | None
    type: str = "limit"  # limit | market
    tif: str = "GTC"
    reduce_only: bool = False
    leg: Literal["long", "short"] | None = None  # hedge mode: the position leg the order acts on
    margin: bool = False  # a spot-instrument order on the margin account (Binance lists those apart)
    status: str = "open"  # open | filled | canceled | expired | rejected
    filled: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    created_ms: int = field(default_factory=now_ms)
    updated_ms: int = field(default_factory=now_ms)


SHORT_LEG = ":short"  # hedge mode keeps the short leg under "BASE:short" (the long leg under "BASE")


def position_slot(base: str, leg: str | None) -> str:
    """Where a position lives in :attr:`SimAccount.positions`: the base asset (one-way mode and the
    long leg of hedge mode) or ``BASE:short`` (the short leg of hedge mode)."""
    return base + SHORT_LEG if leg == "short" else base


def order_leg(hedge: bool, side: str, reduce_only: bool) -> Literal["long", "short"] | None:
    """The hedge-mode leg an order acts on (None in one-way mode): a buy opens the long leg and a
    reduce-only buy closes the short leg (and the other way round)."""
    if not hedge:
        return None
    return "long" if (side == "buy") != reduce_only else "short"


@dataclass(frozen=True)
class SimTransfer:
    """A transfer between two accounts of the venue (sub-account → master)."""

    venue_id: str
    client_id: str  # the caller's transfer id ("" when the endpoint takes none)
    from_uid: str
    to_uid: str
    asset: str
    amount: Decimal
    at_ms: int


@dataclass
class SimPosition:
    base: str
    size: Decimal  # signed, base units
    entry: Decimal
    leverage: int = 3
    updated_ms: int = field(default_factory=now_ms)


@dataclass
class SimMarket:
    base: str
    quote: str
    mark: Decimal
    last: Decimal
    tick: Decimal
    step: Decimal
    ct_val: Decimal  # OKX swap contract value in base units

    @property
    def unified_spot(self) -> str:
        return f"{self.base}/{self.quote}"

    @property
    def unified_swap(self) -> str:
        return f"{self.base}/{self.quote}:{self.quote}"


@dataclass
class SimAccount:
    uid: str
    name: str  # Binance email / OKX subAcct / Bybit username
    client: str | None
    is_master: bool = False
    frozen: bool = False
    spot: dict[str, Decimal] = field(default_factory=dict)
    futures: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, SimPosition] = field(default_factory=dict)  # base -> position
    orders: list[SimOrder] = field(default_factory=list)
    whitelist_enabled: bool = True
    whitelist: list[WhitelistEntryScenario] = field(default_factory=list)
    position_mode: str = "one_way"  # one_way | hedge
    margin_mode: str = "cross"  # cross | isolated
    multi_assets: bool = False
    withdrawals: list[dict[str, Any]] = field(default_factory=list)  # sandbox.cex.withdrawals records
    withdrawal_outcome: str = "pending"  # pending | confirmed | failed: see CexAccountScenario.withdrawals
    created_ms: int = field(default_factory=now_ms)

    def open_orders(self, market: str | None = None) -> list[SimOrder]:
        return [o for o in self.orders if o.status == "open" and (market is None or o.market == market)]

    def spot_locked(self, asset: str) -> Decimal:
        locked = Decimal(0)
        for o in self.open_orders("spot"):
            base, quote = o.symbol.split("/")
            remaining = o.amount - o.filled
            if o.side == "sell" and base == asset:
                locked += remaining
            elif o.side == "buy" and quote == asset and o.price is not None:
                locked += remaining * o.price
        return locked


class VenueState:
    """One simulated venue. Tests may read and change it directly (hold ``lock`` for changes)."""

    def __init__(self, venue: str, seed: bytes, faults: FaultConfig | None = None) -> None:
        self.venue = venue
        self.seed = seed
        self.lock = threading.RLock()
        self.accounts: dict[str, SimAccount] = {}
        self.keys: dict[str, SimKey] = {}  # api key -> key
        self.markets: dict[str, SimMarket] = {}  # base -> market (spot BASE/USDT and perp BASE/USDT:USDT)
        self.requests = 0
        self.by_path: Counter[str] = Counter()
        self.faults = faults or FaultConfig()
        self.fault_rng = random.Random(self.faults.seed)
        self.fault_counter = 0
        self.clock_offset_ms = 0  # tests may skew the venue clock
        # api key -> fields replaced in that key's self-inspection answer (apiRestrictions /
        # account/config / query-api): lets tests send a flag in an undocumented type
        self.key_answer_overrides: dict[str, dict[str, object]] = {}
        self._ids = itertools.count(1_000_001)
        self.transfers: list[SimTransfer] = []
        self.master = SimAccount(uid=derive_uid(seed, venue, "master"), name=f"pb-master@{venue}.sandbox",
                                 client=None, is_master=True)
        self.accounts[self.master.uid] = self.master

    # --- lookups ---------------------------------------------------------------------------------

    def server_ms(self) -> int:
        return now_ms() + self.clock_offset_ms

    def next_id(self) -> str:
        return str(next(self._ids))

    def account_of(self, key: SimKey) -> SimAccount:
        return self.accounts[key.account_uid]

    def sub_by_name(self, name: str) -> SimAccount | None:
        return next((a for a in self.accounts.values() if a.name == name and not a.is_master), None)

    def sub_by_uid(self, uid: str) -> SimAccount | None:
        acct = self.accounts.get(uid)
        return acct if acct is not None and not acct.is_master else None

    def key_by_id(self, account_name: str, key_id: str) -> SimKey:
        """The key ``key_id`` written for the sub-account ``account_name`` (master keys included)."""
        for k in self.keys.values():
            owner = self.accounts[k.account_uid].name
            if k.id == key_id and account_name in (owner, k.config_account):
                return k
        raise KeyError(f"{self.venue}: no key {key_id!r} for {account_name!r}")

    def market(self, base: str) -> SimMarket:
        return self.markets[base]

    def set_price(self, base: str, mark: Decimal, last: Decimal | None = None) -> None:
        with self.lock:
            m = self.markets[base]
            m.mark = mark
            m.last = mark if last is None else last

    # --- futures maths ---------------------------------------------------------------------------

    def upnl(self, pos: SimPosition) -> Decimal:
        return pos.size * (self.markets[pos.base].mark - pos.entry)

    def initial_margin(self, pos: SimPosition) -> Decimal:
        return abs(pos.size) * self.markets[pos.base].mark / pos.leverage

    def maint_margin(self, pos: SimPosition) -> Decimal:
        return abs(pos.size) * self.markets[pos.base].mark * MAINT_MARGIN_RATE

    @staticmethod
    def liquidation_price(pos: SimPosition) -> Decimal:
        """A simple isolated-style estimate: entry moved by 1/leverage less maintenance margin."""
        move = Decimal(1) / pos.leverage - MAINT_MARGIN_RATE
        factor = 1 - move if pos.size > 0 else 1 + move
        return (pos.entry * factor).quantize(Decimal("0.01"))

    # --- trading ---------------------------------------------------------------------------------

    def place_order(self, acct: SimAccount, *, base: str, market: Literal["spot", "futures"],
                    side: Literal["buy", "sell"], amount: Decimal, price: Decimal | None, type_: str, tif: str,
                    reduce_only: bool, client_id: str, leg: Literal["long", "short"] | None = None) -> SimOrder:
        """Place an order; IOC / market orders fill at once at the last price when marketable. In hedge
        mode ``leg`` names the position leg a futures order acts on (the venue handlers check it)."""
        m = self.markets[base]
        symbol = m.unified_spot if market == "spot" else m.unified_swap
        if leg is None and market == "futures":
            leg = order_leg(acct.position_mode == "hedge", side, reduce_only)
        order = SimOrder(order_id=self.next_id(), client_id=client_id, symbol=symbol, market=market, side=side,
                         amount=amount, price=price, type=type_, tif=tif, reduce_only=reduce_only,
                         leg=leg if market == "futures" else None)
        acct.orders.append(order)
        marketable = type_ == "market" or (price is not None and (
            (side == "buy" and price >= m.last) or (side == "sell" and price <= m.last)))
        if market == "futures" and (type_ == "market" or tif in ("IOC", "FOK")):
            if marketable:
                self._fill_futures(acct, order, m.last)
            else:
                order.status = "expired"
        elif market == "spot" and type_ == "market":
            order.status = "expired"  # the simulator keeps no spot book: market spot orders do not fill
        elif market == "spot" and tif in ("IOC", "FOK"):  # a limit IOC fills at the last price or expires
            if marketable:
                self._fill_spot(acct, order, m)
            else:
                order.status = "expired"
        return order

    def _fill_spot(self, acct: SimAccount, order: SimOrder, m: SimMarket) -> None:
        sign = 1 if order.side == "buy" else -1
        acct.spot[m.base] = acct.spot.get(m.base, Decimal(0)) + sign * order.amount
        acct.spot[m.quote] = acct.spot.get(m.quote, Decimal(0)) - sign * order.amount * m.last
        order.filled, order.avg_price, order.status, order.updated_ms = order.amount, m.last, "filled", now_ms()

    def move_to_master(self, acct: SimAccount, asset: str, amount: Decimal, *, unified: bool,
                       transfer_id: str) -> SimTransfer | None:
        """Move ``amount`` of ``asset`` from a sub-account's spot wallet (and, for a unified account,
        its futures wallet next) to the master's spot wallet; None when it does not hold that much."""
        spot = acct.spot.get(asset, Decimal(0)) - acct.spot_locked(asset)
        fut = acct.futures.get(asset, Decimal(0)) if unified else Decimal(0)
        if amount <= 0 or spot + fut < amount:
            return None
        from_spot = min(spot, amount)
        acct.spot[asset] = acct.spot.get(asset, Decimal(0)) - from_spot
        if amount > from_spot:
            acct.futures[asset] = fut - (amount - from_spot)
        self.master.spot[asset] = self.master.spot.get(asset, Decimal(0)) + amount
        t = SimTransfer(self.next_id(), transfer_id, acct.uid, self.master.uid, asset, amount, self.server_ms())
        self.transfers.append(t)
        return t

    def _fill_futures(self, acct: SimAccount, order: SimOrder, px: Decimal) -> None:
        signed = order.amount if order.side == "buy" else -order.amount
        base = order.symbol.split("/")[0]
        slot = position_slot(base, order.leg)
        pos = acct.positions.get(slot)
        if pos is None:
            acct.positions[slot] = SimPosition(base=base, size=signed, entry=px)
        else:
            new = pos.size + signed
            if pos.size * signed < 0:  # reducing: realize PnL on the closed part
                closed = min(abs(signed), abs(pos.size))
                pnl = closed * (px - pos.entry) * (1 if pos.size > 0 else -1)
                acct.futures["USDT"] = acct.futures.get("USDT", Decimal(0)) + pnl
                if new * pos.size < 0:  # flipped
                    pos.entry = px
            else:
                pos.entry = (pos.entry * abs(pos.size) + px * abs(signed)) / abs(new)
            pos.size = new
            pos.updated_ms = now_ms()
            if new == 0:
                del acct.positions[slot]
        order.filled = order.amount
        order.avg_price = px
        order.status = "filled"
        order.updated_ms = now_ms()

    def cancel(self, order: SimOrder) -> None:
        order.status = "canceled"
        order.updated_ms = now_ms()


# --- building from a scenario -------------------------------------------------------------------


@dataclass(frozen=True)
class SubAccountRef:
    """Where a scenario sub-account went: its config id, venue name and simulated account."""

    config_id: str
    client: str
    venue: str
    uid: str
    name: str
    scenario: CexAccountScenario
    keys: tuple[str, ...]  # api keys in scenario order (generated monitor last)


MASTER_HOLDERS = ("master", "key_admin")  # keys that live on the venue's master account


def _perms(k: CexKeyScenario) -> frozenset[str]:
    """The key's permission names; master-account keys (master, key_admin) also manage sub-account keys."""
    names = ("read", "spot", "margin", "futures", "options", "withdraw", "internal_transfer", "universal_transfer")
    keys = ("manage_keys",) if k.holder in MASTER_HOLDERS else ()
    return frozenset(n for n in names if getattr(k, n)) | frozenset(keys)


def build_states(scenario: Scenario) -> tuple[dict[str, VenueState], list[SubAccountRef]]:
    """Create every venue's state and the sub-account map (stable order) from a scenario."""
    seed = sandbox_seed(scenario.name)
    states = {v: VenueState(v, seed, scenario.faults.get(v)) for v in VENUES}
    marks: dict[str, Decimal] = dict(DEFAULT_MARKS)
    for f in scenario.feeds:
        if f.answer > 0:
            marks[f.asset] = f.answer
    bases: dict[str, tuple[Decimal, Decimal]] = {}
    for c in scenario.clients:
        for a in c.cex:
            for p in a.positions:
                base = p.symbol.split("/")[0]
                mark = p.mark_price or marks.get(base) or p.entry_price
                bases.setdefault(base, (mark, p.last_price or mark))
            for o in a.orders:
                base = o.symbol.split("/")[0]
                bases.setdefault(base, (marks.get(base, o.price), marks.get(base, o.price)))
    for base in ("BTC", "ETH"):
        bases.setdefault(base, (marks[base], marks[base]))
    for st in states.values():
        for base, (mark, last) in sorted(bases.items()):
            tick, step, ct_val = _SPECS.get(base, _SPECS["*"])
            st.markets[base] = SimMarket(base, "USDT", mark, last, tick, step, ct_val)

    refs: list[SubAccountRef] = []
    created = now_ms()
    for c in scenario.clients:
        per_venue: dict[str, int] = {}
        counts: dict[str, int] = {}
        for a in c.cex:
            counts[a.venue] = counts.get(a.venue, 0) + 1
        for a in c.cex:
            st = states[a.venue]
            n = per_venue[a.venue] = per_venue.get(a.venue, 0) + 1
            config_id = f"{c.id}-{a.venue}" if counts[a.venue] == 1 else f"{c.id}-{a.venue}-{n}"
            place = f"{c.id}/{n}"
            uid = derive_uid(seed, a.venue, place)
            if a.venue == "bybit" and a.sub_account is not None and a.sub_account.isdigit():
                uid = a.sub_account  # Bybit names a sub-account by its uid
            name = a.sub_account or _default_name(a.venue, c.id, n, uid)
            if uid in st.accounts or st.sub_by_name(name) is not None:
                raise ValueError(f"{a.venue}: sub-account {name!r} appears twice in the scenario")
            acct = SimAccount(uid=uid, name=name, client=c.id, frozen=a.frozen, spot=dict(a.spot),
                              futures=dict(a.futures), whitelist_enabled=a.whitelist_enabled,
                              whitelist=list(a.whitelist), position_mode=a.position_mode, margin_mode=a.margin_mode,
                              multi_assets=a.multi_assets, withdrawal_outcome=a.withdrawals)
            st.accounts[uid] = acct
            for p in a.positions:
                base = p.symbol.split("/")[0]
                slot = position_slot(base, "short" if a.position_mode == "hedge" and p.size < 0 else None)
                acct.positions[slot] = SimPosition(base=base, size=p.size, entry=p.entry_price, leverage=p.leverage)
            for o in a.orders:
                base = o.symbol.split("/")[0]
                m = st.markets[base]
                futures = o.market == "futures"
                acct.orders.append(SimOrder(order_id=st.next_id(), client_id=f"scn{st.next_id()}",
                                            symbol=m.unified_swap if futures else m.unified_spot,
                                            market="futures" if futures else "spot", side=o.side, amount=o.amount,
                                            price=o.price, margin=o.market == "margin"))
            keys = list(a.keys)
            if not any(k.holder == "monitor" for k in keys):
                keys.append(CexKeyScenario(id="monitor", holder="monitor", read=True))
            api_keys: list[str] = []
            for k in keys:
                owner = st.master if k.holder in MASTER_HOLDERS else acct
                material = derive_key(seed, a.venue, f"{place}/{k.id}")
                expires = None if k.expires_in_days is None else created + k.expires_in_days * 86_400_000
                sk = SimKey(id=k.id, venue=a.venue, account_uid=owner.uid, holder=k.holder, material=material,
                            perms=_perms(k), ips=tuple(k.ip_whitelist), created_ms=created - 86_400_000,
                            expires_ms=expires, label=f"{config_id}:{k.id}", config_account=config_id)
                st.keys[sk.api_key] = sk
                api_keys.append(sk.api_key)
            refs.append(SubAccountRef(config_id, c.id, a.venue, uid, name, a, tuple(api_keys)))
    return states, refs


def _default_name(venue: str, client: str, n: int, uid: str) -> str:
    if venue == "binance":
        return f"{client}-{n}_virtual@sub.sandbox"
    if venue == "okx":
        return "".join(ch for ch in f"{client}{n}" if ch.isalnum())[:20] or f"sub{n}"
    return uid  # Bybit: the sub-account's uid identifies it
