"""What the dYdX chain's ``x/accountplus`` keeper accepts when an authenticator is added, so the
simulated node never stores what the real one refuses.

Mirrors, in behaviour (v4-chain ``protocol/x/accountplus``): ``MsgAddAuthenticator.ValidateBasic``
(data at most 1,024 bytes), ``Keeper.AddAuthenticator`` (registered type; ``OnAuthenticatorAdded``
must succeed and report that every path requires a signature) and each type's
``OnAuthenticatorAdded``:

- ``SignatureVerification``: exactly 33 bytes; requires a signature.
- ``MessageFilter``, ``SubaccountFilter``, ``ClobPairIdFilter``: accepted as they are (the chain
  parses them only when they are used); require no signature.
- ``AllOf`` / ``AnyOf``: JSON ``[{"type", "config"}]`` decoded as Go decodes it (field names
  case-insensitive, the last duplicate wins, ``config`` a base64 string, an array of byte values or
  null); at least two children, each registered and accepted; ``AllOf`` requires a signature when
  any child does, ``AnyOf`` only when every child does.

Independent of the agent's analyser on purpose: the simulator stands for the chain.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

MAX_DATA_BYTES = 1024
REGISTERED = ("AllOf", "AnyOf", "SignatureVerification", "MessageFilter", "ClobPairIdFilter", "SubaccountFilter")
PUBKEY_SIZE = 33


class KeeperRefusal(ValueError):
    """The keeper would refuse to add this authenticator; the message says why, as the chain would."""


def check_add(auth_type: str, config: bytes) -> None:
    """Accept or refuse an authenticator the way ``MsgAddAuthenticator`` + the keeper do.

    Raises:
        KeeperRefusal: the chain would not store it.
    """
    if len(config) > MAX_DATA_BYTES:
        raise KeeperRefusal("Authenticator data exceeds maximum length")
    if auth_type not in REGISTERED:
        raise KeeperRefusal(f"authenticator type {auth_type} is not registered")
    if not _on_added(auth_type, config):
        raise KeeperRefusal(
            f"unsafe: authenticator tree does not require signature verification all possible paths, "
            f"type = {auth_type}")


def _on_added(auth_type: str, config: bytes) -> bool:
    """``OnAuthenticatorAdded``: whether every path requires a signature; raises when refused."""
    if auth_type == "SignatureVerification":
        if len(config) != PUBKEY_SIZE:
            raise KeeperRefusal(f"invalid secp256k1 public key size, expected {PUBKEY_SIZE}, got {len(config)}")
        return True
    if auth_type in ("MessageFilter", "SubaccountFilter", "ClobPairIdFilter"):
        return False
    children = _decode_children(config)
    if len(children) <= 1:
        raise KeeperRefusal("no sub-authenticators provided: invalid request")
    verdicts = []
    for sub_type, sub_config in children:
        if sub_type not in REGISTERED:
            raise KeeperRefusal("sub-authenticator failed to be added in function `OnAuthenticatorAdded` as type "
                                "is not registered in manager")
        verdicts.append(_on_added(sub_type, sub_config))
    return any(verdicts) if auth_type == "AllOf" else all(verdicts)


def _decode_children(config: bytes) -> list[tuple[str, bytes]]:
    """Go's ``json.Unmarshal`` into ``[]SubAuthenticatorInitData{Type string; Config []byte}``."""
    try:
        value = json.loads(config.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise KeeperRefusal("failed to unmarshal sub-authenticator init data") from exc
    if value is None:
        return []
    if not isinstance(value, list):
        raise KeeperRefusal("failed to unmarshal sub-authenticator init data: not an array")
    out = []
    for item in value:
        if item is None:
            out.append(("", b""))
            continue
        if not isinstance(item, dict):
            raise KeeperRefusal("failed to unmarshal sub-authenticator init data: element is not an object")
        sub_type = _go_field(item, "type")
        if sub_type is not None and not isinstance(sub_type, str):
            raise KeeperRefusal("failed to unmarshal sub-authenticator init data: type is not a string")
        out.append((sub_type or "", _go_bytes(_go_field(item, "config"))))
    return out


def _go_field(obj: dict[str, Any], name: str) -> Any:
    # encoding/json matches keys case-insensitively; with several matches the last one wins.
    hit = None
    for k, v in obj.items():
        if k.lower() == name:
            hit = v
    return hit


def _go_bytes(raw: Any) -> bytes:
    if raw is None:
        return b""
    if isinstance(raw, str):
        try:
            return base64.b64decode(raw.replace("\r", "").replace("\n", ""), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeeperRefusal("failed to unmarshal sub-authenticator init data: illegal base64 data") from exc
    if isinstance(raw, list) and all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in raw):
        return bytes(raw)
    raise KeeperRefusal("failed to unmarshal sub-authenticator init data: config is not []byte")
