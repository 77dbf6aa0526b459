"""Decisions: the value every policy evaluation returns. A denial is data, not an exception.

Each :class:`ReasonCode` is documented here and in docs/policy.md; the text is what an operator
reads when asking "why was this denied?".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    NEEDS_APPROVAL = "needs_approval"


class ReasonCode(StrEnum):
    """Why a decision came out as it did. Stable strings; documented one by one."""

    ALLOWED = "allowed"  # every applicable rule passed
    NOT_ALLOWLISTED = "not_allowlisted"  # destination absent from the allowlist for this client/venue/asset
    ALLOWLIST_EXPIRED = "allowlist_expired"  # the matching allowlist entry has expired
    ALLOWLIST_NOT_YET_ACTIVE = "allowlist_not_yet_active"  # entry still in its timelock
    VENUE_WHITELIST_MISSING = "venue_whitelist_missing"  # CEX whitelist lacks the address (or is off)
    AMOUNT_INVALID = "amount_invalid"  # <= 0, NaN, too many decimals, overflow
    ASSET_UNKNOWN = "asset_unknown"
    ADDRESS_INVALID = "address_invalid"  # bad checksum, zero address
    LIMIT_PER_TX = "limit_per_tx"  # above the per-transaction USD limit
    LIMIT_VELOCITY = "limit_velocity"  # window total would exceed the velocity limit
    LTV_IMPACT = "ltv_impact"  # the withdrawal would push LTV past the warning band
    LADDER_STATE = "ladder_state"  # client is in margin call / halt / liquidate: no withdrawals
    PRICE_UNAVAILABLE = "price_unavailable"  # no fresh price to value the amount: fail closed
    DATA_STALE = "data_stale"  # inputs older than allowed: fail closed
    BLIND_SPOT = "blind_spot"  # the client's collateral cannot be fully seen: fail closed
    CAPABILITY_FORBIDDEN = "capability_forbidden"  # a credential holds a capability policy forbids
    APPROVAL_REQUIRED = "approval_required"  # more approvals needed (N of M above a threshold)
    SELF_APPROVAL = "self_approval"  # requester may not approve their own request
    POLICY_MISSING = "policy_missing"  # no active approved policy: everything denied
    SHADOW = "shadow"  # a shadow rule would have denied; recorded, not enforced
    LIMIT_EXCEEDED = "limit_exceeded"  # a risk limit (leverage, delta, drawdown, concentration)
    FINANCING_CAP = "financing_cap"  # loan / own collateral would exceed the tier's max_loan_to_collateral
    STRESS_LIMIT = "stress_limit"  # the worst stress shortfall would exceed the tier's limit
    SANCTIONED = "sanctioned"  # a screening source lists the destination: always denied
    SCREENING_UNAVAILABLE = "screening_unavailable"  # a required screening source could not answer: fail closed


@dataclass(frozen=True, slots=True)
class Decision:
    """The result of evaluating a request or a state against the active policy.

    ``rule_ids`` are the rules that decided; ``shadow`` lists what shadow-mode rules would have done.
    ``policy_hash`` is the content hash of the policy version that decided.
    """

    outcome: Outcome
    reasons: tuple[ReasonCode, ...]
    rule_ids: tuple[str, ...]
    explanation: str
    policy_hash: str
    shadow: tuple[str, ...] = field(default=())
    approvals_required: int = 0

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW

    @classmethod
    def deny(cls, reason: ReasonCode, explanation: str, *, policy_hash: str = "",
             rule_ids: tuple[str, ...] = ()) -> Decision:
        return cls(Outcome.DENY, (reason,), rule_ids, explanation, policy_hash)
