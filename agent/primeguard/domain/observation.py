"""Snapshots of accounts and the sweep-wide observation they form. Immutable once built.

An :class:`AccountSnapshot` with ``ok=False`` is a blind spot: its balances are absent (never
"zero"), and ``findings`` says why. Downstream, ``risk`` marks the client blind and ``policy``
denies withdrawals for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from primeguard.domain.findings import BLIND_SPOT_CODES, Finding, FindingCode
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
class DataGap:
    """Something a client's valuation needs that a sweep did not see in full. Any gap makes the
    client blind (withdrawals denied with ``blind_spot``), whatever the venue kind.

    ``venue`` names where the data should have come from ("binance", "dydx", "dydx-node",
    "evm:ethereum", "oracle:ethereum"); ``subject`` the account or feed; ``missing`` what is
    missing, for people; ``cause`` the finding code that explains it.
    """

    venue: str
    subject: str
    missing: str
    cause: FindingCode = FindingCode.BLIND_SPOT


def account_venue(snap: AccountSnapshot) -> str:
    """The venue label of a snapshot's account: ``evm:<chain>`` on chain, else the venue kind."""
    v = snap.account.venue.value
    return f"evm:{snap.account.chain}" if v == "evm" else v


def snapshot_gaps(snap: AccountSnapshot) -> tuple[DataGap, ...]:
    """What is missing from one snapshot that was read (``ok``) but only in part: every blind-spot
    finding it carries (a dYdX node that did not list authenticators, a CEX key that could not be
    inspected, ...) is a gap. A snapshot that was not read at all (``ok=False``) is reported through
    the blind account itself, not here."""
    if not snap.ok:
        return ()
    base = account_venue(snap)
    return tuple(
        DataGap(f.venue if f.venue and f.venue != "evm" else base, snap.account.id, f.message, f.code)
        for f in snap.findings if f.code in BLIND_SPOT_CODES
    )


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything one sweep saw: per-account snapshots plus oracle prices and global findings."""

    taken_at: datetime
    snapshots: tuple[AccountSnapshot, ...]
    prices: tuple[PriceQuote, ...] = ()
    findings: tuple[Finding, ...] = ()

    def for_client(self, client_id: str) -> tuple[AccountSnapshot, ...]:
        return tuple(s for s in self.snapshots if s.account.client_id == client_id)
