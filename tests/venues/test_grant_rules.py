"""Pure rules of the grant scan: what counts as unlimited, tolerant token metadata, 7702 code."""

from __future__ import annotations

from eth_abi.abi import encode

from primeguard.venues.evm.grants import decode_symbol, decode_uint, delegate_of, is_unlimited


def test_storage_width_maximum_is_unlimited_even_below_supply() -> None:
    supply = 2**100  # larger than UNI's max: only the width rule can say "unlimited"
    assert is_unlimited(2**96 - 1, supply)  # UNI / COMP
    assert is_unlimited(2**160 - 1, None)  # Permit2's uint160
    assert not is_unlimited(2**96 - 2, supply)
    assert is_unlimited(2**255)
    assert is_unlimited(11, 10) and not is_unlimited(10, 10) and not is_unlimited(5, 0)


def test_symbols_string_or_bytes32_and_nonsense_rejected() -> None:
    assert decode_symbol(encode(["string"], ["UNI"])) == "UNI"
    assert decode_symbol(b"MKR".ljust(32, b"\0")) == "MKR"
    assert decode_symbol(None) is None and decode_symbol(b"\0" * 32) is None
    assert decode_uint(b"\x01") is None and decode_uint((300).to_bytes(32, "big"), 8) is None


def test_delegation_code_shape() -> None:
    d = bytes.fromhex("11" * 20)
    assert delegate_of(bytes.fromhex("ef0100") + d) == d
    assert delegate_of(bytes.fromhex("ef0101") + d) is None and delegate_of(b"\x60" * 23) is None
