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


def jsonable(value: Any, *, path: str = "$") -> Any:
    """Normalise ``value`` to plain JSON types, exactly (see the module docstring)."""
    try:
        return _plain(value)
    except StoreError:  # redone with paths, so the message says where
        return _jsonable(value, path=path)


def _plain(value: Any, secrets: list[bool] | None = None) -> Any:
    """:func:`_jsonable` without building a path per node (the common shapes: dicts with string
    keys, lists, strings, ints, Decimals); anything else goes through :func:`_jsonable`. Raises
    :class:`StoreError` without a useful path: :func:`jsonable` then redoes the work with paths.

    With ``secrets``, appends to it when the result holds anything :func:`mask` would mask (a
    sensitive key with a value, or :data:`MASK` itself), so :func:`store_json` can skip a second
    walk when nothing is secret."""
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
            else:
                out[k] = _plain(item, secrets)
        return out
    if t is list or t is tuple:
        return [v if type(v) is str and (secrets is None or v != MASK) else _plain(v, secrets) for v in value]
    return _checked(_jsonable(value), secrets)


def _checked(value: Any, secrets: list[bool] | None) -> Any:
    """``value`` (already plain), noting in ``secrets`` whether :func:`mask` would find anything."""
    if secrets is not None and _has_secret(value):
        secrets.append(True)
    return value


def _jsonable(value: Any, *, path: str = "$") -> Any:
    if value is None or isinstance(value, bool | str):
        return value
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


def store_json(value: Any, extra_mask: Iterable[str] = ()) -> tuple[Any, list[str]]:
    """:func:`jsonable` then :func:`mask`: what every JSON column receives. Normalising notes
    whether anything is secret, so a value with nothing to mask is walked once, not twice."""
    secrets: list[bool] = []
    try:
        body = _plain(value, secrets)
    except StoreError:
        return mask(jsonable(value), extra_mask)  # redone with paths for the message
    extra = list(extra_mask)
    if not secrets and not extra:
        return body, []
    return mask(body, extra)
