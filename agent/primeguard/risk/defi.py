"""Value collateral held inside DeFi positions (pure: no I/O, exact ``Decimal``).

A position is a list of legs read from the protocol's own views (``venues/evm/defi.py``): each leg
is an amount of a priced asset, supplied (collateral) or borrowed (a liability in the client's book).

- **Collateral** = Σ supplied legs × price × (1 − haircut of the position's class);
- **Gross** = Σ supplied legs × price (no haircut);
- **Liabilities** = Σ borrowed legs × price, in full (never haircut);
- a position whose protocol read failed, or a leg without a price, leaves that position unpriced
  and the client **blind** (fail closed: decisions about it deny), with a finding saying which;
- an Aave health factor below ``warn_health`` is a ``HEALTH_FACTOR_LOW`` finding (critical below 1:
  the position can be liquidated now).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from primeguard.domain.findings import Finding, FindingCode, Severity

ZERO = Decimal(0)
ONE = Decimal(1)


@dataclass(frozen=True)
class DefiLeg:
    """``amount`` whole units of ``asset``; ``borrowed`` legs are owed, not held."""

    asset: str
    amount: Decimal
    borrowed: bool = False


@dataclass(frozen=True)
class DefiPosition:
    """One protocol position of one client, as read. ``readable`` False: the read failed (``error``)."""

    id: str
    client_id: str
    protocol: str
    haircut_class: str
    legs: tuple[DefiLeg, ...] = ()
    health_factor: Decimal | None = None
    readable: bool = True
    error: str = ""


@dataclass
class DefiValue:
    """One client's DeFi positions, valued."""

    client_id: str
    collateral: Decimal = ZERO
    gross: Decimal = ZERO
    liabilities: Decimal = ZERO
    blind: bool = False
    unpriced: list[str] = field(default_factory=list)  # position ids left out
    findings: list[Finding] = field(default_factory=list)


def value_positions(positions: Iterable[DefiPosition], prices: Mapping[str, Decimal],
                    haircuts: Mapping[str, Decimal],
                    warn_health: Decimal = Decimal("1.1")) -> dict[str, DefiValue]:
    """Collateral, gross value and liabilities per client (see the module docstring).

    ``prices`` maps asset → USD price (fresh, already checked by the oracle layer; an asset absent
    here is unpriced). ``haircuts`` maps a haircut class (the policy's ``defi_classes``) → haircut
    in [0, 1]. A class not listed fails closed: the position's supplied legs count for nothing
    (its borrowed legs still count in full), the client is blind and a
    ``DEFI_HAIRCUT_CLASS_UNKNOWN`` finding says why. A position is counted whole or not at all: if
    any of its legs cannot be priced, none of it counts and the client is blind."""
    out: dict[str, DefiValue] = {}
    for pos in positions:
        val = out.setdefault(pos.client_id, DefiValue(pos.client_id))
        details = MappingProxyType({"position": pos.id, "protocol": pos.protocol, "error": pos.error})
        if not pos.readable:
            val.blind = True
            val.unpriced.append(pos.id)
            val.findings.append(Finding(FindingCode.DEFI_POSITION_UNREADABLE, Severity.CRITICAL, pos.id,
                                        f"{pos.protocol} position {pos.id} could not be read ({pos.error}): it is "
                                        f"unpriced and client {pos.client_id} is blind", client_id=pos.client_id,
                                        details=details))
            continue
        missing = sorted({leg.asset for leg in pos.legs if leg.asset not in prices})
        if missing:
            val.blind = True
            val.unpriced.append(pos.id)
            val.findings.append(Finding(FindingCode.PRICE_MISSING, Severity.HIGH, pos.id,
                                        f"{pos.protocol} position {pos.id} holds {', '.join(missing)} without a "
                                        f"price: it is unpriced and client {pos.client_id} is blind",
                                        client_id=pos.client_id, details=details))
            continue
        haircut = haircuts.get(pos.haircut_class)
        if haircut is None:
            val.blind = True
            val.unpriced.append(pos.id)
            val.findings.append(Finding(FindingCode.DEFI_HAIRCUT_CLASS_UNKNOWN, Severity.HIGH, pos.id,
                                        f"{pos.protocol} position {pos.id} has haircut class {pos.haircut_class!r}, "
                                        f"which the policy does not list: not counted as collateral, client "
                                        f"{pos.client_id} is blind", client_id=pos.client_id,
                                        details={**details, "haircut_class": pos.haircut_class}))
            haircut = ONE  # supplied legs count for nothing; borrowed legs below still count in full
        for leg in pos.legs:
            value = leg.amount * prices[leg.asset]
            if leg.borrowed:
                val.liabilities += value
            else:
                val.gross += value
                val.collateral += value * (ONE - haircut)
        low = health_finding(pos, warn_health)
        if low is not None:
            val.findings.append(low)
    return out


def health_finding(pos: DefiPosition, warn_health: Decimal = Decimal("1.1")) -> Finding | None:
    """``HEALTH_FACTOR_LOW`` when the position's health factor is below ``warn_health`` (critical
    below 1: liquidatable now); ``None`` otherwise or when the protocol has no health factor."""
    hf = pos.health_factor
    if hf is None or hf >= warn_health:
        return None
    sev = Severity.CRITICAL if hf < ONE else Severity.HIGH
    details = MappingProxyType({"position": pos.id, "protocol": pos.protocol, "error": pos.error,
                                "health_factor": str(hf)})
    return Finding(FindingCode.HEALTH_FACTOR_LOW, sev, pos.id,
                   f"{pos.protocol} position {pos.id} has health factor {hf}"
                   f"{': liquidatable now' if hf < ONE else ', close to liquidation'}",
                   client_id=pos.client_id, details=details)
