"""Scenario models for CEX sub-accounts: balances, positions, orders, keys, whitelists.

Every :class:`CexKeyScenario` becomes a real key on the simulated venue: its api key, secret (and
OKX passphrase) are derived deterministically from the scenario name and the key's place, so a
config written by :meth:`CexSimulators.config_accounts` can reference them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NonNeg = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _symbol(value: str, *, futures: bool) -> str:
    """Check a unified symbol: ``BASE/QUOTE`` (spot) or ``BASE/QUOTE:SETTLE`` (linear perpetual)."""
    head, _, settle = value.partition(":")
    base, slash, quote = head.partition("/")
    if not (slash and base.isalnum() and quote.isalnum() and base.isupper() and quote.isupper()):
        raise ValueError(f"symbol {value!r} is not BASE/QUOTE[:SETTLE] in upper case")
    if futures and settle != quote:
        raise ValueError(f"futures symbol {value!r} must be a linear perpetual like BTC/USDT:USDT")
    if not futures and settle:
        raise ValueError(f"spot symbol {value!r} must not have a settle currency")
    return value


class CexKeyScenario(_M):
    """An API key on a sub-account. ``holder``: client, monitor, operator, key_admin, master.

    ``master`` and ``key_admin`` keys live on the venue's master (PB) account, not on the
    sub-account: both may manage the sub-account's API keys (a ``key_admin`` key can do nothing
    else unless its flags say so; a ``master`` key may also do what its flags allow). An
    ``operator`` key lives on the sub-account: it trades, and with ``internal_transfer`` or
    ``universal_transfer`` it moves funds to the master account. ``expires_in_days`` may be negative (an
    expired key); ``ip_whitelist`` empty means the key is not IP-bound. The simulator sees every
    request from 127.0.0.1: a key bound only to other addresses is refused.
    """

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$")
    holder: Literal["client", "monitor", "operator", "key_admin", "master"] = "client"
    read: bool = True
    spot: bool = False
    margin: bool = False
    futures: bool = False
    options: bool = False
    withdraw: bool = False
    internal_transfer: bool = False
    universal_transfer: bool = False
    ip_whitelist: tuple[str, ...] = ()
    expires_in_days: int | None = None


class CexPositionScenario(_M):
    symbol: str  # unified, e.g. "BTC/USDT:USDT"
    size: Decimal = Field(allow_inf_nan=False)  # signed: negative = short
    entry_price: Positive
    mark_price: Positive | None = None  # default: the scenario feed for the base asset
    last_price: Positive | None = None  # last trade; default = mark (set apart to test slippage caps)
    leverage: int = Field(default=3, ge=1, le=125)

    @field_validator("symbol")
    @classmethod
    def _sym(cls, v: str) -> str:
        return _symbol(v, futures=True)

    @field_validator("size")
    @classmethod
    def _nonzero(cls, v: Decimal) -> Decimal:
        if v == 0:
            raise ValueError("a position's size must not be zero")
        return v


class CexOrderScenario(_M):
    symbol: str
    side: Literal["buy", "sell"]
    amount: Positive
    price: Positive
    market: Literal["spot", "margin", "futures"] = "futures"  # margin: a spot instrument on margin

    @model_validator(mode="after")
    def _sym(self) -> CexOrderScenario:
        _symbol(self.symbol, futures=self.market == "futures")
        return self


class WhitelistEntryScenario(_M):
    coin: str
    network: str = "ETH"
    address: str
    label: str = ""


class CexAccountScenario(_M):
    """One sub-account on one venue, with the venue account's mode settings.

    ``position_mode``: ``one_way`` (OKX net mode, Binance one-way, Bybit one-way) or ``hedge``
    (OKX long/short mode, Binance hedge mode, Bybit hedge mode: a long and a short position may
    coexist on one symbol). ``margin_mode``: ``cross`` or ``isolated`` (OKX ``mgnMode`` of the
    positions, Binance margin type, Bybit isolated-margin account). ``multi_assets``: Binance
    USDⓈ-M multi-asset margin (non-USDT assets in the futures wallet count as margin).
    ``withdrawals``: how the venue settles the account's withdrawals (see the field).
    """

    venue: Literal["binance", "okx", "bybit"]
    sub_account: str | None = None  # default derived from client id
    spot: dict[str, NonNeg] = Field(default_factory=dict)  # asset -> quantity
    futures: dict[str, NonNeg] = Field(default_factory=dict)  # margin wallet asset -> quantity
    positions: tuple[CexPositionScenario, ...] = ()
    orders: tuple[CexOrderScenario, ...] = ()
    keys: tuple[CexKeyScenario, ...] = ()
    whitelist_enabled: bool = True
    whitelist: tuple[WhitelistEntryScenario, ...] = ()
    frozen: bool = False  # sub-account frozen by the master (Bybit) at start
    position_mode: Literal["one_way", "hedge"] = "one_way"
    margin_mode: Literal["cross", "isolated"] = "cross"
    multi_assets: bool = False
    # Where the venue takes this account's withdrawals: ``pending`` (they stay processing until a
    # test settles them with CexSimulators.settle_withdrawal), or ``confirmed`` / ``failed`` (each
    # settles so the first time the venue's withdrawal history is read after it was made).
    withdrawals: Literal["pending", "confirmed", "failed"] = "pending"

    @model_validator(mode="after")
    def _unique(self) -> CexAccountScenario:
        ids = [k.id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate key id in {self.venue} sub-account")
        if self.position_mode == "hedge":
            legs = [(p.symbol, p.size > 0) for p in self.positions]
            if len(set(legs)) != len(legs):
                raise ValueError("hedge mode: at most one long and one short position per symbol")
        else:
            syms = [p.symbol for p in self.positions]
            if len(set(syms)) != len(syms):
                raise ValueError("one position per symbol (one-way mode)")
        if self.multi_assets and self.venue != "binance":
            raise ValueError("multi_assets is a Binance USD-M setting")
        return self
