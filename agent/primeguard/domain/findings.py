"""Findings: facts worth a human's attention, produced by adapters, risk and policy.

A finding never replaces a number silently: a stale oracle yields a finding *and* no price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Any

FINDING_SCHEMA = "primeguard.finding/1"
"""Name of the one JSON form of a :class:`Finding` (docs/schemas/finding.json)."""


class Severity(IntEnum):
    INFO = 10
    WARNING = 20
    HIGH = 30
    CRITICAL = 40


class FindingCode(StrEnum):
    """Documented finding codes. Each value is stable: alerts and policies key on it."""

    # data quality / blind spots
    VENUE_UNREACHABLE = "venue_unreachable"  # timeout, 5xx, connection refused
    VENUE_RATE_LIMITED = "venue_rate_limited"
    VENUE_AUTH_FAILED = "venue_auth_failed"  # our monitoring key was refused
    VENUE_BAD_RESPONSE = "venue_bad_response"
    DATA_STALE = "data_stale"  # a venue's data is older than its budget
    BLIND_SPOT = "blind_spot"  # a client cannot be valued: decisions about it fail closed
    CHAIN_ID_MISMATCH = "chain_id_mismatch"  # the node serves another chain than the config names
    WITHDRAWAL_STATUS_UNKNOWN = "withdrawal_status_unknown"  # a venue reports a withdrawal status we cannot read
    # oracles
    ORACLE_STALE = "oracle_stale"  # updatedAt older than the feed's heartbeat
    ORACLE_NON_POSITIVE = "oracle_non_positive"  # answer <= 0
    ORACLE_INCOMPLETE_ROUND = "oracle_incomplete_round"  # answeredInRound < roundId or updatedAt == 0
    ORACLE_BAD_DECIMALS = "oracle_bad_decimals"
    ORACLE_UNREADABLE = "oracle_unreadable"  # call reverted / not a contract
    PRICE_DEVIATION = "price_deviation"  # sources disagree beyond the threshold
    PRICE_MISSING = "price_missing"
    # capabilities
    KEY_CAN_WITHDRAW = "key_can_withdraw"
    KEY_UNIVERSAL_TRANSFER = "key_universal_transfer"
    KEY_NOT_IP_BOUND = "key_not_ip_bound"
    KEY_EXPIRED = "key_expired"
    MASTER_KEY_IN_USE = "master_key_in_use"
    WHITELIST_OFF = "whitelist_off"
    WHITELIST_UNVERIFIABLE = "whitelist_unverifiable"
    DYDX_KEY_CAN_MOVE_FUNDS = "dydx_key_can_move_funds"
    DYDX_KEY_UNSIGNED_PATH = "dydx_key_unsigned_path"  # anyone may submit through this authenticator
    DYDX_KEY_CAN_GRANT = "dydx_key_can_grant"
    DYDX_V3_FAST_WITHDRAW = "dydx_v3_fast_withdraw"
    AUTHENTICATOR_UNKNOWN = "authenticator_unknown"
    UNLIMITED_APPROVAL = "unlimited_approval"
    APPROVAL_EXCEEDS_BALANCE = "approval_exceeds_balance"
    UNKNOWN_SPENDER = "unknown_spender"
    SAFE_MODULE_ENABLED = "safe_module_enabled"
    SAFE_GUARD_SET = "safe_guard_set"
    SAFE_LOW_THRESHOLD = "safe_low_threshold"
    WALLET_KIND_MISMATCH = "wallet_kind_mismatch"  # config says Safe, chain says EOA (or vice versa)
    EOA_DELEGATED_CODE = "eoa_delegated_code"  # EIP-7702 delegation (critical unless a known delegate)
    NFT_OPERATOR = "nft_operator"  # ERC-721 / ERC-1155 setApprovalForAll to an operator we do not know
    # DeFi positions
    DEFI_POSITION_UNREADABLE = "defi_position_unreadable"  # a protocol view failed: position unpriced
    HEALTH_FACTOR_LOW = "health_factor_low"  # Aave health factor near 1: liquidation is close
    DEFI_HAIRCUT_CLASS_UNKNOWN = "defi_haircut_class_unknown"  # class not in the policy: not counted as collateral
    # risk
    LTV_WARNING = "ltv_warning"
    LTV_MARGIN_CALL = "ltv_margin_call"
    LTV_HALT = "ltv_halt"
    LTV_LIQUIDATE = "ltv_liquidate"
    LEVERAGE_EXCEEDED = "leverage_exceeded"
    NET_DELTA_EXCEEDED = "net_delta_exceeded"
    DRAWDOWN_EXCEEDED = "drawdown_exceeded"
    CONCENTRATION_EXCEEDED = "concentration_exceeded"
    LOW_LIQUIDITY_EXPOSURE = "low_liquidity_exposure"
    NEAR_LIQUIDATION = "near_liquidation"
    FINANCING_CAP_EXCEEDED = "financing_cap_exceeded"  # loan / own collateral above the tier's cap
    STRESS_SHORTFALL_EXCEEDED = "stress_shortfall_exceeded"  # worst scenario's shortfall above the tier's limit
    VENUE_CONCENTRATION = "venue_concentration"  # a client's or the book's collateral share on one venue
    HAIRCUT_HISTORY_SHORT = "haircut_history_short"  # too little price history: volatility haircut at its floor
    # policy / config
    POLICY_VIOLATION = "policy_violation"
    # levers
    LEVER_LACKS_POWER = "lever_lacks_power"  # a lever's credential was refused (or is missing): it could not act
    # destinations and screening
    SANCTIONED_ADDRESS = "sanctioned_address"  # a destination or spender is on a sanctions list
    SCREENING_UNAVAILABLE = "screening_unavailable"  # a screening source could not answer
    VAULT_DESTINATION_UNKNOWN = "vault_destination_unknown"  # listed on a vault, absent from the policy
    VENUE_WHITELIST_UNKNOWN = "venue_whitelist_unknown"  # in a venue's address book, absent from the policy
    DESTINATION_MISSING = "destination_missing"  # in the policy, missing where it should be
    ALLOWLIST_UNREADABLE = "allowlist_unreadable"  # a vault's allowlist or a venue's address book: drift unknown


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation worth attention. ``subject`` is the account, credential or client id."""

    code: FindingCode
    severity: Severity
    subject: str
    message: str
    venue: str = ""
    chain: str | None = None
    client_id: str | None = None
    rule_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def key(self) -> str:
        """Stable identity for dedupe: the same problem on the same subject."""
        return f"{self.code}:{self.venue}:{self.chain or ''}:{self.subject}"

    @property
    def is_blind_spot(self) -> bool:
        return self.code in BLIND_SPOT_CODES

    def to_json(self) -> dict[str, Any]:
        """The one JSON form of a finding (``primeguard.finding/1``), used by every ``--json`` output,
        the demo and the policy explanations. Pure; only JSON types: severity is its lower-case name,
        Decimals in ``details`` are exact strings (never floats), other unknown values their ``str``."""
        return {"code": self.code.value, "severity": self.severity.name.lower(), "subject": self.subject,
                "venue": self.venue, "chain": self.chain, "client": self.client_id, "rule": self.rule_id,
                "message": self.message, "details": {str(k): _plain(v) for k, v in self.details.items()}}


def _plain(value: Any) -> Any:
    """``value`` as JSON data: Decimals as exact text, datetimes ISO 8601, containers recursively."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value).lower().replace("infinity", "inf")
        return "0" if value == 0 else format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, StrEnum):
        return value.value
    return str(value)


BLIND_SPOT_CODES: frozenset[FindingCode] = frozenset(
    {
        FindingCode.VENUE_UNREACHABLE,
        FindingCode.VENUE_RATE_LIMITED,
        FindingCode.VENUE_AUTH_FAILED,
        FindingCode.VENUE_BAD_RESPONSE,
        FindingCode.DATA_STALE,
        FindingCode.BLIND_SPOT,
        FindingCode.CHAIN_ID_MISMATCH,
        FindingCode.WITHDRAWAL_STATUS_UNKNOWN,
        FindingCode.ORACLE_STALE,
        FindingCode.ORACLE_NON_POSITIVE,
        FindingCode.ORACLE_INCOMPLETE_ROUND,
        FindingCode.ORACLE_BAD_DECIMALS,
        FindingCode.ORACLE_UNREADABLE,
        FindingCode.PRICE_MISSING,
        FindingCode.SCREENING_UNAVAILABLE,
        FindingCode.ALLOWLIST_UNREADABLE,
    }
)

# Findings raised and closed by another process than the sweep (the withdrawal follower): a sweep,
# which closes every open finding it did not see again, leaves these open.
NOT_SWEPT_CODES: frozenset[FindingCode] = frozenset({FindingCode.WITHDRAWAL_STATUS_UNKNOWN})

JOB_VENUES: frozenset[str] = frozenset({"allowlist", "screening"})
"""The ``venue`` of findings raised outside the sweep: destination reconciliation (``allowlist``)
and screening (``screening``). The job that raises them also closes them (when its source answers
again); a sweep carries them to the alerts and never closes them itself."""
