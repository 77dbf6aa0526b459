"""What the engine evaluates: plain frozen values, built by custody, the daemon or a test case.

Unknown is spelled ``None`` and always fails closed: a withdrawal with no fresh price, an unknown
LTV or an unknown venue-whitelist state is denied, never waved through.

On-chain extras (ERC-20 approvals, Safe owners/threshold/modules) are *not* separate types: they
arrive as :class:`~primeguard.domain.model.Credential` values, exactly as the EVM capability scan
(``venues/evm/scan.py``) produces them, so one rule language covers API keys, dYdX authenticators,
approvals and Safe modules:

- ``kind="erc20_approval"``, capability ``spend_allowance``; ``details``: ``spender``,
  ``unlimited`` (bool), ``token``, ``allowance``.
- ``kind="safe_owners"``; ``details``: ``threshold`` (int), ``owners`` (list), ``guard``.
- ``kind="safe_module"``, capabilities ``module_execute``/``delegatecall``; ``details``: ``module``.
- ``kind="dydx_v3_stark"``: a legacy dYdX v3 STARK key (fast-withdrawal capable by design).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from primeguard.domain.model import Account, Credential, VenueKind


@dataclass(frozen=True, slots=True)
class WithdrawalRequest:
    """A request to move ``amount`` of ``asset`` from one of the client's accounts to ``destination``."""

    id: str
    client_id: str
    account_id: str
    venue: VenueKind
    chain: str  # chain / network name as the policy spells it ("ethereum", "arbitrum", "tron")
    asset: str
    amount: Decimal  # whole units
    destination: str
    requested_by: str
    requested_at: datetime
    requested_by_id: int | None = None  # the requester's store user id: four eyes compares ids when known


@dataclass(frozen=True, slots=True)
class ApprovalGiven:
    """One approval recorded on a request so far."""

    approver: str
    role: str  # viewer | treasury | compliance | admin
    approver_id: int | None = None  # store user id; one user counts once, however its name is spelled


@dataclass(frozen=True, slots=True)
class WithdrawalContext:
    """Everything the engine needs besides the request. ``None`` means unknown: fail closed.

    ``recent`` holds the client's earlier withdrawals as ``(time, usd_amount)``; the caller passes
    at least :attr:`PolicySet.max_velocity_window_s` seconds of history. ``ltv`` / ``post_ltv`` are
    the client's LTV now and after this withdrawal (0 for a client without a loan).
    """

    usd_price: Decimal | None
    price_age_s: Decimal | int | None
    recent: Sequence[tuple[datetime, Decimal]] = ()
    ltv: Decimal | None = None
    post_ltv: Decimal | None = None
    ladder_state: str | None = None
    client_blind: bool = False
    venue_whitelisted: bool | None = None
    approvals: Sequence[ApprovalGiven] = ()
    blind_reasons: Sequence[str] = ()  # what is missing when ``client_blind`` (for the explanation)
    # After the withdrawal: loan / the client's own collateral, and the worst stress scenario's
    # shortfall in USD (checked by the financing and stress guards when the policy has them).
    post_loan_to_collateral: Decimal | None = None
    post_stress_shortfall: Decimal | None = None


@dataclass(frozen=True, slots=True)
class DrawRequest:
    """A request to draw ``amount`` more of the client's loan (in the loan's asset)."""

    id: str
    client_id: str
    amount: Decimal
    requested_by: str
    requested_at: datetime
    requested_by_id: int | None = None


@dataclass(frozen=True, slots=True)
class DrawContext:
    """The client now and after the draw (from ``risk.limits.after_draw``). ``None`` = unknown: denied."""

    ltv: Decimal | None = None
    post_ltv: Decimal | None = None
    post_loan_to_collateral: Decimal | None = None
    post_stress_shortfall: Decimal | None = None
    ladder_state: str | None = None
    client_blind: bool = False
    blind_reasons: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class CapabilityInput:
    """Credentials seen in one sweep plus the accounts they act on (for client and venue scope)."""

    credentials: Sequence[Credential]
    accounts: Mapping[str, Account] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class RiskSnapshot:
    """One client's current risk numbers (from ``risk``), checked statelessly against its tier.

    The escalation ladder with hysteresis and cooldown lives in ``risk``; this only says which
    band and which limits the numbers fall in now. ``None`` = could not be computed.
    """

    client_id: str
    ltv: Decimal | None
    leverage: Decimal | None = None
    net_delta_ratio: Decimal | None = None
    drawdown: Decimal | None = None
    concentration: Decimal | None = None
    blind: bool = False
    loan_to_collateral: Decimal | None = None  # loan / own collateral (net equity); 0 without a loan
    gross_leverage: Decimal | None = None  # gross exposure / own collateral
    stress_shortfall: Decimal | None = None  # worst scenario's loan − stressed haircut collateral (USD)
