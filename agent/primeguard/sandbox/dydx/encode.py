"""Turn a scenario's human-friendly authenticator into the bytes a dYdX node stores and returns.

Scenario ``config`` by type:

- ``SignatureVerification``: a 33-byte compressed secp256k1 public key as hex, or ``null`` for a
  key derived from the sandbox seed.
- ``MessageFilter``: a list of message type URLs (or one comma-separated string).
- ``SubaccountFilter`` / ``ClobPairIdFilter``: a list of numbers (or a comma-separated string).
- ``AllOf`` / ``AnyOf``: a list of ``{type, config[, encoding]}`` sub-authenticators.
- any other type: a string (stored as UTF-8), a list of byte values, or JSON.

Leaf configs are stored as the node stores them: raw key bytes, or comma-separated text. Composite
configs are JSON ``[{"type": ..., "config": ...}]`` whose sub-configs are written per ``encoding``:
``base64`` (what Go's ``encoding/json`` does with ``[]byte``), ``bytes`` (a JSON array of byte
values, as dydx-v4-client's ``Authenticator.compose`` writes) or ``nested`` (composite sub-configs
inlined as JSON arrays; leaves stay base64), which the chain cannot decode: its keeper refuses it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from coincurve import PrivateKey

ENCODINGS = ("base64", "bytes", "nested")
COMPOSITES = ("AllOf", "AnyOf")


class EncodeError(ValueError):
    pass


def sandbox_pubkey(seed: str) -> bytes:
    """A deterministic compressed secp256k1 public key for sandbox authenticators."""
    secret = hashlib.sha256(f"primeguard-sandbox-dydx-key:{seed}".encode()).digest()
    return bytes(PrivateKey(secret).public_key.format(compressed=True))


def encode_config(auth_type: str, config: Any, *, encoding: str = "base64", seed: str = "") -> bytes:
    """The config bytes for a top-level authenticator.

    Raises:
        EncodeError: a config that does not fit its (known) type.
    """
    if encoding not in ENCODINGS:
        raise EncodeError(f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    if auth_type in COMPOSITES:
        return json.dumps(_composite_items(config, encoding, seed), separators=(",", ":")).encode()
    return _leaf(auth_type, config, seed)


def _composite_items(config: Any, encoding: str, seed: str) -> list[dict[str, Any]]:
    if not isinstance(config, list) or not config:
        raise EncodeError("AllOf/AnyOf config must be a non-empty list of sub-authenticators")
    items = []
    for i, sub in enumerate(config):
        if not isinstance(sub, dict) or "type" not in sub:
            raise EncodeError(f"sub-authenticator {i} must be a mapping with a 'type'")
        sub_type = str(sub["type"])
        enc = str(sub.get("encoding", encoding))
        if enc not in ENCODINGS:
            raise EncodeError(f"sub-authenticator {i}: unknown encoding {enc!r}")
        sub_seed = f"{seed}.{i}"
        if sub_type in COMPOSITES and enc == "nested":
            value: Any = _composite_items(sub.get("config"), enc, sub_seed)
        else:
            raw = encode_config(sub_type, sub.get("config"), encoding=enc, seed=sub_seed)
            value = list(raw) if enc == "bytes" else base64.b64encode(raw).decode()
        items.append({"type": sub_type, "config": value})
    return items


def _leaf(auth_type: str, config: Any, seed: str) -> bytes:
    if auth_type == "SignatureVerification":
        if config is None:
            return sandbox_pubkey(seed)
        if not isinstance(config, str):
            raise EncodeError("SignatureVerification config must be a hex public key or null")
        try:
            key = bytes.fromhex(config.removeprefix("0x"))
        except ValueError as exc:
            raise EncodeError("SignatureVerification config is not hex") from exc
        if len(key) != 33 or key[0] not in (2, 3):
            raise EncodeError("SignatureVerification needs a 33-byte compressed public key")
        return key
    if auth_type == "MessageFilter":
        urls = config.split(",") if isinstance(config, str) else config
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u.startswith("/") for u in urls):
            raise EncodeError("MessageFilter config must list message type URLs like /cosmos.bank.v1beta1.MsgSend")
        return ",".join(urls).encode()
    if auth_type in ("SubaccountFilter", "ClobPairIdFilter"):
        if isinstance(config, int) and not isinstance(config, bool):
            config = [config]
        nums = config.split(",") if isinstance(config, str) else config
        if not isinstance(nums, list) or not nums:
            raise EncodeError(f"{auth_type} config must be a list of numbers")
        text = [str(n).strip() for n in nums]
        if not all(t.isdigit() for t in text):
            raise EncodeError(f"{auth_type} config must be a list of non-negative numbers")
        return ",".join(text).encode()
    # Unknown types are stored as given: the analyser must call them unknown, not guess.
    if isinstance(config, str):
        return config.encode()
    if isinstance(config, list) and all(isinstance(b, int) and 0 <= b <= 255 for b in config):
        return bytes(config)
    return json.dumps(config, separators=(",", ":")).encode()
