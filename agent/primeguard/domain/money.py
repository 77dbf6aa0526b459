"""Exact money: integer base units on chain, ``Decimal`` everywhere else.

Every user- or file-supplied amount and address goes through :func:`parse_quantity`,
:func:`parse_base_units` or :func:`parse_address`, which reject rather than guess.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal

from eth_utils.address import is_checksum_address, is_hex_address, to_checksum_address

from primeguard.domain.errors import InputError

# 78 digits hold any uint256; decision maths never rounds implicitly below that.
MONEY_CONTEXT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation])
decimal.setcontext(MONEY_CONTEXT)
# Threads started later (scheduler workers, to_thread) copy DefaultContext.
decimal.DefaultContext.prec = MONEY_CONTEXT.prec

UINT256_MAX = 2**256 - 1
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True, slots=True)
class TokenAmount:
    """An on-chain amount: integer base units plus the token's decimals."""

    base_units: int
    decimals: int

    def __post_init__(self) -> None:
        if isinstance(self.base_units, bool) or not isinstance(self.base_units, int):
            raise InputError(f"base units must be an int, got {type(self.base_units).__name__}")
        if not 0 <= self.decimals <= 77:
            raise InputError(f"decimals out of range: {self.decimals}")

    @property
    def value(self) -> Decimal:
        """The amount in whole tokens, exact."""
        return Decimal(self.base_units).scaleb(-self.decimals)


def to_decimal(raw: object, *, what: str = "amount") -> Decimal:
    """Convert a venue's number (usually a string) to a finite Decimal, never via float."""
    if isinstance(raw, bool) or raw is None:
        raise InputError(f"{what}: expected a number, got {raw!r}")
    if isinstance(raw, float):
        # Venue JSON may carry floats; their repr is the shortest round-trip string.
        raw = repr(raw)
    try:
        value = Decimal(str(raw).strip()) if not isinstance(raw, Decimal) else raw
    except (decimal.InvalidOperation, ValueError) as exc:
        raise InputError(f"{what}: not a number: {str(raw)[:40]!r}") from exc
    if not value.is_finite():
        raise InputError(f"{what}: must be finite, got {value}")
    return value


def parse_quantity(raw: object, *, what: str = "amount", allow_zero: bool = False,
                   allow_negative: bool = False, max_decimals: int | None = None) -> Decimal:
    """Parse a human amount ("12.5") strictly: finite, sign-checked, bounded precision."""
    value = to_decimal(raw, what=what)
    if value < 0 and not allow_negative:
        raise InputError(f"{what}: must not be negative, got {value}")
    if value == 0 and not allow_zero:
        raise InputError(f"{what}: must be greater than zero")
    exponent = value.as_tuple().exponent
    if max_decimals is not None and isinstance(exponent, int) and -exponent > max_decimals:
        normalized = value.normalize()
        norm_exp = normalized.as_tuple().exponent
        if isinstance(norm_exp, int) and -norm_exp > max_decimals:
            raise InputError(f"{what}: {value} has more than {max_decimals} decimal places")
    if abs(value) >= Decimal(10) ** 60:
        raise InputError(f"{what}: {value} is out of range")
    return value


def parse_base_units(raw: object, decimals: int, *, what: str = "amount", allow_zero: bool = False) -> int:
    """Parse a human amount into integer base units for a token with ``decimals``."""
    value = parse_quantity(raw, what=what, allow_zero=allow_zero, max_decimals=decimals)
    units = value.scaleb(decimals)
    if units != units.to_integral_value():
        raise InputError(f"{what}: {value} has more than {decimals} decimal places")
    result = int(units)
    if result > UINT256_MAX:
        raise InputError(f"{what}: {value} overflows uint256")
    return result


def parse_address(raw: object, *, what: str = "address", allow_zero: bool = False) -> str:
    """Validate an EVM address: 20 bytes hex, EIP-55 checksum if mixed case. Returns checksummed."""
    if not isinstance(raw, str):
        raise InputError(f"{what}: expected a 0x-prefixed hex string, got {type(raw).__name__}")
    text = raw.strip()
    if not text.startswith("0x") or not is_hex_address(text):
        raise InputError(f"{what}: {text[:50]!r} is not a 20-byte 0x-prefixed hex address")
    body = text[2:]
    mixed = body != body.lower() and body != body.upper()
    if mixed and not is_checksum_address(text):
        raise InputError(f"{what}: {text} fails its EIP-55 checksum (did you mean {to_checksum_address(text)}?)")
    checksummed = str(to_checksum_address(text))
    if not allow_zero and checksummed == ZERO_ADDRESS:
        raise InputError(f"{what}: the zero address is not a valid destination")
    return checksummed


def decimal_str(value: Decimal) -> str:
    """Canonical text for a Decimal in reports: no exponent, no trailing zeros ("430000", "0.5")."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text
