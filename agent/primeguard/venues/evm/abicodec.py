"""ABI encoding and decoding of the few shapes our batched reads use, by slicing bytes.

eth-abi validates and normalizes value by value (an address is checksum-parsed, every word goes
through a stream object): for a 230-read batch that was ~10 ms to encode and ~2 ms to decode, more
than the node took to answer. These functions give byte for byte what eth-abi gives (encoding) and
the same values with the same strictness (decoding: pointers inside the data and past the head,
lengths inside the data, bools 0 or 1, zero padding), for these types only:

- arguments: ``address``, ``uint256``, ``bool``, ``bytes``, ``address[]``, ``uint256[]``, ``bytes[]``;
- results: ``uint256``, ``bool``, ``uint256[]``, ``bool[]``, ``bytes[]``.

Any other shape returns None and the caller uses eth-abi. Addresses must come as ``0x`` hex strings
(already validated when the call was bound) or their 20 bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_WORD = 32
_ZERO12 = bytes(12)
_FALSE = bytes(_WORD)
_TRUE = (1).to_bytes(_WORD, "big")
_MAX_UINT = 2**256
ENCODABLE = frozenset({"address", "uint256", "bool", "bytes", "address[]", "uint256[]", "bytes[]"})
DECODABLE = frozenset({"uint256", "bool", "uint256[]", "bool[]", "bytes[]"})


class AbiDecodeError(ValueError):
    """The answer does not decode as the expected types (a bad response, not a crash)."""


def _word(n: int) -> bytes:
    return n.to_bytes(_WORD, "big")


def _address(value: Any) -> bytes:
    raw = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)
    if len(raw) != 20:
        raise ValueError("an address is 20 bytes")
    return _ZERO12 + raw


def _uint(value: Any) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_UINT:
        raise ValueError("not a uint256")
    return _word(value)


def _bytes(value: bytes) -> bytes:
    pad = -len(value) % _WORD
    return _word(len(value)) + bytes(value) + bytes(pad)


def _static(abi_type: str, value: Any) -> bytes:
    if abi_type == "address":
        return _address(value)
    if abi_type == "bool":
        if not isinstance(value, bool):
            raise ValueError("not a bool")
        return _word(int(value))
    return _uint(value)


def _tail(abi_type: str, value: Any) -> bytes:
    """The encoding of a dynamic value (what its head offset points at)."""
    if abi_type == "bytes":
        return _bytes(value)
    if abi_type == "address[]":
        return _word(len(value)) + b"".join(_address(v) for v in value)
    if abi_type == "uint256[]":
        return _word(len(value)) + b"".join(_uint(v) for v in value)
    # bytes[]: count, then one offset per element (from the start of the offsets), then the elements.
    parts = [_word(len(v)) + v + bytes(-len(v) % _WORD) if isinstance(v, bytes) else _bytes(v) for v in value]
    offsets, at = [], _WORD * len(parts)
    for p in parts:
        offsets.append(_word(at))
        at += len(p)
    return _word(len(parts)) + b"".join(offsets) + b"".join(parts)


def encode_args(types: Sequence[str], args: Sequence[Any]) -> bytes | None:
    """The ABI encoding of ``args`` as the tuple ``types`` (what ``eth_abi.encode`` returns), or None
    when a type is not one of :data:`ENCODABLE` or a value is not of the plain shape this encoder
    takes (the caller then encodes with eth-abi, which says what is wrong)."""
    if len(types) != len(args) or not all(t in ENCODABLE for t in types):
        return None
    try:
        heads: list[bytes | None] = []
        tails: list[bytes] = []
        for t, v in zip(types, args, strict=True):
            if t in ("address", "uint256", "bool"):
                heads.append(_static(t, v))
            else:
                heads.append(None)
                tails.append(_tail(t, v))
    except (ValueError, TypeError, AttributeError):
        return None
    out: list[bytes] = []
    at, ti = _WORD * len(types), 0
    for h in heads:  # a dynamic value's head is the offset of its tail from the start
        if h is None:
            out.append(_word(at))
            at += len(tails[ti])
            ti += 1
        else:
            out.append(h)
    return b"".join(out) + b"".join(tails)


def _read_uint(data: bytes, at: int) -> int:
    if at < 0 or at + _WORD > len(data):
        raise AbiDecodeError(f"answer too short: a word at {at} of {len(data)} bytes")
    return int.from_bytes(data[at : at + _WORD], "big")


def _read_bool(data: bytes, at: int) -> bool:
    v = _read_uint(data, at)
    if v > 1:
        raise AbiDecodeError(f"not a bool at {at}")
    return v == 1


def _pointer(data: bytes, frame: int, head_at: int, head_end: int) -> int:
    """The absolute position a dynamic value's offset (at ``head_at``, relative to ``frame``) points
    to; it must lie past the head (``head_end``) and inside the data, as eth-abi checks."""
    at = frame + _read_uint(data, head_at)
    if at < head_end or at >= len(data):
        raise AbiDecodeError(f"invalid pointer at {head_at}")
    return at


def _read_array(data: bytes, at: int, elem: str) -> tuple[Any, ...]:
    n = _read_uint(data, at)
    body = at + _WORD
    if body + _WORD * n > len(data):
        raise AbiDecodeError(f"array of {n} at {at} runs past the answer")
    if elem == "uint256":
        return tuple(int.from_bytes(data[body + _WORD * i : body + _WORD * (i + 1)], "big") for i in range(n))
    if elem == "bool":
        out_b: list[bool] = []
        for i in range(n):
            word = data[body + _WORD * i : body + _WORD * (i + 1)]
            if word == _TRUE:
                out_b.append(True)
            elif word == _FALSE:
                out_b.append(False)
            else:
                raise AbiDecodeError(f"not a bool at {body + _WORD * i}")
        return tuple(out_b)
    # bytes[]: each head is an offset from the start of the heads to (length, bytes, zero padding).
    head_end, size, out = body + _WORD * n, len(data), []
    from_bytes = int.from_bytes
    for i in range(n):
        h = body + _WORD * i
        start = body + from_bytes(data[h : h + _WORD], "big")
        if start < head_end or start + _WORD > size:
            raise AbiDecodeError(f"invalid pointer at {h}")
        length = from_bytes(data[start : start + _WORD], "big")
        begin = start + _WORD
        end, padded_end = begin + length, begin + length + (-length % _WORD)
        if padded_end > size:
            raise AbiDecodeError(f"bytes of length {length} at {start} run past the answer")
        if data[end:padded_end].strip(b"\0"):
            raise AbiDecodeError(f"non-zero padding after the bytes at {start}")
        out.append(data[begin:end])
    return tuple(out)


def decode_result(types: Sequence[str], data: bytes) -> tuple[Any, ...] | None:
    """The values of ``data`` decoded as the tuple ``types`` (what ``eth_abi.decode`` returns:
    ints, bools, tuples for arrays, bytes), or None when a type is not one of :data:`DECODABLE`.

    Raises:
        AbiDecodeError: the data is not a valid encoding of ``types``.
    """
    if not all(t in DECODABLE for t in types):
        return None
    head_end = _WORD * len(types)
    if len(data) < head_end:
        raise AbiDecodeError(f"answer of {len(data)} bytes is shorter than its head")
    out: list[Any] = []
    for i, t in enumerate(types):
        at = _WORD * i
        if t == "uint256":
            out.append(_read_uint(data, at))
        elif t == "bool":
            out.append(_read_bool(data, at))
        else:
            out.append(_read_array(data, _pointer(data, 0, at, head_end), t[:-2]))
    return tuple(out)
