"""Snapshots of accounts and the sweep-wide observation they form. Immutable once built.

An :class:`AccountSnapshot` with ``ok=False`` is a blind spot: its balances are absent (never
"zero"), and ``findings`` says why. Downstream, ``risk`` marks the client blind and ``policy``
denies withdrawals for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from primeguard.domain.findings import Finding
from primeguard.domain.model import Account, Balance, Credential, Position, PriceQuote


@dataclass(frozen=True, slots=True)
class WhitelistEntry:
    asset: str
    network: str
    address: str
    label: str = ""
    tag: str = ""


@dataclass(frozen=True, slots=True)
class WhitelistStatus:
    """A venue's withdrawal allowlist. ``enabled=None``: the venue does not let us see it
    (OKX has no list endpoint): policies must treat that as unverifiable, not as on."""

    enabled: bool | None
    entries: tuple[WhitelistEntry, ...] = ()

    def contains(self, asset: str, address: str, network: str | None = None) -> bool | None:
        if self.enabled is None:
            return None
        low = address.lower()
        return any(
            e.asset == asset and e.address.lower() == low and (network is None or e.network == network)
            for e in self.entries
        )


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """What one adapter saw of one account at ``observed_at``."""

    account: Account
    observed_at: datetime
    ok: bool
    balances: tuple[Balance, ...] = ()
    positions: tuple[Position, ...] = ()
    credentials: tuple[Credential, ...] = ()
    prices: tuple[PriceQuote, ...] = ()
    findings: tuple[Finding, ...] = ()
    whitelist: WhitelistStatus | None = None
    equity_usd: str | None = None  # the venue's own equity figure, for cross-checks only


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything one sweep saw: per-account snapshots plus oracle prices and global findings."""

    taken_at: datetime
    snapshots: tuple[AccountSnapshot, ...]
    prices: tuple[PriceQuote, ...] = ()
    findings: tuple[Finding, ...] = ()

    def for_client(self, client_id: str) -> tuple[AccountSnapshot, ...]:
        return tuple(s for s in self.snapshots if s.account.client_id == client_id)
