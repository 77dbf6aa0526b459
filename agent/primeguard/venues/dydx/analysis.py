"""What a dYdX v4 ``x/accountplus`` authenticator lets its holder do. Pure: no I/O.

An authenticator is a tree. Leaves: ``SignatureVerification`` (a secp256k1 public key),
``MessageFilter`` (comma-separated message type URLs), ``SubaccountFilter`` and
``ClobPairIdFilter`` (comma-separated numbers). Inner nodes: ``AllOf`` (every child must pass) and
``AnyOf`` (one child must pass), whose config is JSON ``[{"type": ..., "config": ...}, ...]`` with
each sub-config decoded the way the chain decodes Go's ``[]byte``: a base64 string (what Go writes)
or an array of byte values (what the Python client writes). A sub-config written as an inline JSON
array of sub-authenticators is a decode error on the chain (the keeper would refuse to store it).
Composites need at least two children and the stored config is at most 1,024 bytes, as on the chain.

Semantics (docs/venues-dydx.md):

1. The tree is expanded into disjunctive normal form: ``AnyOf`` = alternative *paths*, ``AllOf`` =
   conjunction. A message passes the authenticator when it passes every leaf of some path.
2. A path is *signed* when it contains a ``SignatureVerification``; an unsigned path may be used
   by anyone ("anyone may submit"). The chain's keeper refuses to store a tree with an unsigned
   path, so a node that returns one is not behaving like dYdX: it is reported, never trusted.
   Every child of an ``AllOf`` receives the same single signature, so a path naming two different
   public keys can never verify: it *cannot be satisfied* and grants nothing.
3. A path's messages are the intersection of its ``MessageFilter`` sets (no filter: every message).
   Each message type is classified by ``msgs.json`` (every type URL the chain registers, from
   v4-chain ``protocol/app/msgs/``); a type not in that table counts as fund-moving (``unknown``).
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
from importlib import resources
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

# Classes of msgs.json whose messages move value out of the account or hand power on.
FUND_MOVING_CLASSES = frozenset({"moves_funds", "grants_power"})
UNCLASSIFIED = "unclassified"


@dataclass(frozen=True, slots=True)
class MessageClass:
    """What a message type can do to the account that signs it (one row of ``msgs.json``)."""

    type_url: str
    cls: str  # moves_funds | grants_power | trading_only | reduces_power | no_funds_out | ... | unclassified
    capabilities: frozenset[Capability]
    reason: str
    source_file: str | None  # the v4-chain protocol/app/msgs/ file that lists it; None: not on the chain's lists

    @property
    def fund_moving(self) -> bool:
        """Moves value out or grants power; an unclassified type counts as fund-moving (fail closed)."""
        return self.cls in FUND_MOVING_CLASSES or self.cls == UNCLASSIFIED


def _load_message_table() -> tuple[Mapping[str, MessageClass], Mapping[str, Any]]:
    raw = json.loads(resources.files("primeguard.venues.dydx").joinpath("msgs.json").read_text("utf-8"))
    classes = set(raw["classes"])
    table: dict[str, MessageClass] = {}
    for url, row in raw["messages"].items():
        if row["class"] not in classes:  # pragma: no cover - guarded by the table's own test
            raise ValueError(f"msgs.json: {url} has unknown class {row['class']!r}")
        caps = frozenset(Capability(c) for c in row["capabilities"])
        table[url] = MessageClass(url, row["class"], caps, row["reason"], row["file"])
    return MappingProxyType(table), MappingProxyType(raw["source"])


# Every type URL the dYdX chain registers (v4-chain protocol/app/msgs/*.go), classified with a reason.
MESSAGE_TABLE, MESSAGE_TABLE_SOURCE = _load_message_table()


def classify_message(type_url: str) -> MessageClass:
    """The table row for ``type_url``; a type not in the table is ``unclassified``: treated as able to
    move funds (capability ``unknown``)."""
    row = MESSAGE_TABLE.get(type_url)
    if row is not None:
        return row
    return MessageClass(type_url, UNCLASSIFIED, frozenset({Capability.UNKNOWN}),
                        "not among the chain's registered messages known to primeguard: treated as fund-moving",
                        None)


# Every registered message through which value can leave the account (or the power to make it
# leave can be handed on), with the normalized capabilities it gives. Derived from msgs.json.
FUND_MOVING_MESSAGES: Mapping[str, frozenset[Capability]] = MappingProxyType({
    url: row.capabilities for url, row in MESSAGE_TABLE.items() if row.fund_moving
})
GRANT_MESSAGES: frozenset[str] = frozenset(m for m, row in MESSAGE_TABLE.items() if row.cls == "grants_power")

KNOWN_TYPES = ("SignatureVerification", "MessageFilter", "SubaccountFilter", "ClobPairIdFilter", "AllOf", "AnyOf")
MAX_DEPTH = 12
MAX_NODES = 256
MAX_PATHS = 1024
MAX_CONFIG_BYTES = 1024  # MsgAddAuthenticator refuses longer data (AUTHENTICATOR_DATA_MAX_LENGTH)
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


def parse_authenticator(auth_type: str, config: bytes, *, max_config_bytes: int = MAX_CONFIG_BYTES) -> Node:
    """Parse a top-level authenticator as the node stores it (``type`` + config bytes).

    ``max_config_bytes`` defaults to the chain's limit; a larger one only serves to study trees the
    chain would refuse.

    Raises:
        AuthenticatorConfigError: unknown type, malformed config, too deep or too large.
    """
    if not isinstance(config, bytes | bytearray):
        raise AuthenticatorConfigError(f"config must be bytes, got {type(config).__name__}")
    if len(config) > max_config_bytes:
        raise AuthenticatorConfigError(
            f"config of {len(config)} bytes exceeds {max_config_bytes} (the chain refuses longer authenticator data)")
    counter = [0]
    return _parse(auth_type, bytes(config), str(auth_type)[:60], 0, counter)


def _parse(auth_type: object, config: bytes, where: str, depth: int, counter: list[int]) -> Node:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise AuthenticatorConfigError(f"more than {MAX_NODES} nodes", where)
    if depth > MAX_DEPTH:
        raise AuthenticatorConfigError(f"nested deeper than {MAX_DEPTH}", where)
    if not isinstance(auth_type, str) or auth_type not in KNOWN_TYPES:
        shown = auth_type if isinstance(auth_type, str) else type(auth_type).__name__
        raise AuthenticatorConfigError(f"unknown authenticator type {str(shown)[:60]!r}", where)
    if auth_type in ("AllOf", "AnyOf"):
        items = _json_array(config, where)
        if len(items) < 2:  # AllOf/AnyOf Initialize and OnAuthenticatorAdded: "at least 2"
            raise AuthenticatorConfigError(
                f"{auth_type} has {len(items)} sub-authenticator(s); the chain requires at least 2", where)
        children = []
        for i, item in enumerate(items):
            sub_type, sub_config = _sub_entry(item, f"{where}[{i}]")
            label = str(sub_type)[:40]
            children.append(_parse(sub_type, sub_config, f"{where}[{i}].{label}", depth + 1, counter))
        return Composite(auth_type == "AllOf", tuple(children))
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


def _sub_entry(item: object, where: str) -> tuple[object, bytes]:
    """One ``{"type", "config"}`` entry of an AllOf/AnyOf; the config decoded as Go decodes ``[]byte``
    (a base64 string or an array of byte values). Anything else is the chain's decode error."""
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
        if all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 255 for x in raw):
            return sub_type, bytes(raw)
        if raw and all(isinstance(x, dict) for x in raw):
            raise AuthenticatorConfigError(
                "sub-config is an inline JSON array of sub-authenticators: the chain decodes sub-configs as "
                "bytes (base64 or byte values) and would refuse this tree", where)
        raise AuthenticatorConfigError("sub-config array is not bytes (0..255)", where)
    raise AuthenticatorConfigError(f"sub-config must be base64 or a byte array, got {type(raw).__name__}", where)


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
    def satisfiable(self) -> bool:
        """False when the path needs two different keys: every child of an AllOf is checked against
        the transaction's one signature, which cannot verify under two different public keys."""
        return len(self.signers) <= 1

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
        """Whether any message at all passes this path (with a signature that can verify)."""
        if not self.satisfiable:
            return False
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

    @property
    def satisfiable(self) -> bool:
        return self.path.satisfiable

    def to_json(self) -> dict[str, Any]:
        p = self.path
        return {
            "signers": sorted(k.hex() for k in p.signers),
            "requires_signature": p.signed,
            "satisfiable": p.satisfiable,
            "messages": "all" if p.messages is None else sorted(p.messages),
            "subaccounts": "all" if p.subaccounts is None else sorted(p.subaccounts),
            "clob_pair_ids": "all" if p.clob_pairs is None else sorted(p.clob_pairs),
            "admits_any_message": self.alive,
            "fund_moving_messages": sorted(self.fund_moving),
            "unclassified_messages": sorted(self.unclassified),
            "capabilities": sorted(c.value for c in self.capabilities),
            "explanation": self.explanation(),
        }

    def explanation(self) -> str:
        p = self.path
        who = (f"signed by {', '.join(_short_key(k) for k in sorted(p.signers))}" if p.signed
               else "NO signature required: anyone may submit")
        if not p.satisfiable:
            return (f"{who}; cannot be satisfied: every child of an AllOf is checked against the same single "
                    f"signature, which cannot verify under {len(p.signers)} different keys (grants nothing)")
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
            if self.unclassified:
                parts.append("unclassified message types count as fund-moving: "
                             + ", ".join(_short(m) for m in sorted(self.unclassified)))
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
    def keeper_would_refuse(self) -> str | None:
        """Why the chain's keeper would not have stored this authenticator (None: it would)."""
        if self.unknown:
            return self.error
        if any(not p.path.signed for p in self.paths):
            return "a path requires no signature (the keeper refuses trees with an unsigned branch)"
        return None

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
            if self.paths and not any(p.satisfiable for p in self.paths):
                return ("cannot be satisfied: every path needs signatures from two different keys, but an AllOf "
                        "passes one signature to all its children; grants nothing")
            return "admits no message on any path"
        bits = []
        if self.anyone_may_submit:
            bits.append("ANYONE may submit through an unsigned path (the chain's keeper refuses such trees: "
                        "this node is not behaving like dYdX)")
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
            "satisfiable": self.unknown or any(p.satisfiable for p in self.paths),
            "keeper_would_refuse": self.keeper_would_refuse,
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
    caps: set[Capability] = set()
    if path.messages is None:
        fund = frozenset(FUND_MOVING_MESSAGES)
        unclassified: frozenset[str] = frozenset()
    else:
        rows = [classify_message(m) for m in path.messages]
        fund = frozenset(r.type_url for r in rows if r.fund_moving)
        unclassified = frozenset(r.type_url for r in rows if r.cls == UNCLASSIFIED)
    for m in fund:
        caps |= classify_message(m).capabilities
    can_trade = path.admits(MSG_PLACE_ORDER)
    anyone_may_trade = can_trade and not path.signed
    if can_trade:
        caps.add(Capability.TRADE_FUTURES)
    if anyone_may_trade:
        # Strangers placing orders for this account can sell it to themselves at any price.
        caps.add(Capability.WITHDRAW)
    if path.messages is None and path.subaccounts is None and path.clob_pairs is None:
        caps.add(Capability.SIGN_ANYTHING)
    return PathVerdict(path, True, fund, can_trade, anyone_may_trade, frozenset(caps), unclassified)


def analyze_authenticator(auth_id: int, auth_type: str, config: bytes, *,
                          max_config_bytes: int = MAX_CONFIG_BYTES) -> AuthenticatorAnalysis:
    """Analyse one authenticator as returned by ``GetAuthenticators``. Never raises.

    A config longer than ``max_config_bytes`` (default: the chain's 1,024) is unknown."""
    digest = hashlib.sha256(config if isinstance(config, bytes | bytearray) else b"").hexdigest()
    try:
        tree = parse_authenticator(auth_type, config, max_config_bytes=max_config_bytes)
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
