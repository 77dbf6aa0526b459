"""JSON text rendered once, to be spliced into a larger document unchanged.

A :class:`RawJSON` stands, inside a JSON-ready structure, for the value its text encodes: the store's
serialiser (``primeguard.store.codec.dumps_json``) writes the text in its place, byte for byte what
``json.dumps`` (default separators, ASCII) writes for that value. ``json.dumps`` itself refuses a
:class:`RawJSON` (``TypeError``), so nothing serialises one by mistake as something else.

Made by :meth:`RawJSON.dump` (a value of plain JSON types, checked: no float, no Decimal, nothing
else) or by :func:`json_list` from item texts a renderer wrote with :func:`json_str` /
``encode_basestring_ascii`` (what ``json.dumps`` writes for a ``str``) and quoted Decimal text
(a JSON string, never a number). Never from anything that could hold a float.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii
from typing import Any

__all__ = ["RawJSON", "encode_basestring_ascii", "json_list", "json_str"]

_PLAIN_LEAVES = (str, int, bool, type(None))


class RawJSON:
    """JSON text standing for the value it encodes (see the module docstring). Immutable."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"RawJSON({self.text[:60]!r})"

    @classmethod
    def dump(cls, value: Any) -> RawJSON | None:
        """``value`` rendered as ``json.dumps(value)``, when it holds only plain JSON types: dicts
        with ``str`` keys, lists, ``str``, ``int``, ``bool`` and ``None``, those exact types (no
        float, no Decimal, no subclass). None otherwise: the caller keeps the value as it is."""
        if not _is_plain(value):
            return None
        return cls(json.dumps(value))


def _is_plain(value: Any) -> bool:
    t = type(value)
    if t is dict:
        return all(type(k) is str for k in value) and all(_is_plain(v) for v in value.values())
    if t is list:
        return all(_is_plain(v) for v in value)
    return t in _PLAIN_LEAVES


def json_str(value: str) -> str:
    """A ``str`` as ``json.dumps`` writes it (quoted, ASCII, escaped). ``TypeError`` for anything
    but a ``str``."""
    if type(value) is not str:
        raise TypeError(f"expected a str, got {type(value).__name__}")
    text: str = encode_basestring_ascii(value)
    return text


def json_list(items: list[str]) -> RawJSON:
    """The JSON text of a list whose items' texts are ``items`` (as ``json.dumps`` joins them)."""
    return RawJSON("[" + ", ".join(items) + "]")
