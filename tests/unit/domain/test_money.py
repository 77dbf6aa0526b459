"""Exact money and strict parsing of amounts and addresses."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from primeguard.domain.errors import InputError
from primeguard.domain.money import (
    UINT256_MAX,
    TokenAmount,
    parse_address,
    parse_base_units,
    parse_quantity,
    to_decimal,
)

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"


def test_base_units_exact():
    assert parse_base_units("1234.567891", 6) == 1_234_567_891
    assert parse_base_units("2.000000000000000001", 18) == 2 * 10**18 + 1
    assert TokenAmount(2 * 10**18 + 1, 18).value == Decimal("2.000000000000000001")


@pytest.mark.parametrize(
    ("raw", "decimals", "match"),
    [
        ("-1", 6, "negative"),
        ("0", 6, "greater than zero"),
        ("NaN", 6, "finite"),
        ("Infinity", 6, "finite"),
        ("1.0000001", 6, "more than 6 decimal places"),
        ("1e80", 18, "out of range"),
        (str(UINT256_MAX), 18, "out of range|overflows"),
        ("abc", 6, "not a number"),
        (None, 6, "expected a number"),
        (True, 6, "expected a number"),
    ],
)
def test_bad_amounts_rejected(raw, decimals, match):
    with pytest.raises(InputError, match=match):
        parse_base_units(raw, decimals)


def test_trailing_zeros_beyond_decimals_are_fine():
    assert parse_base_units("1.500000000", 6) == 1_500_000


def test_float_is_converted_through_its_repr_not_binary():
    assert to_decimal(0.1) + to_decimal(0.2) == Decimal("0.3")


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("0xa0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "checksum"),
        ("0x1234", "20-byte"),
        ("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "20-byte"),
        ("0x0000000000000000000000000000000000000000", "zero address"),
        (12, "hex string"),
    ],
)
def test_bad_addresses_rejected(raw, match):
    with pytest.raises(InputError, match=match):
        parse_address(raw)


def test_address_checksum_suggestion_and_lowercase_accepted():
    assert parse_address(USDC.lower()) == USDC
    with pytest.raises(InputError, match=f"did you mean {USDC}"):
        parse_address(USDC[:-3] + "b48")


@given(st.integers(min_value=1, max_value=10**30), st.integers(min_value=0, max_value=30))
def test_roundtrip_base_units(units, decimals):
    text = str(TokenAmount(units, decimals).value)
    assert parse_base_units(text, decimals) == units


def test_quantity_allows_negative_only_when_asked():
    assert parse_quantity("-2.5", allow_negative=True) == Decimal("-2.5")
    with pytest.raises(InputError):
        parse_quantity("-2.5")
