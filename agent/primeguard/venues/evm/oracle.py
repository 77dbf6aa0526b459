"""Chainlink-style round checks. Pure: a raw round in, a price or typed findings out.

A round is only a price when every check passes; otherwise the caller gets findings and *no*
number, so a stale or broken feed can never be mistaken for a valid one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import PriceQuote, PriceSourceKind


@dataclass(frozen=True, slots=True)
class RawRound:
    """latestRoundData as read from chain, plus the feed's decimals. ``ok`` False: the call failed."""

    feed: str
    chain: str
    ok: bool
    round_id: int = 0
    answer: int = 0
    started_at: int = 0
    updated_at: int = 0
    answered_in_round: int = 0
    decimals: int = 0


@dataclass(frozen=True, slots=True)
class FeedSpec:
    asset: str
    chain: str
    address: str
    decimals: int
    heartbeat_s: int


def check_round(raw: RawRound, spec: FeedSpec, now: datetime) -> tuple[PriceQuote | None, tuple[Finding, ...]]:
    """Validate one round against its feed spec. Returns (quote, findings); quote is None on failure."""
    subject = f"{spec.asset}/USD@{spec.chain}:{spec.address}"
    details = {"feed": spec.address, "round_id": raw.round_id, "updated_at": raw.updated_at}

    def bad(code: FindingCode, message: str) -> tuple[None, tuple[Finding, ...]]:
        return None, (
            Finding(code, Severity.HIGH, subject, message, venue="evm", chain=spec.chain, details=details),
        )

    if not raw.ok:
        return bad(FindingCode.ORACLE_UNREADABLE, f"{spec.asset}/USD feed on {spec.chain} could not be read")
    if raw.decimals != spec.decimals:
        return bad(
            FindingCode.ORACLE_BAD_DECIMALS,
            f"{spec.asset}/USD feed reports {raw.decimals} decimals, expected {spec.decimals}",
        )
    if raw.updated_at == 0 or raw.answered_in_round < raw.round_id:
        return bad(
            FindingCode.ORACLE_INCOMPLETE_ROUND,
            f"{spec.asset}/USD round {raw.round_id} is incomplete (answeredInRound {raw.answered_in_round}, "
            f"updatedAt {raw.updated_at})",
        )
    if raw.answer <= 0:
        return bad(FindingCode.ORACLE_NON_POSITIVE, f"{spec.asset}/USD answer {raw.answer} is not positive")
    updated = datetime.fromtimestamp(raw.updated_at, tz=UTC)
    age = (now - updated).total_seconds()
    if age > spec.heartbeat_s:
        return bad(
            FindingCode.ORACLE_STALE,
            f"{spec.asset}/USD last updated {int(age)} s ago, heartbeat is {spec.heartbeat_s} s",
        )
    if age < -300:
        # A round from the future means the node clock or the feed is wrong: do not trust it.
        return bad(FindingCode.ORACLE_INCOMPLETE_ROUND, f"{spec.asset}/USD updatedAt is {int(-age)} s in the future")
    price = Decimal(raw.answer).scaleb(-raw.decimals)
    quote = PriceQuote(
        asset=spec.asset,
        price=price,
        source=PriceSourceKind.ORACLE,
        source_id=f"{spec.chain}:{spec.address}",
        updated_at=updated,
        observed_at=now,
        round_id=raw.round_id,
    )
    return quote, ()
