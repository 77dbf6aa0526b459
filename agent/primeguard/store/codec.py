"""Values in and out of the store: JSON normalisation, canonical JSON, masking, ids, time.

Everything the store writes into a JSON column goes through :func:`jsonable` first:

* ``Decimal`` becomes its exact positional string (``Decimal("1.50")`` → ``"1.50"``, ``1E-18`` →
  ``"0.000000000000000001"``); NaN and infinities are refused;
* ``float`` is refused (money is never a float; pass a ``Decimal`` or a ``str``);
* datetimes must be timezone-aware and become ISO 8601 UTC strings;
* enums become their value, tuples and sets become lists, dataclasses and pydantic models dicts;
* pydantic ``SecretStr``/``SecretBytes`` are always replaced by :data:`MASK`.

:func:`mask` then replaces the values of sensitive keys (``password``, ``api_secret``,
``private_key``, ``token``...) with :data:`MASK` and reports the JSON paths it masked.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from primeguard.domain.errors import StoreError
from primeguard.domain.rawjson import RawJSON

MASK = "***"

# Key names (lowercased, with everything but letters and digits removed) whose values are secrets.
_SENSITIVE_EXACT = frozenset(
    {
        "token", "seed", "secret", "apikey", "authorization", "cookie", "setcookie", "signature",
        "privkey", "keystore", "rawtx", "rawtransaction", "signedtx", "signedrawtx",
    }
)
_SENSITIVE_SUFFIXES = (
    "secret", "secretkey", "password", "passwd", "passphrase", "privatekey", "mnemonic", "seedphrase",
    "apitoken", "accesstoken", "authtoken", "bearertoken", "refreshtoken", "sessiontoken", "webtoken",
    "keystorejson", "apisecret",
)


@functools.lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """True when a mapping key names a secret whose value must never be stored."""
    norm = re.sub(r"[^a-z0-9]", "", key.lower())
    return norm in _SENSITIVE_EXACT or norm.endswith(_SENSITIVE_SUFFIXES)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime, *, what: str = "time") -> datetime:
    """An aware datetime in UTC. Naive datetimes are refused: their zone is a guess."""
    if not isinstance(value, datetime):
        raise StoreError(f"{what}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise StoreError(f"{what}: naive datetime {value.isoformat()}; pass an aware (UTC) datetime")
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    """Canonical text for a time: UTC, microseconds, ``Z`` (used in hashes, so never change it)."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decimal_json(value: Any) -> Any:
    """A ``Decimal`` as the text :func:`jsonable` stores for it (exact, positional:
    ``format(value, "f")``); a non-finite one is refused (:class:`StoreError`), as :func:`jsonable`
    refuses it. Anything else is returned unchanged, for :func:`jsonable` to check or convert.
    Lets a producer build a document already plain, which the walk then passes at C speed."""
    if type(value) is Decimal:
        if not value.is_finite():
            raise StoreError(f"not finite: {value}")
        return format(value, "f")
    return value


def exact_decimal(value: object, *, what: str = "amount") -> Decimal:
    """A finite Decimal from a Decimal, an int or a numeric string. Floats are refused."""
    if isinstance(value, bool | float) or value is None:
        raise StoreError(f"{what}: expected a Decimal, int or numeric string, got {type(value).__name__}")
    try:
        dec = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (ArithmeticError, ValueError) as exc:
        raise StoreError(f"{what}: not a number: {str(value)[:40]!r}") from exc
    if not dec.is_finite():
        raise StoreError(f"{what}: must be finite, got {dec}")
    return dec


def jsonable(value: Any, *, path: str = "$", memo: Memo | None = None) -> Any:
    """Normalise ``value`` to plain JSON types, exactly (see the module docstring).

    ``memo`` (a dict the caller creates, e.g. one per batch of rows, and drops after it) lets
    containers shared between the values of a batch (one price's JSON in every client's
    valuation) be walked once: it holds them, so their ids stay theirs while it lives. The
    values must not change while the memo is in use."""
    try:
        return _plain(value, None, memo)
    except StoreError:  # redone with paths, so the message says where
        return _jsonable(value, path=path)


# id(container) -> (the container, its normalised form, whether that holds anything to mask).
Memo = dict[int, tuple[Any, Any, bool]]

# Types a walk leaves as they are (subclasses, e.g. enums, are not among them: they are normalised).
_LEAVES = frozenset({str, int, bool, type(None)})
# Key tuples of plain dicts already seen: True when every key is a ``str`` and none is sensitive
# (the common shapes repeat: a position, a balance, a price). Bounded; cleared when full.
_SAFE_KEYS: dict[tuple[Any, ...], bool] = {}
_SAFE_KEYS_MAX = 4096


def _safe_keys(value: dict[Any, Any]) -> bool:
    """Whether every key of ``value`` is a ``str`` and none :func:`is_sensitive_key` (cached per
    key tuple)."""
    keys = tuple(value)
    got = _SAFE_KEYS.get(keys)
    if got is None:
        got = all(type(k) is str and not is_sensitive_key(k) for k in keys)
        if len(_SAFE_KEYS) >= _SAFE_KEYS_MAX:
            _SAFE_KEYS.clear()
        _SAFE_KEYS[keys] = got
    return got


def _plain(value: Any, secrets: list[bool] | None = None, memo: Memo | None = None) -> Any:
    """:func:`_jsonable` without building a path per node (the common shapes: dicts with string
    keys, lists, strings, ints, Decimals); anything else goes through :func:`_jsonable`. Raises
    :class:`StoreError` without a useful path: :func:`jsonable` then redoes the work with paths.

    With ``secrets``, appends to it when the result holds anything :func:`mask` would mask (a
    sensitive key with a value, or :data:`MASK` itself), so :func:`store_json` can skip a second
    walk when nothing is secret. With ``memo`` (see :func:`jsonable`), a dict holding dicts or
    lists is normalised once per memo.

    A dict or list that is already plain (only ``str``/``int``/``bool``/``None`` values, exactly
    those types, string keys none of them sensitive) is checked and copied at C speed."""
    t = type(value)
    if t is str:
        if secrets is not None and value == MASK:
            secrets.append(True)
        return value
    if t is int or t is bool or value is None:
        return value
    if t is Decimal:
        if not value.is_finite():
            raise StoreError("not finite")
        return format(value, "f")
    if t is dict:
        types = set(map(type, value.values()))
        if types <= _LEAVES and _safe_keys(value):
            if secrets is not None and MASK in value.values():
                secrets.append(True)
            return value.copy()
        if memo is not None and (dict in types or list in types):  # a subtree worth remembering
            seen = memo.get(id(value))
            if seen is not None:
                if seen[2] and secrets is not None:
                    secrets.append(True)
                return seen[1]
            mine: list[bool] | None = None if secrets is None else []
            out = _plain_dict(value, mine, memo)
            memo[id(value)] = (value, out, bool(mine))
            if mine and secrets is not None:
                secrets.append(True)
            return out
        return _plain_dict(value, secrets, memo)
    if t is RawJSON:  # rendered from checked parts (see primeguard.domain.rawjson): kept as text
        return value if secrets is None else _plain(json.loads(value.text), secrets, memo)
    if t is list or t is tuple:
        if set(map(type, value)) <= _LEAVES:
            if secrets is not None and MASK in value:
                secrets.append(True)
            return list(value)
        return [v if type(v) is str and (secrets is None or v != MASK) else _plain(v, secrets, memo)
                for v in value]
    return _checked(_jsonable(value), secrets)


def _plain_dict(value: dict[Any, Any], secrets: list[bool] | None, memo: Memo | None) -> Any:
    """:func:`_plain` of a dict, item by item (a fresh dict)."""
    out: dict[str, Any] = {}
    for k, item in value.items():
        if type(k) is not str:
            return _checked(_jsonable(value), secrets)
        if secrets is not None and item is not None and is_sensitive_key(k):
            secrets.append(True)
        # Leaves inline (most nodes are strings): a call per leaf was most of the walk.
        ti = type(item)
        if (ti is str and (secrets is None or item != MASK)) or item is None or ti is int or ti is bool:
            out[k] = item
        elif ti is Decimal:
            if not item.is_finite():
                raise StoreError("not finite")
            out[k] = format(item, "f")
        else:
            out[k] = _plain(item, secrets, memo)
    return out


def _checked(value: Any, secrets: list[bool] | None) -> Any:
    """``value`` (already plain), noting in ``secrets`` whether :func:`mask` would find anything."""
    if secrets is not None and _has_secret(value):
        secrets.append(True)
    return value


def _jsonable(value: Any, *, path: str = "$") -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, RawJSON):
        return _jsonable(json.loads(value.text), path=path)
    if isinstance(value, Enum):
        return _jsonable(value.value, path=path)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        raise StoreError(f"{path}: float {value!r} refused; store money and ratios as Decimal or str")
    if isinstance(value, Decimal):
        return format(exact_decimal(value, what=path), "f")  # positional, exact: never "1E-18"
    if isinstance(value, datetime):
        return iso(as_utc(value, what=path))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    if type(value).__name__ in {"SecretStr", "SecretBytes"}:
        return MASK
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            k = key.value if isinstance(key, Enum) else key
            if not isinstance(k, str):
                raise StoreError(f"{path}: mapping keys must be strings, got {type(k).__name__}")
            out[k] = _jsonable(item, path=f"{path}.{k}")
        return out
    if isinstance(value, list | tuple):
        return [_jsonable(v, path=f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [_jsonable(v, path=f"{path}[]") for v in value]
        return sorted(items, key=canonical_json)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, path=path)
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # pydantic models
        return _jsonable(dump(mode="python"), path=path)
    raise StoreError(f"{path}: cannot store a {type(value).__name__}")


_HOLE = "\x00"  # what a RawJSON is first written as: the string of one NUL character...
_HOLE_TEXT = '"\\u0000"'  # ...which json.dumps writes as this text


def prerendered(value: Any) -> RawJSON:
    """The stored text of a JSON column value already checked by :func:`jsonable` or
    :func:`store_json` (plain JSON types, maybe holding :class:`RawJSON` parts), rendered now:
    :func:`dumps_json` writes it back unchanged at the INSERT. Lets the CPU of rendering happen
    before the transaction (a sweep renders its rows in a worker thread)."""
    return RawJSON(dumps_json(value))


def dumps_json(value: Any) -> str:
    """The text of a JSON column: ``json.dumps(value)`` (what SQLAlchemy writes by default), each
    :class:`~primeguard.domain.rawjson.RawJSON` in ``value`` written as its text. The engine's
    JSON serialiser (:func:`primeguard.store.db.open_store`); ``TypeError`` for anything
    ``json.dumps`` refuses, as ``json.dumps``."""
    raws: list[str] = []

    def default(o: Any) -> Any:
        if isinstance(o, RawJSON):
            raws.append(o.text)
            return _HOLE
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")

    text = json.dumps(value, default=default)
    if not raws:
        return text
    parts = text.split(_HOLE_TEXT)
    if len(parts) != len(raws) + 1:  # a string of the document is a lone NUL too: no shortcut
        return json.dumps(_unraw(value))
    out = [parts[0]]
    for raw, part in zip(raws, parts[1:], strict=True):
        out.append(raw)
        out.append(part)
    return "".join(out)


def _unraw(value: Any) -> Any:
    """``value`` with each RawJSON replaced by the value its text encodes."""
    if isinstance(value, RawJSON):
        return json.loads(value.text)
    if isinstance(value, dict):
        return {k: _unraw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_unraw(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Deterministic JSON text of an already :func:`jsonable` value (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_id(*parts: object) -> str:
    """A deterministic id (32 hex chars) from parts, e.g. ``stable_id("margin_call", client, day)``."""
    return sha256_hex(canonical_json(jsonable(list(parts))))[:32]


def mask(value: Any, extra_paths: Iterable[str] = ()) -> tuple[Any, list[str]]:
    """Replace the values of sensitive keys (and of ``extra_paths``) with :data:`MASK`.

    ``value`` must already be :func:`jsonable`. Paths look like ``$.venue.credentials[0].secret``;
    ``extra_paths`` are given the same way (``$.`` prefix optional). Returns the masked copy and the
    sorted list of masked paths (the list goes into the record so readers know what was hidden).
    """
    extra = {p if p.startswith("$") else f"$.{p}" for p in extra_paths}
    if not extra and not _has_secret(value):  # the common case: nothing to mask, no paths to build
        return value, []
    masked: list[str] = []

    def walk(node: Any, path: str) -> Any:
        if path in extra:
            masked.append(path)
            return MASK
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                child = f"{path}.{k}"
                if is_sensitive_key(k) and v is not None:
                    masked.append(child)
                    out[k] = MASK
                else:
                    out[k] = walk(v, child)
            return out
        if isinstance(node, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(node)]
        if node == MASK and path not in masked:
            masked.append(path)  # arrived masked (SecretStr): still worth listing
        return node

    return walk(value, "$"), sorted(set(masked))


def _has_secret(node: Any) -> bool:
    """Whether :func:`mask` would mask anything in ``node`` (no extra paths)."""
    if isinstance(node, dict):
        return any((is_sensitive_key(k) and v is not None) or _has_secret(v) for k, v in node.items())
    if isinstance(node, list):
        return any(_has_secret(v) for v in node)
    return bool(node == MASK)


def store_json(value: Any, extra_mask: Iterable[str] = (), *, memo: Memo | None = None) -> tuple[Any, list[str]]:
    """:func:`jsonable` then :func:`mask`: what every JSON column receives. Normalising notes
    whether anything is secret, so a value with nothing to mask is walked once, not twice.
    ``memo``: as for :func:`jsonable` (one memo is for :func:`store_json` only)."""
    secrets: list[bool] = []
    try:
        body = _plain(value, secrets, memo)
    except StoreError:
        return mask(jsonable(value), extra_mask)  # redone with paths for the message
    extra = list(extra_mask)
    if not secrets and not extra:
        return body, []
    return mask(body, extra)
