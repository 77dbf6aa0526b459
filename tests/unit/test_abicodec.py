"""The batched reads' ABI codec (bytes sliced by hand, no eth-abi per value) gives eth-abi's bytes
and values, rejects what eth-abi rejects, and leaves every other shape to eth-abi; the process-wide
address checksum is EIP-55."""

from __future__ import annotations

import random
from typing import Any

import pytest
from eth_abi import decode, encode
from eth_utils import to_checksum_address

from primeguard.sandbox.chain import derived_account
from primeguard.venues.evm.abicodec import AbiDecodeError, decode_result, encode_args
from primeguard.venues.evm.grants import checksum_address

ADDRS = [derived_account(i)[0] for i in range(12)]


def value(t: str, rnd: random.Random) -> Any:
    if t.endswith("[]"):
        return [value(t[:-2], rnd) for _ in range(rnd.choice((0, 1, 3, 7)))]
    if t == "address":
        return rnd.choice(ADDRS)
    if t == "uint256":
        return rnd.choice((0, 1, 2**256 - 1, rnd.getrandbits(256)))
    if t == "bool":
        return rnd.random() < 0.5
    return rnd.randbytes(rnd.choice((0, 1, 31, 32, 33, 68, 100)))


ARG_SHAPES = [["address[]", "bytes[]"], ["address[]", "address[]", "address[]"], ["address", "uint256"], [],
              ["address[]"], ["bytes", "bool", "uint256[]"], ["uint256", "bytes[]", "address"]]
RESULT_SHAPES = [["bool[]", "bytes[]"], ["uint256[]", "bool[]"], ["uint256[]"], ["uint256"], ["bool"]]


def test_encoding_is_eth_abis_byte_for_byte() -> None:
    rnd = random.Random(7)
    for _ in range(200):
        types = rnd.choice(ARG_SHAPES)
        args = [value(t, rnd) for t in types]
        assert encode_args(types, args) == encode(types, args), (types, args)
    # addresses as their 20 bytes (how the reader passes them) encode the same
    assert encode_args(["address[]"], [[bytes.fromhex(a[2:]) for a in ADDRS]]) == encode(["address[]"], [ADDRS])


def test_other_shapes_and_odd_values_are_left_to_eth_abi() -> None:
    assert encode_args(["string"], ["x"]) is None and encode_args(["(address,uint256)[]"], [[]]) is None
    assert encode_args(["uint256"], [-1]) is None and encode_args(["uint256"], [2**256]) is None
    assert encode_args(["address"], ["0x1234"]) is None and encode_args(["bool"], [1]) is None
    assert decode_result(["string"], encode(["string"], ["x"])) is None
    assert decode_result(["address[]"], encode(["address[]"], [ADDRS])) is None


def test_decoding_gives_eth_abis_values() -> None:
    rnd = random.Random(11)
    for _ in range(200):
        types = rnd.choice(RESULT_SHAPES)
        vals = [value(t, rnd) for t in types]
        raw = encode(types, vals)
        assert decode_result(types, raw) == decode(types, raw) == tuple(tuple(v) if isinstance(v, list) else v
                                                                       for v in vals)


def bad_answers() -> list[tuple[list[str], bytes]]:
    ok = encode(["bool[]", "bytes[]"], [[True, False], [b"\x01" * 33, b""]])
    word = 32
    cases = [
        (["bool[]", "bytes[]"], ok[:-1]),  # truncated
        (["bool[]", "bytes[]"], ok[:word]),  # shorter than its head
        (["bool[]", "bytes[]"], (0).to_bytes(word, "big") + ok[word:]),  # pointer into the head
        (["bool[]", "bytes[]"], (len(ok)).to_bytes(word, "big") + ok[word:]),  # pointer past the end
        (["uint256[]"], encode(["uint256"], [word]) + encode(["uint256"], [2**64])),  # huge length
        (["bool"], encode(["uint256"], [2])),  # not a bool
        (["uint256[]", "bool[]"], encode(["uint256[]", "uint256[]"], [[1], [3]])),  # bool 3
    ]
    padded = bytearray(encode(["bool[]", "bytes[]"], [[True], [b"\x01"]]))
    padded[-1] = 1  # non-zero padding after the one byte
    cases.append((["bool[]", "bytes[]"], bytes(padded)))
    return cases


@pytest.mark.parametrize(("types", "raw"), bad_answers())
def test_malformed_answers_are_rejected_as_eth_abi_rejects_them(types: list[str], raw: bytes) -> None:
    with pytest.raises(AbiDecodeError):
        decode_result(types, raw)
    with pytest.raises(Exception):  # noqa: B017 - eth-abi's own error classes vary by case
        decode(types, raw)


def test_checksum_is_eip55_and_rejects_non_addresses() -> None:
    rnd = random.Random(3)
    for _ in range(300):
        a = "0x" + rnd.randbytes(20).hex()
        assert checksum_address(a) == to_checksum_address(a) == checksum_address(a.upper().replace("0X", "0x"))
    for bad in ("0x1234", "0x" + "g" * 40, "0x" + "ab" * 21, "0x" + " a" * 20):
        with pytest.raises(ValueError):
            checksum_address(bad)
