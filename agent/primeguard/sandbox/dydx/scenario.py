"""Scenario models for dYdX v4 accounts: subaccounts, positions, authenticators, v3 legacy keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DydxPerpScenario(_M):
    market: str  # e.g. "BTC-USD"
    size: Decimal  # signed: negative = short
    entry_price: Decimal


class DydxSubaccountScenario(_M):
    number: int = Field(default=0, ge=0, le=128_000)
    usdc: Decimal = Decimal(0)  # quote balance (asset position)
    perps: tuple[DydxPerpScenario, ...] = ()


class DydxAuthenticatorScenario(_M):
    """An x/accountplus authenticator: ``type`` and a JSON-able ``config`` (nested for AllOf/AnyOf)."""

    id: int
    type: str
    config: Any = None
    holder: Literal["client", "monitor", "operator", "master", "unknown"] = "client"


class DydxAccountScenario(_M):
    address: str | None = None  # dydx1...; default derived from client id
    subaccounts: tuple[DydxSubaccountScenario, ...] = (DydxSubaccountScenario(),)
    authenticators: tuple[DydxAuthenticatorScenario, ...] = ()
    v3_stark_key_holders: tuple[Literal["client", "operator"], ...] = ()
