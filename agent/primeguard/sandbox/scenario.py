"""A scenario describes the sandbox world: chains, oracle prices, clients and their accounts on
every venue, faults and scripted events. ``primeguard sandbox up --scenario FILE`` builds it.

Validation is strict and happens before anything is started: a bad checksum address, an unknown
token, a negative balance or a missing field is a ``ConfigError`` naming the file, line and field.
So is every value the chain cannot hold: a feed answer outside ``int256`` once scaled by its
decimals, a balance, mint total, limit or approval outside ``uint256`` in base units (or with more
decimal places than the token has), an unbounded or infinite duration.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from primeguard.config.loader import load_yaml_model
from primeguard.config.schema import DAY, HOUR, MAX_CHAIN_ID, LoanConfig, LocatedValueError
from primeguard.domain.errors import InputError
from primeguard.domain.money import parse_address
from primeguard.sandbox.cex.scenario import CexAccountScenario
from primeguard.sandbox.dydx.scenario import DydxAccountScenario
from primeguard.sandbox.faults import FaultConfig

# Canonical Ethereum mainnet addresses: the sandbox places its contracts here so that state looks
# mainnet-shaped and a fork test can address tokens and feeds the way production code does.
MAINNET_TOKENS: dict[str, tuple[str, int, str]] = {
    # symbol: (address, decimals, priced asset)
    "USDC": ("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", 6, "USDC"),
    "USDT": ("0xdAC17F958D2ee523a2206206994597C13D831ec7", 6, "USDT"),
    "WETH": ("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", 18, "ETH"),
    "WBTC": ("0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599", 8, "BTC"),
}
MAINNET_FEEDS: dict[str, str] = {
    # priced asset: Chainlink USD feed (EACAggregatorProxy) address
    "ETH": "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419",
    "BTC": "0xF4030086522a5bEEa4988F8cA5B36dbC97BeE88c",
    "USDC": "0x8fFfFfd4AfB6115b954Bd326cbe7B4BA576818f6",
    "USDT": "0x3E7d1eAB13ad0104d2750B8863b489D65364e32D",
}
NonNeg = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
UINT256_MAX = 2**256 - 1
INT256_MAX = 2**255 - 1
MAX_FEED_AGE_S = 10 * 365 * DAY


def _fits(value: Decimal, decimals: int, limit: int) -> bool:
    """``|value| * 10**decimals <= limit``, compared as Decimals (never building a huge int)."""
    return abs(value).scaleb(decimals) <= Decimal(limit)


def check_base_units(value: Decimal, decimals: int, what: str, loc: tuple[str | int, ...]) -> None:
    """Refuse an amount the chain cannot hold in a ``uint256`` of base units, or with more decimal
    places than ``decimals``. ``loc`` is where it sits below the model that calls this."""
    if not _fits(value, decimals, UINT256_MAX):
        raise LocatedValueError(f"{what} {value} does not fit a uint256 in base units ({decimals} decimals)", loc)
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -decimals:
        raise LocatedValueError(f"{what} {value} has more than {decimals} decimal places", loc)


def check_feed_answer(answer: Decimal, decimals: int, loc: tuple[str | int, ...]) -> None:
    """Refuse a feed answer that does not fit the aggregator's ``int256`` once scaled."""
    if not _fits(answer, decimals, INT256_MAX):
        raise LocatedValueError(f"answer {answer} does not fit an int256 with {decimals} decimals", loc)


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _addr(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return parse_address(value)
    except InputError as exc:
        raise ValueError(str(exc)) from exc


class ChainScenario(_M):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")
    chain_id: int = Field(gt=0, le=MAX_CHAIN_ID)
    # None: mine on every transaction
    block_time_s: float | None = Field(default=None, gt=0, le=HOUR, allow_inf_nan=False)
    tokens: tuple[str, ...] = ("USDC", "USDT", "WETH", "WBTC")  # deployed at canonical addresses

    @field_validator("tokens")
    @classmethod
    def _known_tokens(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for t in v:
            if t not in MAINNET_TOKENS:
                raise ValueError(f"unknown token {t!r}; known: {', '.join(MAINNET_TOKENS)}")
        return v


class FeedScenario(_M):
    asset: str  # priced asset: ETH, BTC, USDC, USDT
    chain: str = "ethereum"
    answer: Decimal = Field(allow_inf_nan=False)  # may be <= 0 on purpose (oracle failure tests)
    decimals: int = Field(default=8, ge=0, le=36)
    heartbeat_s: int = Field(default=3600, gt=0, le=7 * DAY)
    age_s: int = Field(default=0, ge=0, le=MAX_FEED_AGE_S)  # how long ago the round was updated
    incomplete: bool = False  # answeredInRound < roundId

    @model_validator(mode="after")
    def _int256(self) -> FeedScenario:
        check_feed_answer(self.answer, self.decimals, ("answer",))
        return self


class ApprovalScenario(_M):
    token: str
    spender: str
    amount: NonNeg | Literal["unlimited"] = "unlimited"

    _a = field_validator("spender")(_addr)


class SafeScenario(_M):
    """A Safe (1.4.1) wallet. ``guard: sandbox`` deploys Safe's example DelegateCallTransactionGuard."""

    owners: tuple[str, ...] = ()  # default: ``owner_count`` derived sandbox keys
    owner_count: int = Field(default=1, ge=1, le=20)
    threshold: int = Field(default=1, ge=1)
    modules: tuple[str, ...] = ()
    guard: str | None = None

    @field_validator("guard")
    @classmethod
    def _guard(cls, v: str | None) -> str | None:
        return v if v in (None, "sandbox") else _addr(v)

    @model_validator(mode="after")
    def _threshold(self) -> SafeScenario:
        n = len(self.owners) or self.owner_count
        if self.threshold > n:
            raise ValueError(f"threshold {self.threshold} exceeds {n} owners")
        return self

    @field_validator("owners", "modules")
    @classmethod
    def _addrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_addr(x) or "" for x in v)


class WalletScenario(_M):
    chain: str = "ethereum"
    address: str | None = None  # None: derived from the sandbox mnemonic
    kind: Literal["eoa", "safe"] = "eoa"
    native: NonNeg = Decimal(0)
    tokens: dict[str, NonNeg] = Field(default_factory=dict)
    approvals: tuple[ApprovalScenario, ...] = ()
    safe: SafeScenario | None = None
    label: str = ""
    custody_key: bool = False  # the PB's treasury keystore controls this wallet (lever target)

    _a = field_validator("address")(_addr)

    @model_validator(mode="after")
    def _kind(self) -> WalletScenario:
        if self.kind == "safe" and (self.address is not None or self.custody_key):
            raise ValueError("a Safe is created by the sandbox: give its owners, not an address or custody_key")
        if self.custody_key and self.address is not None:
            raise ValueError("custody_key wallets use the sandbox treasury key's address: give no address")
        return self


class VaultEntryScenario(_M):
    asset: str  # token symbol or "ETH"
    address: str
    label: str = ""
    pending: bool = False  # still inside its timelock at start

    _a = field_validator("address")(_addr)


class VaultScenario(_M):
    """A CollateralVault holding a client's collateral: only allowlisted destinations, velocity
    limits per asset and window, a guardian (the agent) that may pause."""

    chain: str = "ethereum"
    timelock_s: int = Field(default=48 * 3600, ge=0, le=365 * DAY)
    window_s: int = Field(default=86400, gt=0, le=365 * DAY)
    limits: dict[str, NonNeg] = Field(default_factory=dict)  # asset -> max per window (whole units)
    native: NonNeg = Decimal(0)
    tokens: dict[str, NonNeg] = Field(default_factory=dict)
    allowlist: tuple[VaultEntryScenario, ...] = ()


class ScenarioLoanConfig(LoanConfig):
    """A sandbox loan: ``start`` may be left out, then the loan starts when the world is built
    (the agent config itself requires it)."""

    start: AwareDatetime | None = None  # type: ignore[assignment]


class ClientScenario(_M):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    name: str = ""
    tier: str = "standard"
    loan: ScenarioLoanConfig | None = None
    wallets: tuple[WalletScenario, ...] = ()
    cex: tuple[CexAccountScenario, ...] = ()
    dydx: tuple[DydxAccountScenario, ...] = ()
    vault: VaultScenario | None = None


class EventScenario(_M):
    """Scripted change at ``at_s`` seconds after start: a price move, a venue outage or recovery."""

    at_s: float = Field(ge=0, le=DAY, allow_inf_nan=False)
    kind: Literal["price", "outage", "recover"]
    asset: str | None = None
    chain: str = "ethereum"
    answer: Decimal | None = Field(default=None, allow_inf_nan=False)
    venue: str | None = None


class Scenario(_M):
    name: str
    chains: tuple[ChainScenario, ...] = (ChainScenario(id="ethereum", chain_id=1),)
    feeds: tuple[FeedScenario, ...] = ()
    clients: tuple[ClientScenario, ...] = ()
    faults: dict[str, FaultConfig] = Field(default_factory=dict)  # venue name -> faults
    events: tuple[EventScenario, ...] = ()
    # Addresses the sandbox's sanctions oracle reports as sanctioned (on every chain).
    sanctioned: tuple[str, ...] = Field(default=(), max_length=1000)

    @model_validator(mode="after")
    def _integrity(self) -> Scenario:
        chains = {c.id: c for c in self.chains}
        if len(chains) != len(self.chains):
            raise ValueError("duplicate chain id")
        ids = [c.id for c in self.clients]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate client id")
        for f in self.feeds:
            if f.chain not in chains:
                raise ValueError(f"feed {f.asset}: unknown chain {f.chain!r}")
        for c in self.clients:
            for w in c.wallets:
                if w.chain not in chains:
                    raise ValueError(f"client {c.id}: wallet on unknown chain {w.chain!r}")
                for sym in [*w.tokens, *(a.token for a in w.approvals)]:
                    if sym not in chains[w.chain].tokens:
                        raise ValueError(f"client {c.id}: unknown token {sym!r} on chain {w.chain}")
            if c.vault is not None:
                v = c.vault
                if v.chain not in chains:
                    raise ValueError(f"client {c.id}: vault on unknown chain {v.chain!r}")
                known = {*chains[v.chain].tokens, "ETH"}
                for sym in [*v.tokens, *v.limits, *(e.asset for e in v.allowlist)]:
                    if sym not in known:
                        raise ValueError(f"client {c.id}: unknown vault asset {sym!r} on chain {v.chain}")
        for v in self.faults:
            if v not in ("binance", "okx", "bybit", "dydx", "dydx-node", "evm"):
                raise ValueError(f"faults: unknown venue {v!r}")
        self._chain_ranges()
        return self

    def _chain_ranges(self) -> None:
        """Every amount fits what the contracts hold (see the module docstring); per token and
        chain, everything minted together fits the token's ``uint256`` total supply."""
        minted: dict[tuple[str, str], Decimal] = {}

        def mint(chain: str, sym: str, qty: Decimal, loc: tuple[str | int, ...]) -> None:
            decimals = 18 if sym == "ETH" else MAINNET_TOKENS[sym][1]
            check_base_units(qty, decimals, f"{sym} balance", loc)
            total = minted.get((chain, sym), Decimal(0)) + qty
            if not _fits(total, decimals, UINT256_MAX):
                raise LocatedValueError(f"{sym} minted on chain {chain} adds up to more than a uint256 "
                                        "total supply", loc)
            minted[(chain, sym)] = total

        for ci, c in enumerate(self.clients):
            for wi, w in enumerate(c.wallets):
                at: tuple[str | int, ...] = ("clients", ci, "wallets", wi)
                check_base_units(w.native, 18, "native balance", (*at, "native"))
                for sym, qty in w.tokens.items():
                    mint(w.chain, sym, qty, (*at, "tokens", sym))
                for ai, ap in enumerate(w.approvals):
                    if ap.amount != "unlimited":
                        check_base_units(ap.amount, MAINNET_TOKENS[ap.token][1], "approval",
                                         (*at, "approvals", ai, "amount"))
            if c.vault is not None:
                v = c.vault
                at = ("clients", ci, "vault")
                check_base_units(v.native, 18, "vault native balance", (*at, "native"))
                for sym, qty in v.tokens.items():
                    mint(v.chain, sym, qty, (*at, "tokens", sym))
                for sym, qty in v.limits.items():
                    decimals = 18 if sym == "ETH" else MAINNET_TOKENS[sym][1]
                    check_base_units(qty, decimals, f"{sym} limit", (*at, "limits", sym))
        feeds = {(f.chain, f.asset): f for f in self.feeds}
        for ei, ev in enumerate(self.events):
            feed = feeds.get((ev.chain, ev.asset or ""))
            if ev.kind == "price" and ev.answer is not None and feed is not None:
                check_feed_answer(ev.answer, feed.decimals, ("events", ei, "answer"))


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file (raises ConfigError with file:line)."""
    return load_yaml_model(path, Scenario)
