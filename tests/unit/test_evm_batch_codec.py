"""The Multicall3 codec of the multicall3 read mode: aggregate3's call data is byte for byte the
standard ABI encoding, its answer is decoded exactly as eth-abi decodes it, a malformed answer is
refused whole, and a failed or empty sub-call is a missing value, never a zero."""

from __future__ import annotations

import pytest
from eth_abi import decode as abi_decode  # type: ignore[attr-defined]
from eth_abi import encode as abi_encode  # type: ignore[attr-defined]

from primeguard.sandbox.chain import derived_account
from primeguard.venues.evm import batch

TUPLES = "(address,bool,bytes)[]"
RESULTS = "(bool,bytes)[]"


def test_aggregate3_call_data_equals_the_abi_encoding() -> None:
    targets = [derived_account(i)[0] for i in range(5)]
    datas = [b"", b"\x01", b"x" * 32, b"y" * 33, b"z" * 68]
    calls = list(zip(targets, datas, strict=True))
    expected = batch.AGGREGATE3 + abi_encode([TUPLES], [[(t, True, d) for t, d in calls]])
    assert batch.encode_aggregate3(calls) == expected
    assert batch.encode_aggregate3([]) == batch.AGGREGATE3 + abi_encode([TUPLES], [[]])
    assert batch.AGGREGATE3.hex() == "82ad56cb" and batch.GET_ETH_BALANCE.hex() == "4d2301cc"


def test_aggregate3_answer_decodes_as_eth_abi_does() -> None:
    results = [(True, (5).to_bytes(32, "big")), (False, b"\x08\xc3\x79\xa0"), (True, b""), (True, b"q" * 70)]
    raw = abi_encode([RESULTS], [results])
    assert batch.decode_aggregate3(raw, len(results)) == list(abi_decode([RESULTS], raw)[0]) == results


@pytest.mark.parametrize("damage", ["short", "count", "flag", "length"])
def test_a_malformed_answer_is_refused_whole(damage: str) -> None:
    raw = bytearray(abi_encode([RESULTS], [[(True, (5).to_bytes(32, "big")), (True, b"ab")]]))
    n = 2
    if damage == "short":
        raw = raw[:-40]
    elif damage == "count":
        n = 3
    elif damage == "flag":
        first = 64 + int.from_bytes(raw[64:96], "big")
        raw[first + 31] = 2
    else:  # the second result's length points past the end
        second = 64 + int.from_bytes(raw[96:128], "big")
        start = second + int.from_bytes(raw[second + 32:second + 64], "big")
        raw[start:start + 32] = (10**6).to_bytes(32, "big")
    with pytest.raises(ValueError, match="aggregate3"):
        batch.decode_aggregate3(bytes(raw), n)


def test_failed_or_empty_answers_are_missing_values() -> None:
    assert batch.uint_answer((True, (7).to_bytes(32, "big"))) == 7
    assert batch.uint_answer((True, (0).to_bytes(32, "big"))) == 0  # a real zero stays a zero
    assert batch.uint_answer((False, (7).to_bytes(32, "big"))) is None
    assert batch.uint_answer((True, b"")) is None  # an address without code
    assert batch.uint_answer((True, b"\x01" * 31)) is None


def test_rounds_are_range_checked_like_batch_reader() -> None:
    def words(*vals: int) -> bytes:
        return b"".join(v.to_bytes(32, "big", signed=True) for v in vals)

    dec = (True, words(8))
    good = batch.decode_round("c", "f", dec, (True, words(3, -5, 10, 11, 3)))
    assert (good.ok, good.round_id, good.answer, good.updated_at, good.decimals) == (True, 3, -5, 11, 8)
    assert not batch.decode_round("c", "f", dec, (True, words(2**80, 1, 1, 1, 1))).ok
    assert not batch.decode_round("c", "f", dec, (True, words(1, 1, 1, 1, 2**80))).ok
    assert not batch.decode_round("c", "f", (True, words(256)), (True, words(1, 1, 1, 1, 1))).ok
    assert not batch.decode_round("c", "f", dec, (True, words(1, 1, 1, 1))).ok  # short
    assert not batch.decode_round("c", "f", (False, words(8)), (True, words(1, 1, 1, 1, 1))).ok
    assert batch.decode_round("c", "f", dec, (False, b"")) == batch.RawRound("f", "c", False)
