"""Issue D benchmark: withdrawal decisions against 10,000 allowlist entries and 100 rules, ours vs
cedarpy evaluating an equivalent allowlist-plus-limits policy, in the same run, plus how the daemon
loads the policy (once per approved version).

The policy: 100 clients x 100 allowlist entries (10,000), 90 per-client limit rules (per-tx and
24 h velocity) and 10 approval rules, plus the four guards. Cedar gets the same thing: one entity
per allowlist entry (parent = its client, expiry and timelock as attributes), one ``forbid`` per
limit and approval rule, one for the guards, and a ``permit`` for allowlisted destinations. Cedar is
given its best case: the policy set and the 10,000 entities are parsed once (``PolicySet`` and
``Entities`` handles) and reused; request dicts are built before timing, as ours are.

Our side runs the daemon's path: the policy files are proposed, approved and activated as a
version in a store, and the policy comes from ``PolicySource.current()`` (what ``Runtime.policy()``
calls every sweep); decisions go through ``policy_decider`` (what ``Runtime.withdrawals()`` wraps).
Two versions are activated in turn (the second rewords one label: same decisions, another hash);
the bench records each parse, the first decision right after each load, and what 200 further
sweeps pay to learn the version is unchanged. What a load does before that first decision, as the
daemon's load does it: the parse builds a lane (entries, rules, tier, LTV ceiling) for every
allowlisted (client, venue, chain, asset), and ``PolicySource`` then makes three throw-away
decisions under the new version (``engine.warm_up``: an allowed one, one above every threshold,
one to an unknown address, all for the last allowlist entry, not the request timed here) so that
the interpreter and the CPU caches are not cold; nothing else is prepared.

Requests: 90 % allowlisted destinations (varied amounts, history and approvals), 10 % unknown
addresses. Both engines must agree on allow vs not-allowed for every request (Cedar has no
"needs approval": it denies). Timing is per decision in thread CPU time (``thread_time_ns``:
this 2-core machine is shared by other jobs and wall time there measures the scheduler; wall
figures are printed too), after a warm-up; garbage collection stays on and nothing is frozen,
as in the daemon. Each engine's pass over the 10,000 requests runs ``ROUNDS`` times, interleaved,
and each engine's best round is reported (as ``timeit`` does): the same treatment for both.
``first_touch_p99_us``: decisions whose (client, venue, chain, asset) the policy had not met yet
(none here since lanes are built at load for every allowlisted key and the workload uses only
those keys: ``first_touch_n`` 0, the p99 null).

Targets: p99 <= 50 us per decision and >= 5x faster than cedarpy; the first decision after a
load within that p99; the policy parsed once per approved version (never per sweep).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import cedarpy
import yaml
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address
from tests.bench.benchlib import Result, percentile, report
from tests.store.util import activate_policy

from primeguard.app.policy_source import PolicySource
from primeguard.config.schema import PrimeguardConfig
from primeguard.custody.context import policy_decider
from primeguard.domain.decision import Outcome
from primeguard.domain.model import VenueKind
from primeguard.policy import ApprovalGiven, WithdrawalContext, WithdrawalRequest
from primeguard.policy.policyset import PolicySet
from primeguard.store.db import open_store

CLIENTS, PER_CLIENT, REQUESTS, WARMUP, ROUNDS, SWEEPS = 100, 100, 10_000, 1_000, 3, 200
LIMIT_RULES, APPROVAL_RULES = 90, 10
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
VENUES = [VenueKind.BINANCE, VenueKind.OKX, VenueKind.BYBIT, VenueKind.DYDX, VenueKind.EVM]
ASSETS = ["USDC", "USDT", "ETH", "BTC"]
PRICES = {"USDC": Decimal(1), "USDT": Decimal(1), "ETH": Decimal(3000), "BTC": Decimal(60000)}
TARGET_P99_S = 50e-6
TARGET_RATIO = 5.0
CLOCK = "thread CPU time per decision (the machine is shared: wall figures in wall_* keys)"
FIRST: list[Any] = []  # the first request of the workload: the first decision after each load


def address(i: int) -> str:
    return str(to_checksum_address(keccak(f"bench:{i}".encode())[-20:]))


def client_id(c: int) -> str:
    return f"c{c:03d}"


def build_policy_files() -> tuple[dict[str, str], list[dict[str, object]]]:
    entries: list[dict[str, object]] = []
    for c in range(CLIENTS):
        for j in range(PER_CLIENT):
            entries.append({
                "id": f"e-{c}-{j}", "client": client_id(c), "venue": VENUES[j % len(VENUES)].value,
                "chain": "ethereum", "asset": ASSETS[j % len(ASSETS)], "address": address(c * PER_CLIENT + j),
                "label": f"client {c} destination {j}", "added_by": "carol",
                "added_at": "2026-01-01T00:00:00Z", "expires_at": "2027-06-01T00:00:00Z",
            })
    docs: dict[str, dict[str, object]] = {
        "risk.yaml": {"version": 1, "kind": "risk_limits", "id": "risk", "haircuts": "hair",
                      "oracle": {"max_age_s": 3600, "max_deviation": "0.02"}, "default_tier": "std",
                      "tiers": [{"id": "std", "max_loan_to_collateral": 2,
                                 "ladder": {"warn": "0.75", "margin_call": "0.8", "halt": "0.85", "liquidate": "0.9"}}],
                      "clients": [{"id": client_id(c), "tier": "std"} for c in range(CLIENTS)]},
        "hair.yaml": {"version": 1, "kind": "haircuts", "id": "hair", "default": "0.5",
                      "assets": [{"asset": a, "haircut": "0.05"} for a in ASSETS]},
        "allow.yaml": {"version": 1, "kind": "withdrawal_allowlist", "id": "allow", "entries": entries},
        "limits.yaml": {
            "version": 1, "kind": "withdrawal_limits", "id": "limits", "risk_limits": "risk", "approvals": "appr",
            "allowlists": ["allow"],
            "guards": {"price": {"id": "g-price", "max_age_s": 120},
                       "ladder": {"id": "g-ladder", "allow_states": ["normal", "warn"]},
                       "ltv": {"id": "g-ltv", "max_post_ltv": "warn"},
                       "venue_whitelist": {"id": "g-wl", "unverifiable_venues": ["okx"]}},
            "limits": [{"id": f"l-{r}", "scope": {"clients": [client_id(c) for c in range(r, CLIENTS, LIMIT_RULES)]},
                        "per_tx_usd": 250_000 + 10_000 * r,
                        "velocity": {"window_s": 86400, "max_usd": 1_000_000 + 50_000 * r}}
                       for r in range(LIMIT_RULES)],
        },
        "appr.yaml": {"version": 1, "kind": "approvals", "id": "appr", "rules": [
            {"id": f"a-{r}", "above_usd": 100_000 * (r + 1), "required": 1 + r // 5,
             "roles": ["treasury", "compliance"]} for r in range(APPROVAL_RULES)]},
    }
    return {name: yaml.safe_dump(doc, sort_keys=False) for name, doc in docs.items()}, entries


# --- the equivalent Cedar policy -----------------------------------------------------------------


def cedar_policies(limits: list[dict[str, object]], approvals: list[dict[str, object]]) -> str:
    out = ['permit(principal, action == Action::"withdraw", resource) when { resource in principal && '
           'context.now >= resource.active_from && context.now < resource.expires_at };',
           'forbid(principal, action, resource) when { context.price_age_s > 120 || context.blind || '
           '!(["normal", "warn"].contains(context.ladder_state)) || context.post_ltv_bp >= 7500 || '
           'context.whitelist_missing };']
    for rule in limits:
        scope = rule["scope"]
        assert isinstance(scope, dict)
        who = " || ".join(f'principal == Client::"{c}"' for c in scope["clients"])
        velocity = rule["velocity"]
        assert isinstance(velocity, dict)
        out.append(f'forbid(principal, action, resource) when {{ ({who}) && (context.usd_cents > '
                   f'{int(rule["per_tx_usd"]) * 100} || context.window_cents + context.usd_cents > '
                   f'{int(velocity["max_usd"]) * 100}) }};')
    for rule in approvals:
        out.append(f'forbid(principal, action, resource) when {{ context.usd_cents > {int(rule["above_usd"]) * 100} '
                   f'&& context.approvals < {rule["required"]} }};')
    return "\n".join(out)


def cedar_entities(entries: list[dict[str, object]]) -> str:
    ents: list[dict[str, object]] = [{"uid": {"type": "Client", "id": client_id(c)}, "attrs": {}, "parents": []}
                                     for c in range(CLIENTS)]
    epoch = lambda s: int(datetime.fromisoformat(str(s)).timestamp())  # noqa: E731
    for e in entries:
        key = f'{e["client"]}|{e["venue"]}|{e["chain"]}|{e["asset"]}|{e["address"]}'
        ents.append({"uid": {"type": "Destination", "id": key},
                     "attrs": {"active_from": epoch(e["added_at"]), "expires_at": epoch(e["expires_at"])},
                     "parents": [{"type": "Client", "id": e["client"]}]})
    return json.dumps(ents)


# --- workload ------------------------------------------------------------------------------------


def workload(rng: random.Random) -> list[tuple[WithdrawalRequest, WithdrawalContext, dict[str, object]]]:
    out = []
    for i in range(REQUESTS + WARMUP):
        c = rng.randrange(CLIENTS)
        j = rng.randrange(PER_CLIENT)
        venue, asset = VENUES[j % len(VENUES)], ASSETS[j % len(ASSETS)]
        hit = rng.random() < 0.9
        dest = address(c * PER_CLIENT + j) if hit else address(10_000_000 + i)
        usd_target = Decimal(rng.choice([500, 5_000, 50_000, 150_000, 400_000, 900_000]))
        amount = (usd_target / PRICES[asset]).quantize(Decimal("0.000001"))
        recent = tuple((NOW - timedelta(hours=rng.randrange(1, 30)), Decimal(rng.randrange(0, 400_000)))
                       for _ in range(3))
        approvals = tuple(ApprovalGiven(n, "treasury") for n in rng.sample(["tom", "ann", "kim"], rng.randrange(0, 3)))
        req = WithdrawalRequest(f"w{i}", client_id(c), "acct", venue, "ethereum", asset, amount, dest, "bob", NOW)
        ctx = WithdrawalContext(PRICES[asset], 15, recent, Decimal("0.4"), Decimal("0.45"), "normal", False,
                                True, approvals, post_loan_to_collateral=Decimal("0.5"),
                                post_stress_shortfall=Decimal(0))
        usd = amount * PRICES[asset]
        window = sum((u for t, u in recent if t > NOW - timedelta(days=1)), Decimal(0))
        key = f"{req.client_id}|{venue.value}|ethereum|{asset}|{dest}"
        cedar_req: dict[str, object] = {
            "principal": f'Client::"{req.client_id}"', "action": 'Action::"withdraw"',
            "resource": {"type": "Destination", "id": key},
            "context": {"usd_cents": int(usd * 100), "window_cents": int(window * 100), "price_age_s": 15,
                        "blind": False, "ladder_state": "normal", "post_ltv_bp": 4500, "whitelist_missing": False,
                        "approvals": len(approvals), "now": int(NOW.timestamp())},
        }
        out.append((req, ctx, cedar_req))
    return out


def _activate(source: PolicySource, files: dict[str, str]) -> tuple[PolicySet, float, float, float]:
    """Approve and activate ``files`` in the store, then ask the source for the policy in force, as
    the next sweep does: the policy, the parse time, and the first decision's wall and CPU time."""
    version = activate_policy(source.store, files)
    t0 = time.perf_counter()
    policy = source.current()
    load_s = time.perf_counter() - t0
    assert policy is not None and policy.hash == version, "the approved version is not the one in force"
    req, ctx, _ = FIRST
    decide = policy_decider(policy)
    w, c = time.perf_counter_ns(), time.thread_time_ns()
    decide(req, ctx)
    c, w = time.thread_time_ns() - c, time.perf_counter_ns() - w
    return policy, load_s, w / 1e9, c / 1e9


def main() -> int:
    rng = random.Random(7)
    files, entries = build_policy_files()
    limits_doc = yaml.safe_load(files["limits.yaml"])["limits"]
    appr_doc = yaml.safe_load(files["appr.yaml"])["rules"]
    t0 = time.perf_counter()
    cedar_ps = cedarpy.PolicySet.from_str(cedar_policies(limits_doc, appr_doc))
    cedar_ents = cedarpy.Entities.from_json_str(cedar_entities(entries))
    cedar_load_s = time.perf_counter() - t0
    work = workload(rng)
    FIRST[:] = work[0]

    with tempfile.TemporaryDirectory(prefix="bench-policy-") as tmp:
        # The daemon's path: the store's approved version, served by PolicySource (Runtime.policy()).
        cfg = PrimeguardConfig.model_validate({"version": 1, "policy_dir": str(Path(tmp) / "no-policy-dir"),
                                               "store": {"url": f"sqlite:///{Path(tmp) / 'policy.db'}"}})
        source = PolicySource(cfg, open_store(cfg.store.url, migrate=True), Path(tmp))
        _, load_s, first_w, first_c = _activate(source, files)
        # A second approved version (one label reworded: same decisions, another hash): parsed once more.
        files2 = dict(files, **{"allow.yaml": files["allow.yaml"].replace("destination 0\n", "destination zero\n", 1)})
        policy, load2_s, first2_w, first2_c = _activate(source, files2)
        sweeps_w, sweeps_c = [], []
        for _ in range(SWEEPS):  # what every sweep then pays to learn the version is unchanged
            w, c = time.perf_counter_ns(), time.thread_time_ns()
            same = source.current()
            sweeps_c.append((time.thread_time_ns() - c) / 1e9)
            sweeps_w.append((time.perf_counter_ns() - w) / 1e9)
            assert same is policy
        parses = source.parses
    rules = len(policy.limits) + len(policy.approval_rules)
    print(f"policy: {len(policy.entries)} allowlist entries, {rules} rules (+4 guards); parsed in {load_s:.2f}s and "
          f"{load2_s:.2f}s (two approved versions, {parses} parses over {SWEEPS} sweeps; cedar parse "
          f"{cedar_load_s:.2f}s)")

    decide = policy_decider(policy)  # as Runtime.withdrawals() builds it from the policy in force
    first_touch: list[float] = []  # decisions whose (client, venue, chain, asset) the policy had not seen yet

    def run_ours() -> tuple[list[float], list[float], list[bool]]:
        wall, cpu, allowed = [], [], []
        for req, ctx, _ in work:
            fresh = (req.client_id, req.venue, req.chain, req.asset.upper()) not in policy._memo
            w, c = time.perf_counter_ns(), time.thread_time_ns()
            d = decide(req, ctx)
            c, w = time.thread_time_ns() - c, time.perf_counter_ns() - w
            cpu.append(c / 1e9)
            wall.append(w / 1e9)
            allowed.append(d.outcome is Outcome.ALLOW)
            if fresh:
                first_touch.append(c / 1e9)
        return wall[WARMUP:], cpu[WARMUP:], allowed[WARMUP:]

    def run_cedar() -> tuple[list[float], list[float], list[bool]]:
        wall, cpu, allowed = [], [], []
        for _, _, creq in work:
            w, c = time.perf_counter_ns(), time.thread_time_ns()
            r = cedarpy.is_authorized(creq, cedar_ps, cedar_ents)
            c, w = time.thread_time_ns() - c, time.perf_counter_ns() - w
            cpu.append(c / 1e9)
            wall.append(w / 1e9)
            allowed.append(r.allowed)
        return wall[WARMUP:], cpu[WARMUP:], allowed[WARMUP:]

    def rate(fn: Callable[[], object]) -> float:
        t0 = time.process_time()
        fn()
        return REQUESTS / (time.process_time() - t0)

    def all_ours() -> None:
        for req, ctx, _ in work[WARMUP:]:
            decide(req, ctx)

    def all_cedar() -> None:
        for _, _, creq in work[WARMUP:]:
            cedarpy.is_authorized(creq, cedar_ps, cedar_ents)

    ours_rounds, cedar_rounds, ours_rates, cedar_rates = [], [], [], []
    for _ in range(ROUNDS):
        ours_rounds.append(run_ours())
        cedar_rounds.append(run_cedar())
        ours_rates.append(rate(all_ours))
        cedar_rates.append(rate(all_cedar))
    ours_w, ours_t, ours_allow = min(ours_rounds, key=lambda r: percentile(r[1], 99))
    cedar_w, cedar_t, cedar_allow = min(cedar_rounds, key=lambda r: percentile(r[1], 99))
    ours_rate, cedar_rate = max(ours_rates), max(cedar_rates)
    agree = sum(a == b for a, b in zip(ours_allow, cedar_allow, strict=True)) / len(ours_allow)
    worst_p99 = max(percentile(r[1], 99) for r in ours_rounds)

    p50, p99 = percentile(ours_t, 50), percentile(ours_t, 99)
    c50, c99 = percentile(cedar_t, 50), percentile(cedar_t, 99)
    mean, cmean = statistics.fmean(ours_t), statistics.fmean(cedar_t)
    first = max(first_c, first2_c)
    print(f"{'':<10} {'decisions/s':>12} {'mean us':>9} {'p50 us':>8} {'p99 us':>8} {'wall p99 us':>12}")
    print(f"{'ours':<10} {ours_rate:>12,.0f} {mean * 1e6:>9.1f} {p50 * 1e6:>8.1f} {p99 * 1e6:>8.1f} "
          f"{percentile(ours_w, 99) * 1e6:>12.1f}")
    print(f"{'cedarpy':<10} {cedar_rate:>12,.0f} {cmean * 1e6:>9.1f} {c50 * 1e6:>8.1f} {c99 * 1e6:>8.1f} "
          f"{percentile(cedar_w, 99) * 1e6:>12.1f}")
    print(f"allowed: ours {sum(ours_allow)}/{REQUESTS}, cedar {sum(cedar_allow)}/{REQUESTS}; agreement {agree:.2%}; "
          f"best of {ROUNDS} rounds (our worst round's p99: {worst_p99 * 1e6:.1f} us); first decision after each "
          f"load {first_c * 1e6:.1f} / {first2_c * 1e6:.1f} us CPU ({first_w * 1e6:.1f} / {first2_w * 1e6:.1f} wall)")
    clock = {"clock": CLOCK}
    extra = {"p50_us": round(p50 * 1e6, 1), "p99_us": round(p99 * 1e6, 1), "baseline_p50_us": round(c50 * 1e6, 1),
             "baseline_p99_us": round(c99 * 1e6, 1), "wall_p99_us": round(percentile(ours_w, 99) * 1e6, 1),
             "baseline_wall_p99_us": round(percentile(cedar_w, 99) * 1e6, 1), "decisions_per_s": round(ours_rate),
             "baseline_decisions_per_s": round(cedar_rate), "entries": len(policy.entries), "rules": rules,
             "agreement": round(agree, 4), "worst_round_p99_us": round(worst_p99 * 1e6, 1),
             "first_touch_p99_us": round(percentile(first_touch, 99) * 1e6, 1) if first_touch else None,
             "first_touch_n": len(first_touch),
             "path": "PolicySource.current() (store's approved version) -> policy_decider", **clock}
    sweep_p99 = percentile(sweeps_c, 99)
    results = [
        Result("policy_decision_p99", p99, c99, "p99<=50us and >=5x cedarpy",
               p99 <= TARGET_P99_S and c99 / p99 >= TARGET_RATIO and agree == 1.0, extra),
        Result("policy_decision_mean", mean, cmean, ">=5x cedarpy", cmean / mean >= TARGET_RATIO and agree == 1.0,
               {"decisions_per_s": round(ours_rate), "baseline_decisions_per_s": round(cedar_rate), **clock}),
        Result("policy_first_decision_after_load", first, p99, "first decision after a load <= decision p99",
               first <= p99, {"first_us": [round(first_c * 1e6, 1), round(first2_c * 1e6, 1)],
                              "first_wall_us": [round(first_w * 1e6, 1), round(first2_w * 1e6, 1)],
                              "baseline_is": "the steady decision p99 of this run (the bar, not another engine)",
                              "loads": 2, **clock}),
        Result("policy_per_sweep_lookup_p99", sweep_p99, load2_s, "parsed once per approved version",
               parses == 2, {"parses": parses, "versions": 2, "sweeps": SWEEPS, "parse_s": [round(load_s, 2),
                             round(load2_s, 2)], "lookup_wall_p99_s": round(percentile(sweeps_w, 99), 6),
                             "baseline_is": "a parse per sweep (the version re-read every sweep), measured: the "
                                            "second version's parse", **clock}),
    ]
    report(results)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
