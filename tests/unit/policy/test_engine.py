"""Engine semantics not covered by the example *_test.yaml cases."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from eth_utils.address import to_checksum_address

from primeguard.domain.decision import Outcome, ReasonCode
from primeguard.domain.findings import FindingCode, Severity
from primeguard.domain.model import Account, Capability, Credential, Holder, VenueKind
from primeguard.policy import (
    REASON_DOCS,
    CapabilityInput,
    decision_json,
    deny_without_policy,
    evaluate_capabilities,
    evaluate_withdrawal,
    explain_decision,
    explain_evaluation,
    load,
    load_bundle,
)
from primeguard.policy.engine import checksum_or_none
from primeguard.policy.explain import decision_from_json, evaluation_json
from tests.unit.policy.helpers import (
    ALPHA_COLD,
    GAMMA_OKX,
    NOW,
    POLICIES,
    approvals,
    context,
    request,
    small_docs,
    to_files,
)

POLICY = load(POLICIES)
SMALL = load_bundle(to_files(small_docs()))


def test_no_policy_denies_everything() -> None:
    d = deny_without_policy("withdrawal w1")
    assert d.outcome is Outcome.DENY and d.reasons == (ReasonCode.POLICY_MISSING,)
    docs = small_docs()
    del docs["limits.yaml"], docs["appr.yaml"]
    no_limits = load_bundle(to_files(docs))
    ev = evaluate_withdrawal(no_limits, request(), context())
    assert ev.decision.reasons == (ReasonCode.POLICY_MISSING,)


def test_decision_carries_hash_rules_and_one_paragraph() -> None:
    ev = evaluate_withdrawal(POLICY, request(), context())
    d = ev.decision
    assert d.outcome is Outcome.ALLOW and d.policy_hash == POLICY.hash
    assert "alpha-cold-usdc" in d.rule_ids and "price-fresh" in d.rule_ids
    assert "\n" not in d.explanation and POLICY.short_hash in d.explanation
    assert ev.findings == () and ev.usd_amount == Decimal(1000)


def test_deny_reports_every_reason_and_a_finding() -> None:
    ev = evaluate_withdrawal(POLICY, request(destination=GAMMA_OKX), context(usd_price=None, ladder_state="halt"))
    d = ev.decision
    assert d.outcome is Outcome.DENY
    assert set(d.reasons) == {ReasonCode.NOT_ALLOWLISTED, ReasonCode.PRICE_UNAVAILABLE, ReasonCode.LADDER_STATE}
    assert d.explanation.startswith("Denied withdrawal w1")
    (finding,) = ev.findings
    assert finding.code is FindingCode.POLICY_VIOLATION and finding.severity is Severity.HIGH
    assert finding.details["policy_hash"] == POLICY.hash


def test_address_forms() -> None:
    lower = evaluate_withdrawal(POLICY, request(destination=ALPHA_COLD.lower()), context()).decision
    assert lower.outcome is Outcome.ALLOW
    upper = evaluate_withdrawal(POLICY, request(destination="0x" + ALPHA_COLD[2:].upper()), context()).decision
    assert upper.outcome is Outcome.ALLOW
    zero = evaluate_withdrawal(POLICY, request(destination="0x" + "0" * 40), context()).decision
    assert ReasonCode.ADDRESS_INVALID in zero.reasons
    short = evaluate_withdrawal(POLICY, request(destination="0x1234"), context()).decision
    assert ReasonCode.ADDRESS_INVALID in short.reasons
    other = evaluate_withdrawal(POLICY, request(destination="TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeL"), context()).decision
    assert other.reasons == (ReasonCode.NOT_ALLOWLISTED,)


def test_non_evm_destinations_match_exactly() -> None:
    docs = small_docs()
    tron = "TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeL"
    docs["allow.yaml"]["entries"].append({
        "id": "e-tron", "client": "alpha", "venue": "binance", "chain": "tron", "asset": "USDC", "address": tron,
        "label": "alpha tron", "added_by": "carol", "added_at": "2026-01-01T00:00:00Z",
        "expires_at": "2027-06-01T00:00:00Z"})
    policy = load_bundle(to_files(docs))
    ok = evaluate_withdrawal(policy, request(chain="TRON", destination=tron), context()).decision
    assert ok.outcome is Outcome.ALLOW and "e-tron" in ok.rule_ids
    lowered = evaluate_withdrawal(policy, request(chain="tron", destination=tron.lower()), context()).decision
    assert lowered.reasons == (ReasonCode.NOT_ALLOWLISTED,)


def test_velocity_window_boundary_and_future_entries() -> None:
    req = request(amount=Decimal(600_000))
    at_edge = context(recent=[(NOW - timedelta(seconds=86400), Decimal(1_500_000))],
                      approvals=approvals(("carol", "compliance"), ("dave", "compliance")))
    assert evaluate_withdrawal(SMALL, req, at_edge).decision.outcome is Outcome.ALLOW  # exactly 24 h ago: out
    inside = context(recent=[(NOW - timedelta(seconds=86399), Decimal(1_500_000))],
                     approvals=approvals(("carol", "compliance"), ("dave", "compliance")))
    assert evaluate_withdrawal(SMALL, req, inside).decision.reasons == (ReasonCode.LIMIT_VELOCITY,)
    future = context(recent=[(NOW + timedelta(hours=1), Decimal(1_500_000))])
    assert ReasonCode.LIMIT_VELOCITY in evaluate_withdrawal(SMALL, req, future).decision.reasons


def test_shadow_rules_are_reported_not_enforced() -> None:
    ctx = context(recent=[(NOW - timedelta(minutes=10), Decimal(480_000))])
    d = evaluate_withdrawal(SMALL, request(amount=Decimal(40_000)), ctx).decision
    assert d.outcome is Outcome.ALLOW
    assert d.reasons == (ReasonCode.ALLOWED, ReasonCode.SHADOW)
    assert d.shadow == ("l-burst:limit_velocity",)
    assert "l-burst" not in d.rule_ids and "would have objected" in d.explanation


def test_approvals_required_is_the_rules_n() -> None:
    d = evaluate_withdrawal(SMALL, request(amount=Decimal(600_000)), context()).decision
    assert d.outcome is Outcome.NEEDS_APPROVAL and d.approvals_required == 2
    assert set(d.rule_ids) == {"a-50k", "a-500k"}


def test_unknown_whitelist_state_denies_except_where_unverifiable() -> None:
    d = evaluate_withdrawal(SMALL, request(), context(venue_whitelisted=None)).decision
    assert d.reasons == (ReasonCode.VENUE_WHITELIST_MISSING,)
    okx = request(client_id="gamma", venue=VenueKind.OKX, destination=GAMMA_OKX)
    assert evaluate_withdrawal(SMALL, okx, context(venue_whitelisted=None)).decision.outcome is Outcome.ALLOW
    assert evaluate_withdrawal(SMALL, okx, context(venue_whitelisted=False)).decision.outcome is Outcome.DENY


def test_non_decimal_or_nan_inputs_fail_closed() -> None:
    assert evaluate_withdrawal(POLICY, request(amount=Decimal("NaN")), context()).decision.reasons == (
        ReasonCode.AMOUNT_INVALID,)
    assert ReasonCode.PRICE_UNAVAILABLE in evaluate_withdrawal(
        POLICY, request(), context(usd_price=Decimal("Infinity"))).decision.reasons
    assert ReasonCode.DATA_STALE in evaluate_withdrawal(POLICY, request(), context(price_age_s=-1)).decision.reasons


def _cred(cid: str, holder: Holder, caps: set[Capability], account: str = "acct", venue: VenueKind = VenueKind.BINANCE,
          kind: str = "cex_api_key", **kw: Any) -> Credential:
    return Credential(cid, account, venue, kind, holder, frozenset(caps), **kw)


def test_capabilities_unknown_account_still_checked_and_unanalysable_key_fails_closed() -> None:
    creds = [_cred("k1", Holder.CLIENT, {Capability.UNKNOWN}, ip_restricted=True)]
    res = evaluate_capabilities(POLICY, CapabilityInput(creds))
    assert res.decision.outcome is Outcome.DENY
    codes = {f.code for f in res.findings}
    assert FindingCode.KEY_CAN_WITHDRAW in codes
    assert all(f.client_id is None for f in res.findings)


def test_capability_findings_carry_client_rule_and_hash() -> None:
    acct = {"a1": Account("a1", "alpha", VenueKind.BINANCE)}
    creds = [_cred("k2", Holder.CLIENT, {Capability.READ, Capability.WITHDRAW}, account="a1", ip_restricted=True)]
    res = evaluate_capabilities(POLICY, CapabilityInput(creds, MappingProxyType(acct)))
    (f,) = res.findings
    assert (f.client_id, f.rule_id, f.severity) == ("alpha", "client-cex-no-withdraw", Severity.CRITICAL)
    assert f.details["policy_hash"] == POLICY.hash and f.details["capabilities"] == ["withdraw"]
    assert res.decision.rule_ids == ("client-cex-no-withdraw",)


def test_shadow_capability_findings_are_info() -> None:
    creds = [_cred("op", Holder.OPERATOR, {Capability.READ}, ip_restricted=False)]
    res = evaluate_capabilities(POLICY, CapabilityInput(creds))
    (f,) = res.findings
    assert f.severity is Severity.INFO and f.details["shadow"] is True and f.message.startswith("[shadow]")
    assert res.decision.outcome is Outcome.ALLOW and res.decision.shadow == ("operator-ip-bound:op",)


def test_approval_of_unknown_size_is_treated_as_unlimited() -> None:
    cred = _cred("ap", Holder.CONTRACT, {Capability.SPEND_ALLOWANCE}, venue=VenueKind.EVM, kind="erc20_approval",
                 chain="ethereum", details=MappingProxyType({"spender": ALPHA_COLD}))
    res = evaluate_capabilities(POLICY, CapabilityInput([cred]))
    assert [f.code for f in res.findings] == [FindingCode.UNLIMITED_APPROVAL]


def test_checksum_matches_eth_utils() -> None:
    for _ in range(200):
        raw = "0x" + os.urandom(20).hex()
        good = to_checksum_address(raw)
        assert checksum_or_none(raw) == good == checksum_or_none(good)
        flipped = good[:2] + good[2:].swapcase()
        if flipped[2:] not in (good[2:].lower(), good[2:].upper()):
            assert checksum_or_none(flipped) is None


def test_every_reason_code_is_documented() -> None:
    assert set(REASON_DOCS) == set(ReasonCode)


def test_explain_shows_rule_locations_and_round_trips_json() -> None:
    ev = evaluate_withdrawal(POLICY, request(amount=Decimal(150_000)), context())
    text = explain_evaluation(POLICY, ev)
    assert "NEEDS_APPROVAL" in text and "treasury-above-100k" in text and "approvals.yaml:" in text
    data = evaluation_json(POLICY, ev)
    json.dumps(data)
    assert decision_from_json(decision_json(ev.decision)) == ev.decision
    other = explain_decision(SMALL, ev.decision)
    assert "decided under policy" in other and "not in this policy version" in other


def test_rules_for_matches_every_scope_in_file_order() -> None:
    """The per-client rule index gives exactly the rules whose scope covers the withdrawal, in
    file order (approvals by threshold), for named, tiered and unknown clients alike."""
    docs = small_docs()
    docs["limits.yaml"]["limits"] += [
        {"id": "l-alpha", "scope": {"clients": ["alpha"]}, "per_tx_usd": 90000},
        {"id": "l-late", "per_tx_usd": 3000000},
        {"id": "l-both", "scope": {"clients": ["gamma", "alpha"], "assets": ["ETH"]}, "per_tx_usd": 80000},
        {"id": "l-okx", "scope": {"venues": ["okx"], "tiers": ["new"]}, "per_tx_usd": 70000},
    ]
    docs["appr.yaml"]["rules"].insert(0, {"id": "a-gamma", "above_usd": 600000, "required": 1, "roles": ["treasury"],
                                          "scope": {"clients": ["gamma"]}})
    policy = load_bundle(to_files(docs))
    seen = set()
    for client in ("alpha", "gamma", "zeta"):
        for venue in VenueKind:
            for chain in ("ethereum", "arbitrum"):
                for asset in ("USDC", "ETH"):
                    tier = policy.tier_of(client)
                    want_l = tuple(r for r in policy.limits if r.scope.matches(client, tier, venue, chain, asset))
                    want_a = tuple(sorted((r for r in policy.approval_rules
                                           if r.scope.matches(client, tier, venue, chain, asset)),
                                          key=lambda r: r.above_usd))
                    got = policy.rules_for(client, venue, chain, asset)
                    assert got == (want_l, want_a), (client, venue, chain, asset)
                    seen.add(tuple(r.id for r in got[0] + got[1]))
    assert len(seen) > 4  # the scopes above really select different rule sets


def test_capabilities_of_a_book_are_each_credentials_own() -> None:
    """Credentials of one shape (holder, venue, kind, chain) but other capabilities, clients or
    IP binding, evaluated together, get exactly the findings and checks each gets alone."""
    acct = {"a1": Account("a1", "alpha", VenueKind.BINANCE), "a2": Account("a2", "beta", VenueKind.BINANCE)}
    caps = [{Capability.READ}, {Capability.READ, Capability.WITHDRAW}, {Capability.UNKNOWN}, {Capability.TRADE_SPOT}]
    creds = [_cred(f"k{i:02d}", holder, caps[i % len(caps)], account=("a1", "a2", "nobody")[i % 3],
                   ip_restricted=(True, False, None)[i % 3])
             for i, holder in enumerate([Holder.CLIENT, Holder.OPERATOR, Holder.MONITOR] * 8)]
    together = evaluate_capabilities(POLICY, CapabilityInput(creds, MappingProxyType(acct)))
    alone = [evaluate_capabilities(POLICY, CapabilityInput([c], MappingProxyType(acct))) for c in creds]
    assert together.findings == tuple(f for r in alone for f in r.findings)
    assert together.checks == tuple(c for r in alone for c in r.checks)
    assert len({f.code for f in together.findings}) > 1


def test_every_allowlisted_lane_is_built_at_load_and_agrees_with_the_lookups() -> None:
    """Lanes (what a decision needs per (client, venue, chain, asset)) exist for every allowlist key
    as soon as the policy is loaded, hold exactly that key's entries, the rules ``rules_for`` gives
    and the tier's LTV ceiling; a decision on an allowlisted lane builds nothing; other lanes are
    built on first use and hold no entries."""
    for policy in (POLICY, SMALL):
        keys = {(c, v, ch, a) for (c, v, ch, a, _) in policy.allowlist}
        assert keys and keys <= set(policy._lanes)
        for key in keys:
            lane = policy._lanes[key]
            assert dict(lane.entries) == {k[4]: e for k, e in policy.allowlist.items() if k[:4] == key}
            assert (lane.limits, lane.approvals) == policy.rules_for(*key)
            assert lane.tier == policy.tier_of(key[0]) and lane.spec is policy.tiers[lane.tier]
            assert (lane.ltv_cap, lane.ltv_cap_text) == policy.ltv_limit_and_text(lane.tier)
            assert lane.cex == key[1].is_cex
    fresh = load_bundle(to_files(small_docs()))
    built = dict(fresh._lanes)
    entry = fresh.entries[0]
    evaluate_withdrawal(fresh, request(client_id=entry.client, venue=entry.venue, chain=entry.chain, asset=entry.asset,
                                       destination=entry.address), context())
    assert fresh._lanes == built  # nothing computed on the decision path
    other = fresh.lane("zeta", VenueKind.DYDX, "tron", "USDC")
    assert other.entries == {} and fresh._lanes[("zeta", VenueKind.DYDX, "tron", "USDC")] is other


def test_hot_path_constructors_build_what_the_dataclass_constructors_build() -> None:
    """The engine builds Decision, Finding and Evaluation without their frozen ``__init__``: valid
    only while those classes have exactly the fields it sets and no ``__post_init__``."""
    import dataclasses

    from primeguard.domain.decision import Decision
    from primeguard.domain.findings import Finding
    from primeguard.policy.engine import FAST_BUILT, Evaluation, _decision, _evaluation, _finding

    for cls, names in FAST_BUILT.items():
        assert tuple(f.name for f in dataclasses.fields(cls)) == names, cls
        assert not hasattr(cls, "__post_init__") and all(f.init for f in dataclasses.fields(cls)), cls
    d = _decision(Outcome.DENY, (ReasonCode.LIMIT_PER_TX,), ("r",), "text", "h", ("s:x",), 2)
    assert d == Decision(Outcome.DENY, (ReasonCode.LIMIT_PER_TX,), ("r",), "text", "h", ("s:x",), 2)
    details = MappingProxyType({"a": 1})
    f = _finding(FindingCode.POLICY_VIOLATION, Severity.HIGH, "w1", "m", "binance", "ethereum", "c", "r", details)
    assert f == Finding(FindingCode.POLICY_VIOLATION, Severity.HIGH, "w1", "m", venue="binance", chain="ethereum",
                        client_id="c", rule_id="r", details=details)
    e = _evaluation(d, (f,), (), Decimal(1))
    assert e == Evaluation(d, (f,), (), Decimal(1)) and type(e) is Evaluation and hash(d) == hash(_decision(
        Outcome.DENY, (ReasonCode.LIMIT_PER_TX,), ("r",), "text", "h", ("s:x",), 2))


def test_warm_up_decides_three_times_and_never_raises() -> None:
    from primeguard.policy.engine import warm_up

    assert warm_up(SMALL) == 3
    docs = small_docs()
    del docs["limits.yaml"], docs["appr.yaml"]
    assert warm_up(load_bundle(to_files(docs))) == 0  # no guards: nothing to warm
