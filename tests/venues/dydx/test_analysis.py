"""The authenticator analyser on trees built the way a node stores them (pure, no I/O).

Configs are encoded here independently of the sandbox's encoder, and cross-checked against
dydx-v4-client's own ``Authenticator.compose`` (byte-array sub-configs)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from dydx_v4_client.node.authenticators import Authenticator, AuthenticatorType
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from primeguard.domain.findings import FindingCode
from primeguard.domain.model import Account, Capability, Holder, VenueKind
from primeguard.venues.dydx.analysis import (
    FUND_MOVING_MESSAGES,
    MAX_CONFIG_BYTES,
    MAX_DEPTH,
    MSG_ADD_AUTHENTICATOR,
    MSG_AUTHZ_GRANT,
    MSG_BATCH_CANCEL,
    MSG_CANCEL_ORDER,
    MSG_CREATE_TRANSFER,
    MSG_IBC_TRANSFER,
    MSG_PLACE_ORDER,
    MSG_SEND,
    MSG_WITHDRAW_FROM_SUBACCOUNT,
    AuthenticatorAnalysis,
    analyze_authenticator,
)
from primeguard.venues.dydx.credentials import authenticator_credential

KEY_A = bytes([2]) + bytes(range(1, 33))
KEY_B = bytes([3]) + bytes(range(101, 133))
ORDERS = (MSG_PLACE_ORDER, MSG_CANCEL_ORDER, MSG_BATCH_CANCEL)
FUND = tuple(FUND_MOVING_MESSAGES)
OTHER = ("/dydxprotocol.accountplus.MsgRemoveAuthenticator", "/cosmos.gov.v1.MsgVote")
ACCOUNT = Account("alpha-dydx", "alpha", VenueKind.DYDX, address="dydx1" + "q" * 38)

# --- a node-faithful encoder: (type, config bytes) ---------------------------------------------

Auth = tuple[str, bytes]


def sig(key: bytes = KEY_A) -> Auth:
    return "SignatureVerification", key


def mf(*msgs: str) -> Auth:
    return "MessageFilter", ",".join(msgs).encode()


def sf(*nums: int) -> Auth:
    return "SubaccountFilter", ",".join(map(str, nums)).encode()


def cf(*nums: int) -> Auth:
    return "ClobPairIdFilter", ",".join(map(str, nums)).encode()


def _sub(a: Auth, enc: str) -> dict[str, Any]:
    if enc == "bytes":
        return {"type": a[0], "config": list(a[1])}
    if enc == "nested" and a[0] in ("AllOf", "AnyOf"):
        return {"type": a[0], "config": json.loads(a[1])}
    return {"type": a[0], "config": base64.b64encode(a[1]).decode()}


def allof(*subs: Auth, enc: str = "base64") -> Auth:
    return "AllOf", json.dumps([_sub(s, enc) for s in subs]).encode()


def anyof(*subs: Auth, enc: str = "base64") -> Auth:
    return "AnyOf", json.dumps([_sub(s, enc) for s in subs]).encode()


def run(a: Auth, auth_id: int = 1) -> AuthenticatorAnalysis:
    return analyze_authenticator(auth_id, a[0], a[1])


def run_unbounded(a: Auth) -> AuthenticatorAnalysis:
    """Semantics of trees larger than the chain's 1,024-byte limit (nesting re-encodes sub-configs)."""
    return analyze_authenticator(1, a[0], a[1], max_config_bytes=1 << 20)


def standard_trading_key(enc: str = "base64") -> Auth:
    return allof(sig(), anyof(mf(MSG_PLACE_ORDER), mf(MSG_CANCEL_ORDER), mf(MSG_BATCH_CANCEL), enc=enc), sf(0),
                 enc=enc)


def safe(r: AuthenticatorAnalysis) -> bool:
    return not r.unknown and not r.can_move_funds and not r.can_grant


# --- the twelve-plus trees ---------------------------------------------------------------------


def test_standard_trading_key_cannot_move_funds():
    r = run(standard_trading_key())
    assert safe(r) and r.requires_signature
    assert r.capabilities == {Capability.TRADE_FUTURES}
    assert r.trade_subaccounts == {0} and r.trade_clob_pairs is None
    assert len(r.paths) == 3 and all(p.path.signed for p in r.paths)


def test_bare_signature_can_do_anything():
    r = run(sig())
    assert r.can_move_funds and r.can_grant and r.requires_signature
    assert {Capability.SIGN_ANYTHING, Capability.WITHDRAW, Capability.UNIVERSAL_TRANSFER, Capability.GRANT,
            Capability.TRADE_FUTURES} <= r.capabilities
    assert r.fund_moving_messages == set(FUND_MOVING_MESSAGES)


def test_subaccount_filter_does_not_restrict_transfers():
    r = run(allof(sig(), sf(0)))
    assert r.can_move_funds
    assert MSG_WITHDRAW_FROM_SUBACCOUNT in r.fund_moving_messages and MSG_CREATE_TRANSFER in r.fund_moving_messages
    assert Capability.WITHDRAW in r.capabilities
    assert Capability.SIGN_ANYTHING not in r.capabilities  # orders on other subaccounts are refused
    assert r.trade_subaccounts == {0}


def test_clob_pair_filter_does_not_restrict_transfers():
    r = run(allof(sig(), cf(0, 1)))
    assert r.can_move_funds and r.trade_clob_pairs == {0, 1}


def test_anyof_branch_with_withdraw_can_move_funds():
    r = run(allof(sig(), anyof(mf(MSG_PLACE_ORDER, MSG_CANCEL_ORDER), mf(MSG_WITHDRAW_FROM_SUBACCOUNT))))
    assert r.fund_moving_messages == {MSG_WITHDRAW_FROM_SUBACCOUNT}
    assert Capability.WITHDRAW in r.capabilities and Capability.TRADE_FUTURES in r.capabilities
    assert r.requires_signature


def test_unsigned_path_is_anyone_may_submit():
    r = run(anyof(allof(sig(), mf(MSG_PLACE_ORDER)), mf(MSG_SEND)))
    assert r.anyone_may_submit and not r.requires_signature
    assert MSG_SEND in r.fund_moving_messages
    unsigned = [p for p in r.paths if not p.path.signed]
    assert len(unsigned) == 1 and "anyone may submit" in unsigned[0].explanation()
    _, findings = authenticator_credential(ACCOUNT, r)
    assert {f.code for f in findings} >= {FindingCode.DYDX_KEY_UNSIGNED_PATH, FindingCode.DYDX_KEY_CAN_MOVE_FUNDS}


def test_unsigned_order_only_path_still_moves_value():
    # Strangers who can place orders for an account can sell it to themselves at any price.
    r = run(allof(mf(MSG_PLACE_ORDER), sf(0)))
    assert r.anyone_may_submit and r.anyone_may_trade and r.can_move_funds
    assert not r.fund_moving_messages
    assert Capability.WITHDRAW in r.capabilities


def test_top_level_message_filter_alone_is_unsigned():
    r = run(mf(MSG_PLACE_ORDER, MSG_CANCEL_ORDER))
    assert r.anyone_may_submit and r.can_move_funds


def test_unsigned_non_trading_path_does_not_move_funds():
    r = run(mf("/cosmos.gov.v1.MsgVote"))
    assert r.anyone_may_submit and not r.can_move_funds
    assert r.unclassified_messages == frozenset()  # MsgVote is on the chain's list: no funds out
    assert r.keeper_would_refuse is not None  # the keeper never stores an unsigned tree


def test_unclassified_message_counts_as_fund_moving():
    made_up = "/dydxprotocol.sending.MsgTeleportFunds"
    r = run(allof(sig(), mf(MSG_PLACE_ORDER, made_up)))
    assert r.unclassified_messages == {made_up}
    assert r.can_move_funds and made_up in r.fund_moving_messages
    assert Capability.UNKNOWN in r.capabilities
    assert "unclassified" in r.paths[0].explanation()


@pytest.mark.parametrize("msg", [
    "/dydxprotocol.sending.MsgDepositToSubaccount",  # into any subaccount, not only the sender's
    "/dydxprotocol.vault.MsgDepositToMegavault",
    "/dydxprotocol.listing.MsgCreateMarketPermissionless",
    "/cosmos.distribution.v1beta1.MsgDepositValidatorRewardsPool",
    "/cosmos.staking.v1beta1.MsgDelegate",
    "/cosmos.gov.v1.MsgSubmitProposal",
    "/cosmos.gov.v1.MsgDeposit",
    "/cosmos.authz.v1beta1.MsgExec",
    "/cosmos.feegrant.v1beta1.MsgGrantAllowance",
])
def test_registered_messages_missing_from_the_old_list_move_funds(msg):
    r = run(allof(sig(), mf(MSG_PLACE_ORDER, msg)))
    assert r.can_move_funds and r.fund_moving_messages == {msg}
    assert Capability.UNKNOWN not in r.capabilities


def test_messages_a_user_cannot_send_move_nothing():
    # Governance-internal (authority signer) and app-injected messages never pass a user's key.
    internal = "/dydxprotocol.sending.MsgSendFromAccountToAccount"
    injected = "/dydxprotocol.clob.MsgProposedOperations"
    r = run(allof(sig(), mf(MSG_PLACE_ORDER, internal, injected)))
    assert safe(r) and not r.unclassified_messages


def test_deep_nesting_is_expanded():
    inner = anyof(allof(mf(MSG_PLACE_ORDER, MSG_IBC_TRANSFER), cf(3)), mf(MSG_CANCEL_ORDER))
    tree = allof(sig(), anyof(allof(inner, sf(1, 2)), allof(sig(KEY_B), mf(MSG_BATCH_CANCEL))))
    assert run(tree).unknown  # 1.5 kB: over the chain's limit
    r = run_unbounded(tree)
    assert r.fund_moving_messages == {MSG_IBC_TRANSFER}
    assert r.trade_subaccounts == {1, 2} and r.trade_clob_pairs == {3}
    assert r.signers == {KEY_A}  # the KEY_A+KEY_B path cannot be satisfied
    assert len(r.paths) == 3 and r.requires_signature
    assert [p.satisfiable for p in r.paths] == [True, True, False]


def test_disjoint_filters_make_a_dead_path():
    r = run(allof(sig(), mf(MSG_SEND), mf(MSG_PLACE_ORDER)))
    assert not r.paths[0].alive and safe(r) and r.capabilities == frozenset()
    assert "dead path" in r.paths[0].explanation()


def test_disjoint_subaccount_filters_stop_orders_not_transfers():
    r = run(allof(sig(), sf(0), sf(1)))
    assert not r.can_trade or r.trade_subaccounts == frozenset()
    assert r.can_move_funds  # transfers pass subaccount filters whatever they say


def test_grant_messages_are_flagged():
    r = run(allof(sig(), mf(MSG_PLACE_ORDER, MSG_ADD_AUTHENTICATOR)))
    assert r.can_grant and r.grant_messages == {MSG_ADD_AUTHENTICATOR}
    assert Capability.GRANT in r.capabilities
    cred, findings = authenticator_credential(ACCOUNT, r)
    assert FindingCode.DYDX_KEY_CAN_GRANT in {f.code for f in findings}
    assert cred.moves_funds
    r2 = run(allof(sig(), mf(MSG_AUTHZ_GRANT)))
    assert r2.can_grant and r2.can_move_funds


def test_two_key_allof_cannot_be_satisfied():
    # Every child of an AllOf gets the transaction's one signature: two different keys never both
    # verify it (v4-chain's permissioned-keys end-to-end tests expect the rejection).
    for tree in (allof(sig(KEY_A), sig(KEY_B)), allof(sig(KEY_A), sig(KEY_B), mf(MSG_WITHDRAW_FROM_SUBACCOUNT))):
        r = run(tree)
        assert not r.unknown and safe(r) and r.capabilities == frozenset()
        assert r.signers == frozenset() and not r.paths[0].satisfiable
        assert "cannot be satisfied" in r.summary() and "cannot be satisfied" in r.paths[0].explanation()
        assert r.to_json()["satisfiable"] is False
        _, findings = authenticator_credential(ACCOUNT, r)
        assert findings == ()


def test_same_key_twice_is_satisfiable():
    r = run(allof(sig(KEY_A), sig(KEY_A), mf(MSG_SEND)))
    assert r.paths[0].satisfiable and r.can_move_funds


def test_anyof_keeps_the_satisfiable_branch():
    r = run(anyof(allof(sig(KEY_A), sig(KEY_B)), allof(sig(KEY_B), mf(MSG_SEND))))
    assert [p.satisfiable for p in r.paths] == [False, True]
    assert r.fund_moving_messages == {MSG_SEND} and r.signers == {KEY_B}


@pytest.mark.parametrize("enc", ["base64", "bytes"])
def test_sub_config_encodings_agree(enc):
    r = run_unbounded(standard_trading_key(enc))  # byte arrays of byte arrays: 2.6 kB
    base = run(standard_trading_key())
    assert r.to_json()["paths"] == base.to_json()["paths"]
    assert r.capabilities == base.capabilities


def test_inline_json_sub_config_is_a_chain_decode_error():
    # Go decodes a sub-config into []byte: an inline array of sub-authenticators does not decode.
    r = run(standard_trading_key("nested"))
    assert r.unknown and "inline JSON array" in (r.error or "")


@pytest.mark.parametrize("kind", ["AllOf", "AnyOf"])
def test_composite_with_one_child_is_refused_like_the_chain(kind):
    one = (kind, json.dumps([_sub(sig(), "base64")]).encode())
    r = run(one)
    assert r.unknown and "at least 2" in (r.error or "")


def test_config_over_the_chain_limit_is_unknown():
    big = mf(*[f"/x.y.Msg{i:04d}" for i in range(80)])
    assert len(big[1]) > 1024
    assert run(big).unknown


def test_mixed_encodings_in_one_tree():
    inner = anyof(mf(MSG_PLACE_ORDER), mf(MSG_SEND), enc="bytes")
    r = run(allof(sig(), inner, enc="base64"))
    assert r.fund_moving_messages == {MSG_SEND}


def test_python_client_compose_is_understood():
    # dydx-v4-client writes sub-configs as JSON byte arrays.
    key = Authenticator.compose(AuthenticatorType.AllOf, [
        Authenticator.signature_verification(KEY_A),
        Authenticator.message_filter(f"{MSG_PLACE_ORDER},{MSG_CANCEL_ORDER}"),
        Authenticator.subaccount_filter([0]),
    ])
    r = analyze_authenticator(7, key.type.value, key.config)
    assert safe(r) and r.trade_subaccounts == {0}
    # A composite inside a composite, written as byte arrays, passes the chain's 1,024-byte limit.
    nested = Authenticator.compose(AuthenticatorType.AllOf, [
        Authenticator.signature_verification(KEY_A),
        Authenticator.compose(AuthenticatorType.AnyOf, [Authenticator.message_filter(MSG_PLACE_ORDER),
                                                        Authenticator.message_filter(MSG_CANCEL_ORDER)]),
        Authenticator.subaccount_filter([0]),
    ])
    assert len(nested.config) > 1024 and analyze_authenticator(9, nested.type.value, nested.config).unknown
    assert safe(analyze_authenticator(9, nested.type.value, nested.config, max_config_bytes=4096))
    risky = Authenticator.compose(AuthenticatorType.AllOf, [Authenticator.signature_verification(KEY_A),
                                                            Authenticator.subaccount_filter([0])])
    assert analyze_authenticator(8, risky.type.value, risky.config).can_move_funds


# --- malformed and unknown → unknown (risky), never safe ---------------------------------------

MALFORMED: list[tuple[str, Auth]] = [
    ("unknown top-level type", ("PartitionedAllOf", b"[]")),
    ("unknown sub type", allof(sig(), ("SpendLimit", b"1000"))),
    ("not json", ("AllOf", b"[{not json")),
    ("json object not array", ("AnyOf", b'{"type":"SignatureVerification"}')),
    ("empty composite", ("AllOf", b"[]")),
    ("bad base64 sub-config", ("AllOf", b'[{"type":"SignatureVerification","config":"@@@"}]')),
    ("byte array out of range", ("AllOf", b'[{"type":"MessageFilter","config":[300]}]')),
    ("missing config", ("AllOf", b'[{"type":"SignatureVerification"}]')),
    ("null config", ("AllOf", b'[{"type":"SignatureVerification","config":null}]')),
    ("duplicate key", ("AllOf", b'[{"type":"MessageFilter","config":"L2E=","config":"L2I="}]')),
    ("case-variant duplicate", ("AllOf", b'[{"type":"MessageFilter","Config":"L2E=","config":"L2I="}]')),
    ("short pubkey", ("SignatureVerification", b"\x02\x01")),
    ("empty message filter", ("MessageFilter", b"")),
    ("message filter junk", ("MessageFilter", b"MsgSend")),
    ("non-numeric subaccount", ("SubaccountFilter", b"0,x")),
    ("subaccount overflow", ("SubaccountFilter", b"4294967296")),
    ("not utf-8", ("MessageFilter", b"\xff\xfe")),
    ("nested json for a leaf", ("AllOf", b'[{"type":"MessageFilter","config":[{"a":1}]}]')),
    ("garbage bytes", ("AllOf", b"\xff\xfe{not json")),
]


@pytest.mark.parametrize(("name", "auth"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_is_unknown_never_safe(name, auth):
    r = run(auth)
    assert r.unknown, name
    assert r.capabilities == {Capability.UNKNOWN}
    assert r.can_move_funds and r.can_grant and not r.requires_signature
    cred, findings = authenticator_credential(ACCOUNT, r)
    assert cred.can(Capability.WITHDRAW) and cred.moves_funds
    assert [f.code for f in findings] == [FindingCode.AUTHENTICATOR_UNKNOWN]


def test_unknown_inside_a_safe_looking_tree_still_unknown():
    r = run(allof(sig(), mf(MSG_PLACE_ORDER), ("Mystery", b"x")))
    assert r.unknown and "Mystery" in (r.error or "")


def test_depth_and_size_limits_fail_closed():
    node = mf(MSG_PLACE_ORDER)
    for _ in range(MAX_DEPTH + 2):
        node = allof(sig(), node)
    assert run(node).unknown
    assert "deeper" in (run_unbounded(node).error or "")
    wide = anyof(*[mf(MSG_PLACE_ORDER)] * 40)
    explosive = allof(wide, wide, wide)  # 64000 paths
    assert run(explosive).unknown
    r = run_unbounded(explosive)
    assert r.unknown and "paths" in (r.error or "")


def test_whitespace_in_filters_is_read_generously():
    r = run(("MessageFilter", f" {MSG_SEND} ,{MSG_PLACE_ORDER},".encode()))
    assert MSG_SEND in r.fund_moving_messages  # over-reporting is the safe direction


def test_credential_details_are_explanatory():
    cred, findings = authenticator_credential(ACCOUNT, run(standard_trading_key(), auth_id=42),
                                              markets={0: "BTC-USD", 1: "ETH-USD"})
    assert cred.id == "alpha-dydx:authenticator:42" and cred.kind == "dydx_authenticator"
    assert cred.holder is Holder.CLIENT and not cred.moves_funds and findings == ()
    d = cred.details
    assert d["requires_signature"] is True and d["fund_moving_messages"] == []
    assert d["trade_subaccounts"] == [0] and d["trade_markets"] == "all"
    assert len(d["paths"]) == 3 and all("cannot move funds" in p["explanation"] for p in d["paths"])
    json.dumps(dict(d))  # JSON-able for the store and --json output


def test_trade_markets_named_from_clob_ids():
    cred, _ = authenticator_credential(ACCOUNT, run(allof(sig(), mf(MSG_PLACE_ORDER), cf(1, 9))),
                                       markets={0: "BTC-USD", 1: "ETH-USD"})
    assert cred.details["trade_markets"] == ["ETH-USD", "clob:9"]


# --- properties ----------------------------------------------------------------------------------

MESSAGES = st.sampled_from(ORDERS + FUND + OTHER)
SAFE_MESSAGES = st.sampled_from(ORDERS + OTHER)


def leaves() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from([KEY_A, KEY_B]).map(lambda k: ("sig", k)),
        st.lists(MESSAGES, min_size=1, max_size=4, unique=True).map(lambda m: ("mf", tuple(m))),
        st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True).map(lambda n: ("sf", tuple(n))),
        st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True).map(lambda n: ("cf", tuple(n))),
    )


TREES = st.recursive(
    leaves(),
    lambda kids: st.tuples(st.sampled_from(["all", "any"]), st.lists(kids, min_size=2, max_size=3).map(tuple)),
    max_leaves=6,
)


def encode(tree: Any, enc: str = "base64") -> Auth:
    kind = tree[0]
    if kind == "sig":
        return sig(tree[1])
    if kind == "mf":
        return mf(*tree[1])
    if kind == "sf":
        return sf(*tree[1])
    if kind == "cf":
        return cf(*tree[1])
    subs = [encode(t, enc) for t in tree[1]]
    return allof(*subs, enc=enc) if kind == "all" else anyof(*subs, enc=enc)


def removable_filters(tree: Any, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Positions of filter leaves that are one conjunct among several (removing = dropping a restriction)."""
    out: list[tuple[int, ...]] = []
    if tree[0] in ("all", "any"):
        for i, child in enumerate(tree[1]):
            if tree[0] == "all" and len(tree[1]) > 2 and child[0] in ("mf", "sf", "cf"):
                out.append((*path, i))
            out.extend(removable_filters(child, (*path, i)))
    return out


def drop(tree: Any, path: tuple[int, ...]) -> Any:
    kind, kids = tree
    i, rest = path[0], path[1:]
    if not rest:
        return kind, kids[:i] + kids[i + 1:]
    return kind, (*kids[:i], drop(kids[i], rest), *kids[i + 1:])


PROPS = settings(max_examples=150, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@PROPS
@given(TREES, st.lists(SAFE_MESSAGES, min_size=1, max_size=4, unique=True), st.sampled_from(["base64", "bytes"]))
def test_property_fund_excluding_filter_on_every_path(tree, allowed, enc):
    """AllOf[T, MessageFilter(no fund-moving type)] adds the filter to every path of T."""
    auth = allof(encode(tree, enc), mf(*allowed), enc=enc)
    assume(len(auth[1]) <= MAX_CONFIG_BYTES)  # byte arrays inside byte arrays grow 4x per level
    r = run(auth)
    assert not r.unknown
    assert not r.fund_moving_messages and not r.grant_messages and not r.can_grant
    assert not r.capabilities & {Capability.UNIVERSAL_TRANSFER, Capability.GRANT, Capability.SIGN_ANYTHING}
    # Only a path anyone may use to place orders keeps a way to move value out.
    assert r.can_move_funds == r.anyone_may_trade
    if r.requires_signature or MSG_PLACE_ORDER not in allowed:
        assert not r.can_move_funds and Capability.WITHDRAW not in r.capabilities


@PROPS
@given(TREES, st.data())
def test_property_removing_a_filter_never_makes_a_key_safer(tree, data):
    spots = removable_filters(tree)
    assume(spots)
    before = run(encode(tree))
    assume(not before.unknown)  # over the chain's size limit: nothing to compare
    after = run(encode(drop(tree, data.draw(st.sampled_from(spots)))))
    assert before.capabilities <= after.capabilities
    assert before.fund_moving_messages <= after.fund_moving_messages
    assert before.grant_messages <= after.grant_messages
    assert (not before.can_move_funds) or after.can_move_funds
    assert (not before.anyone_may_submit) or after.anyone_may_submit
    assert (not before.can_trade) or after.can_trade
    if after.trade_subaccounts is not None:
        assert before.trade_subaccounts is not None and before.trade_subaccounts <= after.trade_subaccounts


@PROPS
@given(TREES)
def test_property_encoding_does_not_change_the_verdict(tree):
    auths = [encode(tree, enc) for enc in ("base64", "bytes")]
    assume(all(len(a[1]) <= MAX_CONFIG_BYTES for a in auths))
    views = [run(a).to_json() for a in auths]
    for v in views:
        v.pop("config_sha256")
    assert views[0] == views[1]
