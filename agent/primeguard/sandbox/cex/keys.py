"""Deterministic sandbox API keys: the same scenario always yields the same keys.

Keys are HMAC-SHA256 derivations of a per-scenario seed and the key's place (venue, client,
sub-account, key id), formatted the way each venue formats them. They are throwaway sandbox
credentials: never use this for anything real.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def sandbox_seed(scenario_name: str) -> bytes:
    return hashlib.sha256(b"primeguard-sandbox-cex\x00" + scenario_name.encode()).digest()


def _stream(seed: bytes, label: str, n: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < n:
        out += hmac.new(seed, f"{label}\x1f{counter}".encode(), hashlib.sha256).digest()
        counter += 1
    return out[:n]


def _alnum(seed: bytes, label: str, n: int) -> str:
    return "".join(_ALNUM[b % len(_ALNUM)] for b in _stream(seed, label, n))


@dataclass(frozen=True)
class KeyMaterial:
    api_key: str
    secret: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)


def derive_key(seed: bytes, venue: str, place: str) -> KeyMaterial:
    """Key material for ``place`` (e.g. ``"firm-a/sub1/k-client"``) in the venue's format."""
    label = f"{venue}\x1f{place}"
    if venue == "binance":
        return KeyMaterial(_alnum(seed, label + ":key", 64), _alnum(seed, label + ":secret", 64))
    if venue == "okx":
        h = _stream(seed, label + ":key", 16).hex()
        key = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        secret = _stream(seed, label + ":secret", 16).hex().upper()
        return KeyMaterial(key, secret, "Pg" + _alnum(seed, label + ":passphrase", 14))
    if venue == "bybit":
        return KeyMaterial(_alnum(seed, label + ":key", 18), _alnum(seed, label + ":secret", 36))
    raise ValueError(f"unknown venue {venue!r}")


def derive_uid(seed: bytes, venue: str, place: str, digits: int = 9) -> str:
    """A numeric account uid, stable per scenario."""
    n = int.from_bytes(_stream(seed, f"{venue}\x1f{place}:uid", 8), "big")
    low = 10 ** (digits - 1)
    return str(low + n % (9 * low))
