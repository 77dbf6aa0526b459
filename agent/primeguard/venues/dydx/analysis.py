"""What a dYdX v4 ``x/accountplus`` authenticator lets its holder do. Pure: no I/O.

An authenticator is a tree. Leaves: ``SignatureVerification`` (a secp256k1 public key),
``MessageFilter`` (comma-separated message type URLs), ``SubaccountFilter`` and
``ClobPairIdFilter`` (comma-separated numbers). Inner nodes: ``AllOf`` (every child must pass) and
``AnyOf`` (one child must pass), whose config is JSON ``[{"type": ..., "config": ...}, ...]`` with
each sub-config as a base64 string (Go's ``[]byte``), an array of byte values (the Python client),
or, for nested ``AllOf``/``AnyOf``, the JSON array itself.

Semantics (docs/venues-dydx.md):

1. The tree is expanded into disjunctive normal form: ``AnyOf`` = alternative *paths*, ``AllOf`` =
   conjunction. A message passes the authenticator when it passes every leaf of some path.
2. A path is *signed* when it contains a ``SignatureVerification``; an unsigned path may be used
   by anyone ("anyone may submit").
3. A path's messages are the intersection of its ``MessageFilter`` sets (no filter: every message).
4. ``SubaccountFilter``/``ClobPairIdFilter`` restrict *order* messages only (place, cancel, batch
   cancel): every other message passes them. They never stop a withdrawal or a transfer.
5. Anything that cannot be read exactly (unknown type, malformed config, too deep or too many
   paths) makes the whole authenticator *unknown*: treated as able to do anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from primeguard.domain.model import Capability

# --- message vocabulary ------------------------------------------------------------------------

MSG_PLACE_ORDER = "/dydxprotocol.clob.MsgPlaceOrder"
MSG_CANCEL_ORDER = "/dydxprotocol.clob.MsgCancelOrder"
MSG_BATCH_CANCEL = "/dydxprotocol.clob.MsgBatchCancel"
# The only messages SubaccountFilter and ClobPairIdFilter look at (x/accountplus: "skip other messages").
ORDER_MESSAGES: frozenset[str] = frozenset({MSG_PLACE_ORDER, MSG_CANCEL_ORDER, MSG_BATCH_CANCEL})

MSG_WITHDRAW_FROM_SUBACCOUNT = "/dydxprotocol.sending.MsgWithdrawFromSubaccount"
MSG_CREATE_TRANSFER = "/dydxprotocol.sending.MsgCreateTransfer"
MSG_SEND = "/cosmos.bank.v1beta1.MsgSend"
MSG_MULTI_SEND = "/cosmos.bank.v1beta1.MsgMultiSend"
MSG_IBC_TRANSFER = "/ibc.applications.transfer.v1.MsgTransfer"
MSG_AUTHZ_GRANT = "/cosmos.authz.v1beta1.MsgGrant"
MSG_AUTHZ_EXEC = "/cosmos.authz.v1beta1.MsgExec"
MSG_ADD_AUTHENTICATOR = "/dydxprotocol.accountplus.MsgAddAuthenticator"
MSG_SET_WITHDRAW_ADDRESS = "/cosmos.distribution.v1beta1.MsgSetWithdrawAddress"

# Every message through which value can leave the subaccount (or the power to make it leave can be
# handed on), with the normalized capability it gives. The first nine are the documented list
# (shared/reference/venues.md); the rest are further Cosmos SDK messages that pay out of the
# account, kept here so a filter admitting them is not mistaken for a safe one.
FUND_MOVING_MESSAGES: Mapping[str, Capability] = MappingProxyType({
    MSG_WITHDRAW_FROM_SUBACCOUNT: Capability.WITHDRAW,
    MSG_CREATE_TRANSFER: Capability.UNIVERSAL_TRANSFER,
    MSG_SEND: Capability.UNIVERSAL_TRANSFER,
    MSG_MULTI_SEND: Capability.UNIVERSAL_TRANSFER,
    MSG_IBC_TRANSFER: Capability.WITHDRAW,
    MSG_AUTHZ_GRANT: Capability.GRANT,
    MSG_AUTHZ_EXEC: Capability.WITHDRAW,
    MSG_ADD_AUTHENTICATOR: Capability.GRANT,
    MSG_SET_WITHDRAW_ADDRESS: Capability.WITHDRAW,
    "/cosmos.distribution.v1beta1.MsgFundCommunityPool": Capability.WITHDRAW,
    "/cosmos.feegrant.v1beta1.MsgGrantAllowance": Capability.GRANT,
    "/cosmos.vesting.v1beta1.MsgCreateVestingAccount": Capability.UNIVERSAL_TRANSFER,
    "/cosmos.vesting.v1beta1.MsgCreatePermanentLockedAccount": Capability.UNIVERSAL_TRANSFER,
    "/cosmos.vesting.v1beta1.MsgCreatePeriodicVestingAccount": Capability.UNIVERSAL_TRANSFER,
})
GRANT_MESSAGES: frozenset[str] = frozenset(m for m, c in FUND_MOVING_MESSAGES.items() if c is Capability.GRANT)

KNOWN_TYPES = ("SignatureVerification", "MessageFilter", "SubaccountFilter", "ClobPairIdFilter", "AllOf", "AnyOf")
MAX_DEPTH = 12
MAX_NODES = 256
MAX_PATHS = 1024
MAX_CONFIG_BYTES = 1024 * 1024
UINT32_MAX = 2**32 - 1


class AuthenticatorConfigError(ValueError):
    """The authenticator cannot be read exactly. ``where`` locates the node, e.g. ``AllOf[1].AnyOf[0]``."""

    def __init__(self, message: str, where: str = "") -> None:
        self.where = where
        self.reason = message
        super().__init__(f"{where}: {message}" if where else message)


# --- tree --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signature:
    pubkey: bytes


@dataclass(frozen=True, slots=True)
class Filter:
    """A leaf filter. ``kind``: ``messages``, ``subaccounts`` or ``clob_pairs``."""

    kind: str
    values: frozenset[Any]


@dataclass(frozen=True, slots=True)
class Composite:
    all_of: bool
    children: tuple[Node, ...]


Node = Signature | Filter | Composite


def parse_authenticator(auth_type: str, config: bytes) -> Node:
    """Parse a top-level authenticator as the node stores it (``type`` + config bytes).

    Raises:
        AuthenticatorConfigError: unknown type, malformed config, too deep or too large.
    """
    if not isinstance(config, bytes | bytearray):
        raise AuthenticatorConfigError(f"config must be bytes, got {type(config).__name__}")
    if len(config) > MAX_CONFIG_BYTES:
        raise AuthenticatorConfigError(f"config of {len(config)} bytes exceeds {MAX_CONFIG_BYTES}")
    counter = [0]
    return _parse(auth_type, bytes(config), str(auth_type)[:60], 0, counter)


def _parse(auth_type: object, config: bytes | list[Any], where: str, depth: int, counter: list[int]) -> Node:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise AuthenticatorConfigError(f"more than {MAX_NODES} nodes", where)
    if depth > MAX_DEPTH:
        raise AuthenticatorConfigError(f"nested deeper than {MAX_DEPTH}", where)
    if not isinstance(auth_type, str) or auth_type not in KNOWN_TYPES:
        shown = auth_type if isinstance(auth_type, str) else type(auth_type).__name__
        raise AuthenticatorConfigError(f"unknown authenticator type {str(shown)[:60]!r}", where)
    if auth_type in ("AllOf", "AnyOf"):
        items = config if isinstance(config, list) else _json_array(config, where)
        if not items:
            raise AuthenticatorConfigError(f"{auth_type} has no sub-authenticators", where)
        children = []
        for i, item in enumerate(items):
            sub_type, sub_config = _sub_entry(item, f"{where}[{i}]")
            label = str(sub_type)[:40]
            children.append(_parse(sub_type, sub_config, f"{where}[{i}].{label}", depth + 1, counter))
        return Composite(auth_type == "AllOf", tuple(children))
    if isinstance(config, list):  # nested JSON is only meaningful for AllOf/AnyOf
        raise AuthenticatorConfigError(f"{auth_type} config must be bytes, got a JSON array", where)
    if auth_type == "SignatureVerification":
        if len(config) != 33 or config[0] not in (2, 3):
            raise AuthenticatorConfigError(
                f"SignatureVerification needs a 33-byte compressed secp256k1 key, got {len(config)} bytes", where)
        return Signature(config)
    text = _utf8(config, where)
    entries = [e.strip() for e in text.split(",")]
    entries = [e for e in entries if e]
    if not entries:
        raise AuthenticatorConfigError(f"{auth_type} config is empty", where)
    if auth_type == "MessageFilter":
        for e in entries:
            if not e.startswith("/") or any(c.isspace() for c in e):
                raise AuthenticatorConfigError(f"MessageFilter entry {e[:80]!r} is not a type URL", where)
        return Filter("messages", frozenset(entries))
    numbers = []
    for e in entries:
        if not e.isdigit() or not e.isascii() or int(e) > UINT32_MAX:
            raise AuthenticatorConfigError(f"{auth_type} entry {e[:40]!r} is not a uint32", where)
        numbers.append(int(e))
    return Filter("subaccounts" if auth_type == "SubaccountFilter" else "clob_pairs", frozenset(numbers))


def _utf8(config: bytes, where: str) -> str:
    try:
        return config.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AuthenticatorConfigError("config is not UTF-8 text", where) from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise AuthenticatorConfigError(f"duplicate JSON key {k!r}")
        out[k] = v
    return out


def _json_array(config: bytes, where: str) -> list[Any]:
    try:
        value = json.loads(_utf8(config, where), object_pairs_hook=_no_duplicates)
    except AuthenticatorConfigError as exc:
        raise AuthenticatorConfigError(exc.reason, where) from exc
    except ValueError as exc:
        raise AuthenticatorConfigError("config is not JSON", where) from exc
    if not isinstance(value, list):
        raise AuthenticatorConfigError(f"config must be a JSON array, got {type(value).__name__}", where)
    return value


def _field(obj: dict[str, Any], name: str, where: str) -> Any:
    # Go's encoding/json matches field names case-insensitively; two spellings are ambiguous.
    hits = [k for k in obj if k.lower() == name]
    if len(hits) != 1:
        raise AuthenticatorConfigError(f"sub-authenticator needs exactly one {name!r} field", where)
    return obj[hits[0]]


def _sub_entry(item: object, where: str) -> tuple[object, bytes | list[Any]]:
    """One ``{"type", "config"}`` entry of an AllOf/AnyOf: config as base64, byte array or nested JSON."""
    if not isinstance(item, dict):
        raise AuthenticatorConfigError(f"sub-authenticator must be an object, got {type(item).__name__}", where)
    sub_type = _field(item, "type", where)
    raw = _field(item, "config", where)
    if isinstance(raw, str):
        try:
            return sub_type, base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise AuthenticatorConfigError("sub-config string is not standard base64", where) from exc
    if isinstance(raw, list):
        if raw and all(isinstance(x, dict) for x in raw):
            return sub_type, raw  # nested JSON sub-authenticators
        if all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 255 for x in raw):
            return sub_type, bytes(raw)
        raise AuthenticatorConfigError("sub-config array is neither bytes (0..255) nor sub-authenticators", where)
    raise AuthenticatorConfigError(f"sub-config must be base64, a byte array or JSON, got {type(raw).__name__}", where)


# --- paths -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Path:
    """One conjunction of leaves. ``None`` for a set means "unrestricted"."""

    signers: frozenset[bytes] = frozenset()
    messages: frozenset[str] | None = None
    subaccounts: frozenset[int] | None = None
    clob_pairs: frozenset[int] | None = None

    def join(self, other: Path) -> Path:
        return Path(self.signers | other.signers, _meet(self.messages, other.messages),
                    _meet(self.subaccounts, other.subaccounts), _meet(self.clob_pairs, other.clob_pairs))

    @property
    def signed(self) -> bool:
        return bool(self.signers)

    @property
    def orders_pass(self) -> bool:
        """Whether some order message can get past the subaccount and market filters."""
        return (self.subaccounts is None or bool(self.subaccounts)) and (
            self.clob_pairs is None or bool(self.clob_pairs))

    def admits(self, message: str) -> bool:
        if self.messages is not None and message not in self.messages:
            return False
        return self.orders_pass if message in ORDER_MESSAGES else True

    @property
    def alive(self) -> bool:
        """Whether any message at all passes this path."""
        if self.messages is None:
            return True
        return any(self.admits(m) for m in self.messages)


def _meet(a: frozenset[Any] | None, b: frozenset[Any] | None) -> frozenset[Any] | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def expand_paths(node: Node) -> tuple[Path, ...]:
    """Disjunctive normal form of the tree (AnyOf = alternatives, AllOf = conjunction).

    Raises:
        AuthenticatorConfigError: more than ``MAX_PATHS`` paths.
    """
    if isinstance(node, Signature):
        return (Path(signers=frozenset({node.pubkey})),)
    if isinstance(node, Filter):
        return (Path(**{node.kind: node.values}),)
    if not node.all_of:
        out: list[Path] = []
        for child in node.children:
            out.extend(expand_paths(child))
            _check_paths(len(out))
        return tuple(out)
    acc: list[Path] = [Path()]
    for child in node.children:
        alternatives = expand_paths(child)
        _check_paths(len(acc) * len(alternatives))
        acc = [a.join(b) for a in acc for b in alternatives]
    return tuple(acc)


def _check_paths(n: int) -> None:
    if n > MAX_PATHS:
        raise AuthenticatorConfigError(f"more than {MAX_PATHS} paths: too complex to analyse")


# --- verdict -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathVerdict:
    """What one path lets its signer(s) (or anyone, when unsigned) do."""

    path: Path
    alive: bool
    fund_moving: frozenset[str]
    can_trade: bool
    anyone_may_trade: bool
    capabilities: frozenset[Capability]
    unclassified: frozenset[str]

    def to_json(self) -> dict[str, Any]:
        p = self.path
        return {
            "signers": sorted(k.hex() for k in p.signers),
            "requires_signature": p.signed,
            "messages": "all" if p.messages is None else sorted(p.messages),
            "subaccounts": "all" if p.subaccounts is None else sorted(p.subaccounts),
            "clob_pair_ids": "all" if p.clob_pairs is None else sorted(p.clob_pairs),
            "admits_any_message": self.alive,
            "fund_moving_messages": sorted(self.fund_moving),
            "capabilities": sorted(c.value for c in self.capabilities),
            "explanation": self.explanation(),
        }

    def explanation(self) -> str:
        p = self.path
        who = (f"signed by {', '.join(_short_key(k) for k in sorted(p.signers))}" if p.signed
               else "NO signature required: anyone may submit")
        if not self.alive:
            return f"{who}; its filters admit no message (dead path)"
        msgs = "every message type" if p.messages is None else ", ".join(_short(m) for m in sorted(p.messages))
        parts = [who, f"messages: {msgs}"]
        if self.can_trade:
            subs = "any subaccount" if p.subaccounts is None else f"subaccounts {sorted(p.subaccounts)}"
            mkts = "any market" if p.clob_pairs is None else f"clob pairs {sorted(p.clob_pairs)}"
            parts.append(f"orders on {subs}, {mkts} (these filters do not restrict other messages)")
        if p.messages is None:
            parts.append("can move funds: every message type passes (withdraw, transfer, send, grant...)")
        elif self.fund_moving:
            parts.append("can move funds via " + ", ".join(_short(m) for m in sorted(self.fund_moving)))
        elif self.anyone_may_trade:
            parts.append("can move funds: anyone may trade this account against their own")
        else:
            parts.append("cannot move funds")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class AuthenticatorAnalysis:
    """The verdict on one authenticator. ``error`` set → ``unknown`` (treated as able to do anything)."""

    authenticator_id: int
    type: str
    config_sha256: str
    error: str | None = None
    paths: tuple[PathVerdict, ...] = ()
    capabilities: frozenset[Capability] = frozenset({Capability.UNKNOWN})
    fund_moving_messages: frozenset[str] = frozenset()
    grant_messages: frozenset[str] = frozenset()
    unclassified_messages: frozenset[str] = frozenset()
    signers: frozenset[bytes] = frozenset()
    anyone_may_submit: bool = False
    anyone_may_trade: bool = False
    trade_subaccounts: frozenset[int] | None = frozenset()  # None: every subaccount
    trade_clob_pairs: frozenset[int] | None = frozenset()  # None: every market
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def unknown(self) -> bool:
        return self.error is not None

    @property
    def unfiltered(self) -> bool:
        """Some path admits every message type (no MessageFilter on it)."""
        return any(p.alive and p.path.messages is None for p in self.paths)

    @property
    def requires_signature(self) -> bool:
        """Every path that admits anything needs a signature (False when unknown)."""
        return not self.unknown and not self.anyone_may_submit

    @property
    def can_move_funds(self) -> bool:
        return self.unknown or bool(self.fund_moving_messages) or self.anyone_may_trade

    @property
    def can_grant(self) -> bool:
        return self.unknown or bool(self.grant_messages)

    @property
    def can_trade(self) -> bool:
        return self.unknown or self.trade_subaccounts is None or bool(self.trade_subaccounts)

    def summary(self) -> str:
        if self.unknown:
            return f"cannot be analysed ({self.error}): treated as able to do anything"
        live = [p for p in self.paths if p.alive]
        if not live:
            return "admits no message on any path"
        bits = []
        if self.anyone_may_submit:
            bits.append("ANYONE may submit through an unsigned path")
        if self.unfiltered:
            bits.append("can move funds: a path has no MessageFilter, so every message type passes")
        elif self.fund_moving_messages:
            bits.append("can move funds via " + ", ".join(_short(m) for m in sorted(self.fund_moving_messages)))
        elif self.anyone_may_trade:
            bits.append("can move funds: anyone may trade this account")
        else:
            bits.append("cannot move funds")
        if self.grant_messages and not self.unfiltered:
            bits.append("can grant more power (" + ", ".join(_short(m) for m in sorted(self.grant_messages)) + ")")
        elif self.grant_messages:
            bits.append("can grant more power")
        if self.can_trade:
            subs = self.trade_subaccounts
            bits.append("can trade on " + ("any subaccount" if subs is None else f"subaccounts {sorted(subs)}"))
        return "; ".join(bits)

    def to_json(self) -> dict[str, Any]:
        """JSON-able details for the domain Credential."""
        return {
            "authenticator_id": self.authenticator_id,
            "type": self.type,
            "config_sha256": self.config_sha256,
            "analysable": not self.unknown,
            "error": self.error,
            "requires_signature": self.requires_signature,
            "anyone_may_submit": self.anyone_may_submit if not self.unknown else None,
            "can_move_funds": self.can_move_funds,
            "fund_moving_messages": sorted(self.fund_moving_messages),
            "can_grant": self.can_grant,
            "grant_messages": sorted(self.grant_messages),
            "can_trade": self.can_trade,
            "trade_subaccounts": _set_json(self.trade_subaccounts),
            "trade_clob_pair_ids": _set_json(self.trade_clob_pairs),
            "unclassified_messages": sorted(self.unclassified_messages),
            "signers": sorted(k.hex() for k in self.signers),
            "paths": [p.to_json() for p in self.paths],
            "explanation": self.summary(),
        }


def _set_json(values: frozenset[int] | None) -> str | list[int]:
    return "all" if values is None else sorted(values)


def judge_path(path: Path) -> PathVerdict:
    """Decide what one path admits."""
    alive = path.alive
    if not alive:
        return PathVerdict(path, False, frozenset(), False, False, frozenset(), frozenset())
    if path.messages is None:
        fund = frozenset(FUND_MOVING_MESSAGES)
        unclassified: frozenset[str] = frozenset()
    else:
        fund = frozenset(m for m in path.messages if m in FUND_MOVING_MESSAGES)
        unclassified = frozenset(path.messages - set(FUND_MOVING_MESSAGES) - ORDER_MESSAGES)
    can_trade = path.admits(MSG_PLACE_ORDER)
    anyone_may_trade = can_trade and not path.signed
    caps = {FUND_MOVING_MESSAGES[m] for m in fund}
    if can_trade:
        caps.add(Capability.TRADE_FUTURES)
    if anyone_may_trade:
        # Strangers placing orders for this account can sell it to themselves at any price.
        caps.add(Capability.WITHDRAW)
    if path.messages is None and path.subaccounts is None and path.clob_pairs is None:
        caps.add(Capability.SIGN_ANYTHING)
    return PathVerdict(path, True, fund, can_trade, anyone_may_trade, frozenset(caps), unclassified)


def analyze_authenticator(auth_id: int, auth_type: str, config: bytes) -> AuthenticatorAnalysis:
    """Analyse one authenticator as returned by ``GetAuthenticators``. Never raises."""
    digest = hashlib.sha256(config if isinstance(config, bytes | bytearray) else b"").hexdigest()
    try:
        tree = parse_authenticator(auth_type, config)
        paths = expand_paths(tree)
    except AuthenticatorConfigError as exc:
        return AuthenticatorAnalysis(auth_id, str(auth_type)[:80], digest, error=str(exc))
    except RecursionError:  # pragma: no cover - MAX_DEPTH stops this first
        return AuthenticatorAnalysis(auth_id, str(auth_type)[:80], digest, error="nested too deeply")
    return summarize(auth_id, auth_type, digest, paths)


def summarize(auth_id: int, auth_type: str, digest: str, paths: Iterable[Path]) -> AuthenticatorAnalysis:
    """Fold path verdicts into one authenticator verdict."""
    verdicts = tuple(judge_path(p) for p in paths)
    live = [v for v in verdicts if v.alive]
    caps: set[Capability] = set()
    fund: set[str] = set()
    unclassified: set[str] = set()
    signers: set[bytes] = set()
    subs: frozenset[int] | None = frozenset()
    clobs: frozenset[int] | None = frozenset()
    for v in live:
        caps |= v.capabilities
        fund |= v.fund_moving
        unclassified |= v.unclassified
        signers |= v.path.signers
        if v.can_trade:
            subs = None if subs is None or v.path.subaccounts is None else subs | v.path.subaccounts
            clobs = None if clobs is None or v.path.clob_pairs is None else clobs | v.path.clob_pairs
    return AuthenticatorAnalysis(
        authenticator_id=auth_id, type=auth_type, config_sha256=digest, paths=verdicts,
        capabilities=frozenset(caps), fund_moving_messages=frozenset(fund),
        grant_messages=frozenset(fund & GRANT_MESSAGES), unclassified_messages=frozenset(unclassified),
        signers=frozenset(signers), anyone_may_submit=any(not v.path.signed for v in live),
        anyone_may_trade=any(v.anyone_may_trade for v in live), trade_subaccounts=subs, trade_clob_pairs=clobs,
    )


def _short(message: str) -> str:
    return message.rsplit(".", 1)[-1]


def _short_key(key: bytes) -> str:
    h = key.hex()
    return f"key {h[:8]}…{h[-4:]}"
