"""Scenario models for CEX sub-accounts: balances, positions, orders, keys, whitelists."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CexKeyScenario(_M):
    """An API key on a sub-account. ``holder``: client, monitor, operator, master."""

    id: str
    holder: Literal["client", "monitor", "operator", "master"] = "client"
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
    size: Decimal  # signed: negative = short
    entry_price: Decimal
    mark_price: Decimal | None = None
    leverage: int = Field(default=3, ge=1, le=125)


class CexOrderScenario(_M):
    symbol: str
    side: Literal["buy", "sell"]
    amount: Decimal
    price: Decimal
    market: Literal["spot", "futures"] = "futures"


class WhitelistEntryScenario(_M):
    coin: str
    network: str = "ETH"
    address: str
    label: str = ""


class CexAccountScenario(_M):
    """One sub-account on one venue."""

    venue: Literal["binance", "okx", "bybit"]
    sub_account: str | None = None  # default derived from client id
    spot: dict[str, Decimal] = Field(default_factory=dict)  # asset -> quantity
    futures: dict[str, Decimal] = Field(default_factory=dict)  # margin wallet asset -> quantity
    positions: tuple[CexPositionScenario, ...] = ()
    orders: tuple[CexOrderScenario, ...] = ()
    keys: tuple[CexKeyScenario, ...] = ()
    whitelist_enabled: bool = True
    whitelist: tuple[WhitelistEntryScenario, ...] = ()
