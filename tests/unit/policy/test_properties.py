"""Hypothesis properties of the withdrawal engine.

- An address absent from the allowlist is never allowed, whatever else changes.
- Tightening any limit never turns a deny into an allow (nor needs-approval into allow).
- Evaluation is deterministic: same inputs, same decision; order of history and approvals and a
  fresh load of the same files change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from primeguard.domain.decision import Outcome
from primeguard.domain.model import VenueKind
from primeguard.policy import (
    ApprovalGiven,
    PolicySet,
    WithdrawalContext,
    WithdrawalRequest,
    evaluate_withdrawal,
    load_bundle,
)
from primeguard.policy.engine import checksum_or_none
from tests.unit.policy.helpers import ALPHA_COLD, GAMMA_OKX, NOW, small_docs, to_files

BASE_DOCS = small_docs()
BASE = load_bundle(to_files(BASE_DOCS))
RANK = {Outcome.ALLOW: 0, Outcome.NEEDS_APPROVAL: 1, Outcome.DENY: 2}

# --- strategies --------------------------------------------------------------------------------

decimals = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(5_000_000), places=6, allow_nan=False,
                       allow_infinity=False)
maybe = lambda s: st.one_of(st.none(), s)  # noqa: E731
random_address = st.binary(min_size=20, max_size=20).map(lambda b: checksum_or_none("0x" + b.hex()) or "")
destinations = st.one_of(random_address, st.sampled_from([ALPHA_COLD, GAMMA_OKX, ALPHA_COLD.lower()]))
requests = st.builds(
    WithdrawalRequest,
    id=st.just("w"),
    client_id=st.sampled_from(["alpha", "gamma", "zeta"]),
    account_id=st.just("acct"),
    venue=st.sampled_from(list(VenueKind)),
    chain=st.sampled_from(["ethereum", "arbitrum"]),
    asset=st.sampled_from(["USDC", "ETH", "DOGE"]),
    amount=st.one_of(decimals, st.sampled_from([Decimal(0), Decimal(-1), Decimal(60_000), Decimal(600_000)])),
    destination=destinations,
    requested_by=st.sampled_from(["bob", "carol"]),
    requested_at=st.sampled_from([NOW, NOW + timedelta(days=400)]),
)
# Focused inputs: an allowlisted key with mostly healthy context, so allows and approvals are
# common and the properties are tested where they matter (broad inputs are almost always denied).
KEYS = sorted(BASE.allowlist, key=str)


def mostly(good: Any, *others: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from([good] * 12 + list(others))


@st.composite
def focused_requests(draw: st.DrawFn) -> WithdrawalRequest:
    client, venue, chain, asset, address = draw(st.sampled_from(KEYS))
    amount = draw(st.one_of(st.sampled_from([Decimal(100), Decimal(40_000), Decimal(60_000), Decimal(200_000),
                                             Decimal(600_000), Decimal(1_500_000)]), decimals))
    return WithdrawalRequest("w", client, "acct", venue, chain, asset, amount,
                             draw(mostly(address, address.lower(), ALPHA_COLD)), draw(mostly("bob", "carol")),
                             draw(mostly(NOW, NOW + timedelta(days=400))))


@st.composite
def focused_contexts(draw: st.DrawFn) -> WithdrawalContext:
    ltv = draw(mostly(Decimal("0.3"), Decimal("0.58"), Decimal("0.79"), None))
    post = None if ltv is None else ltv + draw(st.sampled_from([Decimal(0), Decimal("0.01"), Decimal("0.05")]))
    return WithdrawalContext(
        usd_price=draw(mostly(Decimal(1), Decimal(3000), None)),
        price_age_s=draw(mostly(5, 119, 121, None)),
        recent=draw(st.lists(st.tuples(st.integers(min_value=-90_000, max_value=0).map(
            lambda s: NOW + timedelta(seconds=s)), st.decimals(min_value=1, max_value=600_000, places=2)), max_size=2)),
        ltv=ltv,
        post_ltv=post,
        ladder_state=draw(mostly("normal", "warn", "margin_call", "frozen", None)),
        client_blind=draw(mostly(False, True)),
        venue_whitelisted=draw(mostly(True, None, False)),
        approvals=draw(approvals),
    )


recent = st.lists(st.tuples(st.integers(min_value=-200_000, max_value=10).map(lambda s: NOW + timedelta(seconds=s)),
                            decimals), max_size=4)
approvals = st.lists(st.builds(ApprovalGiven, st.sampled_from(["bob", "carol", "dave", "tom"]),
                               st.sampled_from(["viewer", "treasury", "compliance"])), max_size=3)
contexts = st.builds(
    WithdrawalContext,
    usd_price=maybe(st.sampled_from([Decimal("0.5"), Decimal(1), Decimal(3000)])),
    price_age_s=maybe(st.integers(min_value=0, max_value=300)),
    recent=recent,
    ltv=maybe(st.decimals(min_value=0, max_value=1, places=3)),
    post_ltv=maybe(st.decimals(min_value=0, max_value=1, places=3)),
    ladder_state=maybe(st.sampled_from(["normal", "warn", "margin_call", "halt", "frozen"])),
    client_blind=st.booleans(),
    venue_whitelisted=maybe(st.booleans()),
    approvals=approvals,
)

requests = st.one_of(focused_requests(), focused_requests(), focused_requests(), requests)
contexts = st.one_of(focused_contexts(), focused_contexts(), focused_contexts(), contexts)


def _normalised_key(policy: PolicySet, req: WithdrawalRequest) -> tuple[Any, ...]:
    dest = checksum_or_none(req.destination) or req.destination
    return (req.client_id, req.venue, req.chain.lower(), req.asset.upper(), dest)


# --- property 1: not allowlisted -> never allowed ----------------------------------------------


@settings(max_examples=300, deadline=None)
@given(req=requests, ctx=contexts)
def test_address_absent_from_allowlist_is_never_allowed(req: WithdrawalRequest, ctx: WithdrawalContext) -> None:
    decision = evaluate_withdrawal(BASE, req, ctx).decision
    if _normalised_key(BASE, req) not in BASE.allowlist:
        assert decision.outcome is Outcome.DENY
        assert decision.reasons  # with a documented reason


@settings(max_examples=200, deadline=None)
@given(address=random_address, ctx=contexts, amount=decimals)
def test_random_destination_is_denied_even_with_every_approval(address: str, ctx: WithdrawalContext,
                                                               amount: Decimal) -> None:
    req = WithdrawalRequest("w", "alpha", "acct", VenueKind.BINANCE, "ethereum", "USDC", amount, address, "bob", NOW)
    rich = WithdrawalContext(Decimal(1), 1, (), Decimal(0), Decimal(0), "normal", False, True,
                             tuple(ApprovalGiven(n, "compliance") for n in ("carol", "dave", "erin", "tom")))
    for c in (ctx, rich):
        assert evaluate_withdrawal(BASE, req, c).decision.outcome is Outcome.DENY


# --- property 2: tightening is monotone --------------------------------------------------------


def _tighten(fn: Callable[[dict[str, Any]], None]) -> PolicySet:
    docs = small_docs()
    fn(docs)
    return load_bundle(to_files(docs))


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(docs: dict[str, Any]) -> None:
        node = docs
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value
    return apply


def _drop_entry(docs: dict[str, Any]) -> None:
    docs["allow.yaml"]["entries"].pop(0)


TIGHTENINGS: dict[str, PolicySet] = {name: _tighten(fn) for name, fn in {
    "per_tx_lower": _set(["limits.yaml", "limits", 0, "per_tx_usd"], 1000),
    "per_tx_tier_lower": _set(["limits.yaml", "limits", 1, "per_tx_usd"], 10),
    "velocity_lower": _set(["limits.yaml", "limits", 0, "velocity", "max_usd"], 50_000),
    "velocity_window_longer": _set(["limits.yaml", "limits", 0, "velocity", "window_s"], 10 * 86400),
    "shadow_enforced": _set(["limits.yaml", "limits", 2, "shadow"], False),
    "new_limit": lambda d: d["limits.yaml"]["limits"].append({"id": "l-x", "per_tx_usd": 5000}),
    "price_age_lower": _set(["limits.yaml", "guards", "price", "max_age_s"], 5),
    "ladder_states_fewer": _set(["limits.yaml", "guards", "ladder", "allow_states"], ["normal"]),
    "ltv_cap_lower": _set(["limits.yaml", "guards", "ltv", "max_post_ltv"], "0.3"),
    "whitelist_verifiable": _set(["limits.yaml", "guards", "venue_whitelist", "unverifiable_venues"], []),
    "approval_threshold_lower": _set(["appr.yaml", "rules", 0, "above_usd"], 10),
    "approval_more_required": _set(["appr.yaml", "rules", 1, "required"], 3),
    "approval_fewer_roles": _set(["appr.yaml", "rules", 0, "roles"], ["compliance"]),
    "approval_named": lambda d: d["appr.yaml"]["rules"][1].__setitem__("approvers", ["carol", "erin"]),
    "entry_removed": _drop_entry,
    "entry_expires_sooner": _set(["allow.yaml", "entries", 0, "expires_at"], "2026-11-01T00:00:00Z"),
    "timelock_added": _set(["allow.yaml", "timelock_s"], 400 * 86400),
    "warn_band_lower": _set(["risk.yaml", "tiers", 1, "ladder", "warn"], "0.4"),
    "asset_removed": lambda d: d["hair.yaml"]["assets"].pop(1),
}.items()}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=requests, ctx=contexts, which=st.sampled_from(sorted(TIGHTENINGS)))
def test_tightening_never_loosens(req: WithdrawalRequest, ctx: WithdrawalContext, which: str) -> None:
    before = evaluate_withdrawal(BASE, req, ctx).decision
    after = evaluate_withdrawal(TIGHTENINGS[which], req, ctx).decision
    assert RANK[after.outcome] >= RANK[before.outcome], (which, before.explanation, after.explanation)


# --- property 3: determinism -------------------------------------------------------------------

RELOADED = load_bundle(to_files(small_docs()))


@settings(max_examples=200, deadline=None)
@given(req=requests, ctx=contexts, data=st.data())
def test_evaluation_is_deterministic(req: WithdrawalRequest, ctx: WithdrawalContext, data: st.DataObject) -> None:
    first = evaluate_withdrawal(BASE, req, ctx)
    assert evaluate_withdrawal(BASE, req, ctx) == first
    assert RELOADED.hash == BASE.hash
    assert evaluate_withdrawal(RELOADED, req, ctx).decision == first.decision
    shuffled = WithdrawalContext(
        ctx.usd_price, ctx.price_age_s, data.draw(st.permutations(list(ctx.recent))), ctx.ltv, ctx.post_ltv,
        ctx.ladder_state, ctx.client_blind, ctx.venue_whitelisted, data.draw(st.permutations(list(ctx.approvals))),
    )
    assert evaluate_withdrawal(BASE, req, shuffled).decision == first.decision
