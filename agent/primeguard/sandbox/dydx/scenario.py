"""Scenario models for dYdX v4 accounts: subaccounts, positions, authenticators, v3 legacy keys."""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from primeguard.sandbox.dydx.encode import EncodeError, encode_config
from primeguard.sandbox.dydx.keeper import KeeperRefusal, check_add


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DydxPerpScenario(_M):
    market: str = Field(pattern=r"^[A-Z0-9]{1,20}-USD$")  # e.g. "BTC-USD"
    size: Decimal = Field(allow_inf_nan=False)  # signed: negative = short
    entry_price: Decimal = Field(gt=0, allow_inf_nan=False)


class DydxSubaccountScenario(_M):
    number: int = Field(default=0, ge=0, le=128_000)
    usdc: Decimal = Field(default=Decimal(0), allow_inf_nan=False)  # quote balance (asset position), signed
    perps: tuple[DydxPerpScenario, ...] = ()


class DydxAuthenticatorScenario(_M):
    """An x/accountplus authenticator: ``type`` and a JSON-able ``config`` (nested for AllOf/AnyOf).

    See :mod:`primeguard.sandbox.dydx.encode` for the config forms. ``encoding`` picks how
    AllOf/AnyOf sub-configs are written (``base64`` like the Go node, ``bytes`` like the Python
    client, ``nested`` JSON). ``raw_config_b64`` gives the exact stored bytes instead.

    Like the chain's keeper, loading refuses what it refuses (:mod:`primeguard.sandbox.dydx.keeper`):
    a path without a signature, a composite with fewer than two children, data over 1,024 bytes,
    an unregistered type, sub-configs that do not decode as bytes (``nested``). ``bypass_keeper``
    stores such an authenticator anyway, to play a node that does not behave like dYdX.
    """

    id: int = Field(ge=0)
    type: str
    config: Any = None
    holder: Literal["client", "monitor", "operator", "master", "unknown"] = "client"
    encoding: Literal["base64", "bytes", "nested"] = "base64"
    raw_config_b64: str | None = None
    bypass_keeper: bool = False

    @field_validator("raw_config_b64")
    @classmethod
    def _b64(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError("raw_config_b64 is not base64") from exc
        return v

    @model_validator(mode="after")
    def _encodable(self) -> DydxAuthenticatorScenario:
        try:
            data = self.config_bytes(seed="check")
        except EncodeError as exc:
            raise ValueError(f"authenticator {self.id} ({self.type}): {exc}") from exc
        if not self.bypass_keeper:
            try:
                check_add(self.type, data)
            except KeeperRefusal as exc:
                raise ValueError(f"authenticator {self.id} ({self.type}): the chain's keeper refuses it: {exc} "
                                 "(set bypass_keeper to store it anyway)") from exc
        return self

    def config_bytes(self, seed: str) -> bytes:
        """The bytes the node stores for this authenticator."""
        if self.raw_config_b64 is not None:
            return base64.b64decode(self.raw_config_b64)
        return encode_config(self.type, self.config, encoding=self.encoding, seed=seed)


class DydxAccountScenario(_M):
    address: str | None = None  # dydx1...; default derived from client id
    subaccounts: tuple[DydxSubaccountScenario, ...] = (DydxSubaccountScenario(),)
    authenticators: tuple[DydxAuthenticatorScenario, ...] = ()
    v3_stark_key_holders: tuple[Literal["client", "operator"], ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> DydxAccountScenario:
        numbers = [s.number for s in self.subaccounts]
        if len(set(numbers)) != len(numbers):
            raise ValueError("duplicate subaccount number")
        ids = [a.id for a in self.authenticators]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate authenticator id")
        return self
