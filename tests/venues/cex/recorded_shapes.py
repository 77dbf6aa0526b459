"""Recorded venue bodies (tests/venues/cex/recorded/) and the shape rule the simulators are held to.

Shape rule (what "the same" means for a simulated body against a recorded one):

- objects: the same keys; keys the simulator sends beyond the recording must be listed in the
  record's ``_documented_newer`` (fields the venue documents but the older recording lacks), keys
  the simulator may leave out in ``_optional``;
- lists: every simulated element has the shape of the first recorded element, except lists of
  tagged objects (the record's ``_union_by`` names the tag, e.g. Binance's ``filterType``): there
  each simulated element has the shape of the recorded element with the same tag, and a tag the
  recording lacks is a problem;
- booleans, null, objects and lists must match in kind (they survive ccxt-python's recording);
- strings: a recorded ``""`` admits any string; a recorded numeric string demands a number
  (fields listed in the record's ``_may_be_empty``, which the venue leaves empty in other states
  shown by another recording, also admit ``""``; fields in ``_free_text``, such as client-chosen
  ids that happened to be digits, admit any string). On OKX,
  which sends every number as a string, that must be a numeric string (never ``""``, never a JSON
  number). On Binance and Bybit the recording went through ccxt-python, which turned JSON numbers
  into strings, so a JSON number or a numeric string both pass (but never ``""``);
- JSON numbers in a recording are real numbers: the simulator must send a number.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).resolve().parent / "recorded"


def record(venue: str, name: str) -> dict[str, Any]:
    """One recorded entry: ``body``, ``_source``, ``endpoint`` and its optional key lists."""
    entry: dict[str, Any] = json.loads((RECORDED / f"{venue}.json").read_text())[name]
    return copy.deepcopy(entry)


def body(venue: str, name: str) -> Any:
    return record(venue, name)["body"]


def _numeric(s: str) -> bool:
    try:
        Decimal(s)
    except InvalidOperation:
        return False
    return s.strip() == s and s != ""


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if v is None:
        return "null"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def shape_problems(recorded: Any, actual: Any, *, strict_strings: bool, newer: frozenset[str] = frozenset(),
                   optional: frozenset[str] = frozenset(), empty_ok: frozenset[str] = frozenset(),
                   free_text: frozenset[str] = frozenset(), union_by: frozenset[str] = frozenset(),
                   path: str = "$") -> list[str]:
    """Every way ``actual`` differs in shape from ``recorded`` (empty list: same shape)."""
    rk, ak = _kind(recorded), _kind(actual)
    leaf = path.rsplit(".", 1)[-1]
    if rk == "string" and ak == "string" and ((actual == "" and leaf in empty_ok) or leaf in free_text):
        return []
    if rk == "object":
        if ak != "object":
            return [f"{path}: object expected, got {ak}"]
        out = [f"{path}.{k}: missing" for k in sorted(set(recorded) - set(actual) - optional)]
        out += [f"{path}.{k}: not sent by the venue" for k in sorted(set(actual) - set(recorded) - newer)]
        for k in sorted(set(recorded) & set(actual)):
            out += shape_problems(recorded[k], actual[k], strict_strings=strict_strings, newer=newer,
                                  optional=optional, empty_ok=empty_ok, free_text=free_text, union_by=union_by,
                                  path=f"{path}.{k}")
        return out
    if rk == "list":
        if ak != "list":
            return [f"{path}: list expected, got {ak}"]
        if not recorded:
            return []
        tag = _tag_of(recorded, union_by)
        out = []
        for i, item in enumerate(actual):
            model = recorded[0]
            if tag is not None:
                value = item.get(tag) if isinstance(item, dict) else None
                model = next((r for r in recorded if r[tag] == value), None)
                if model is None:
                    out.append(f"{path}[{i}]: {tag} {value!r} is not in the recording")
                    continue
            out += shape_problems(model, item, strict_strings=strict_strings, newer=newer, optional=optional,
                                  empty_ok=empty_ok, free_text=free_text, union_by=union_by, path=f"{path}[{i}]")
        return out
    if rk == "string":
        if recorded == "":
            return [] if ak == "string" else [f"{path}: string expected (venue sends \"\"), got {ak}"]
        if _numeric(recorded):
            if strict_strings:
                ok = ak == "string" and _numeric(actual)
                return [] if ok else [f"{path}: numeric string expected, got {actual!r}"]
            ok = ak == "number" or (ak == "string" and _numeric(actual))
            return [] if ok else [f"{path}: number (or numeric string) expected, got {actual!r}"]
        return [] if ak == "string" else [f"{path}: string expected, got {ak}"]
    if rk == "number":
        return [] if ak == "number" else [f"{path}: JSON number expected, got {actual!r}"]
    return [] if rk == ak else [f"{path}: {rk} expected, got {ak}"]


def _tag_of(recorded: list[Any], union_by: frozenset[str]) -> str | None:
    """The tag key of a recorded list of tagged objects (every element an object carrying it), or None."""
    for key in sorted(union_by):
        if all(isinstance(r, dict) and key in r for r in recorded):
            return key
    return None


def compare(venue: str, name: str, actual: Any) -> list[str]:
    """Shape problems of a simulated body against the recorded entry ``name`` of ``venue``."""
    rec = record(venue, name)
    return shape_problems(rec["body"], actual, strict_strings=venue == "okx",
                          newer=frozenset(rec.get("_documented_newer", ())),
                          optional=frozenset(rec.get("_optional", ())),
                          empty_ok=frozenset(rec.get("_may_be_empty", ())),
                          free_text=frozenset(rec.get("_free_text", ())),
                          union_by=frozenset(rec.get("_union_by", ())))
