"""The world as primeguard sees it: venues, accounts, credentials, balances, positions, prices.

Everything here is an immutable value. Adapters build them from vendor answers; ``risk`` and
``policy`` read them. Quantities are ``Decimal`` (whole units); chain reads keep base units too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class VenueKind(StrEnum):
    """Where an account lives."""

    BINANCE = "binance"
    OKX = "okx"
    BYBIT = "bybit"
    DYDX = "dydx"
    EVM = "evm"

    @property
    def is_cex(self) -> bool:
        return self in (VenueKind.BINANCE, VenueKind.OKX, VenueKind.BYBIT)


class Capability(StrEnum):
    """Normalized vocabulary of what a credential (or on-chain actor) can do.

    The same words describe a Binance API key, a dYdX authenticator, a Safe module and an ERC-20
    approval, so one policy rule can speak about all of them.
    """

    READ = "read"
    TRADE_SPOT = "trade_spot"
    TRADE_MARGIN = "trade_margin"
    TRADE_FUTURES = "trade_futures"
    TRADE_OPTIONS = "trade_options"
    WITHDRAW = "withdraw"  # move funds off the venue / account to an outside address
    INTERNAL_TRANSFER = "internal_transfer"  # between accounts of the same owner
    UNIVERSAL_TRANSFER = "universal_transfer"  # between sub-accounts / to other users on the venue
    FAST_WITHDRAW = "fast_withdraw"  # dYdX v3: L2 → any L1 address with the STARK key only
    GRANT = "grant"  # can give itself or others more power (add authenticator, authz grant, Safe owner)
    SPEND_ALLOWANCE = "spend_allowance"  # ERC-20 spender that may transferFrom the wallet
    MODULE_EXECUTE = "module_execute"  # Safe module: executes without the owners' threshold
    DELEGATECALL = "delegatecall"  # arbitrary code in the wallet's context
    SIGN_ANYTHING = "sign_anything"  # holds the owner key / mnemonic / bare signature authenticator
    DELEGATED_CODE = "delegated_code"  # EIP-7702: the EOA runs a delegate's code for any caller it allows
    UNKNOWN = "unknown"  # could not be analysed: treated as able to do anything


# Capabilities that let money leave the PB's control. Policies usually forbid them on client keys.
FUND_MOVING: frozenset[Capability] = frozenset(
    {
        Capability.WITHDRAW,
        Capability.UNIVERSAL_TRANSFER,
        Capability.FAST_WITHDRAW,
        Capability.SPEND_ALLOWANCE,
        Capability.MODULE_EXECUTE,
        Capability.DELEGATECALL,
        Capability.SIGN_ANYTHING,
        Capability.DELEGATED_CODE,
        Capability.GRANT,
        Capability.UNKNOWN,
    }
)


class Holder(StrEnum):
    """Who holds a credential: decides which capabilities are acceptable."""

    CLIENT = "client"  # handed to the trading firm
    MONITOR = "monitor"  # primeguard's own read-only key
    OPERATOR = "operator"  # the PB's trading key on the sub-account: cancel, close, sell, sweep; never withdraws
    KEY_ADMIN = "key_admin"  # the PB's key that only manages the sub-account's API keys (freeze, delete, IP-pin)
    MASTER = "master"  # the PB's master account key: never handed out
    CONTRACT = "contract"  # a spender or module contract
    UNKNOWN = "unknown"


# What each PB-held role is used for by the CEX levers (least power first): the inventory shows it
# beside each credential's venue capabilities. Client, monitor and contract holders run no lever; a
# master key is only a fallback for the key levers (the shipped policy forbids it).
LEVER_POWERS: Mapping[Holder, tuple[str, ...]] = MappingProxyType({
    Holder.OPERATOR: ("cancel_all_orders", "close_all_positions", "sell_spot", "sweep_to_master"),
    Holder.KEY_ADMIN: ("disable_client_keys",),
    Holder.MASTER: ("disable_client_keys",),
})


@dataclass(frozen=True, slots=True)
class Client:
    """A trading firm the PB finances."""

    id: str
    name: str
    tier: str = "standard"


@dataclass(frozen=True, slots=True)
class LoanEvent:
    """A change to a loan's principal at ``at``: ``amount`` > 0 is a draw, < 0 a repayment."""

    at: datetime
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Loan:
    """Money the PB lent a client: ``principal`` in ``asset`` drawn at ``start``, then ``events``
    (draws and repayments, in time order) and interest (``primeguard.risk.interest``)."""

    client_id: str
    principal: Decimal
    asset: str
    annual_rate: Decimal
    start: datetime
    events: tuple[LoanEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class Account:
    """One place collateral sits: a CEX sub-account, a dYdX subaccount, an EVM wallet."""

    id: str
    client_id: str
    venue: VenueKind
    chain: str | None = None  # EVM chain id name, e.g. "ethereum"; None off chain
    address: str | None = None  # EVM / dYdX address; CEX: sub-account identifier
    label: str = ""


@dataclass(frozen=True, slots=True)
class Credential:
    """Something that can act on an account: an API key, an authenticator, a module, an approval."""

    id: str
    account_id: str
    venue: VenueKind
    kind: str  # e.g. "cex_api_key", "dydx_authenticator", "dydx_v3_stark", "safe_module", "erc20_approval"
    holder: Holder
    capabilities: frozenset[Capability]
    ip_restricted: bool | None = None  # None: unknown
    expires_at: datetime | None = None
    chain: str | None = None
    details: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def can(self, capability: Capability) -> bool:
        """True when the credential has ``capability`` or could not be analysed."""
        return capability in self.capabilities or Capability.UNKNOWN in self.capabilities

    @property
    def moves_funds(self) -> bool:
        return bool(self.capabilities & FUND_MOVING)


@dataclass(frozen=True, slots=True)
class Balance:
    """A holding on an account. ``base_units``/``decimals`` set for on-chain reads."""

    account_id: str
    asset: str
    quantity: Decimal
    observed_at: datetime
    source: str
    base_units: int | None = None
    decimals: int | None = None
    locked: Decimal = Decimal(0)  # in orders / used as margin; still the client's collateral


@dataclass(frozen=True, slots=True)
class Position:
    """A derivative position. ``size`` is signed: positive long, negative short (in base units of
    the underlying, e.g. BTC)."""

    account_id: str
    venue: VenueKind
    instrument: str  # venue symbol, e.g. "BTC/USDT:USDT" or "BTC-USD"
    underlying: str  # priced asset, e.g. "BTC"
    size: Decimal
    entry_price: Decimal
    mark_price: Decimal
    observed_at: datetime
    source: str
    unrealized_pnl: Decimal = Decimal(0)
    liquidation_price: Decimal | None = None
    leverage: Decimal | None = None
    margin_mode: str = "cross"

    @property
    def notional(self) -> Decimal:
        return abs(self.size) * self.mark_price


class PriceSourceKind(StrEnum):
    ORACLE = "oracle"  # Chainlink-style on-chain feed
    VENUE_MARK = "venue_mark"  # CEX mark price
    DYDX_ORACLE = "dydx_oracle"
    FIXED = "fixed"  # configured constant (e.g. a stablecoin peg used only as a cross-check)


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """A USD price for an asset with where it came from and how old it is."""

    asset: str
    price: Decimal
    source: PriceSourceKind
    source_id: str  # feed address@chain, venue name...
    updated_at: datetime  # the source's own timestamp
    observed_at: datetime  # when primeguard read it
    round_id: int | None = None

    def age_seconds(self, now: datetime) -> Decimal:
        return Decimal(str((now - self.updated_at).total_seconds()))
