"""A small book seeded through the store's repositories, for the web tests.

Three clients: ``alpha`` healthy, ``beta`` in halt (a needs-approval playbook action waiting, a
withdraw-capable API key breaking policy), ``gamma`` blind (its OKX account was unreachable).
Six users, one per role plus a second treasury and compliance user for four eyes. A real
withdrawal service with the real policy engine (example policies plus an allowlist entry for
alpha's vault) and a stub market context (USDC at $1, LTV 0.5). An active policy version and a
pending proposal that raises the standard tier's per-transaction limit.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from primeguard.app.policy_versions import DbVersionStore
from primeguard.config.schema import PrimeguardConfig
from primeguard.custody.context import policy_decider
from primeguard.custody.withdrawals import WithdrawalService
from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.identity import Actor
from primeguard.playbooks.engine import ActionSpec, Playbook
from primeguard.policy.inputs import WithdrawalContext
from primeguard.policy.loader import load, read_policy_dir
from primeguard.policy.versions import approve, propose
from primeguard.store import Store, repos
from primeguard.store.identity import actor_of

REPO = Path(__file__).resolve().parents[2]
DEST = "0x4b280EdCc946EAA52913262F098391Af6aA31751"
VAULT = "0x1111111111111111111111111111111111111111"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
XSS = "<script>alert('pwned')</script>"
BANDS = {
    "alpha": {"warn": "0.925", "margin_call": "0.94", "halt": "0.955", "liquidate": "0.97"},
    "beta": {"warn": "0.75", "margin_call": "0.80", "halt": "0.85", "liquidate": "0.90"},
    "gamma": {"warn": "0.60", "margin_call": "0.70", "halt": "0.80", "liquidate": "0.85"},
}
TIERS = {"alpha": "proven", "beta": "standard", "gamma": "new"}
INTEREST = {"alpha": Decimal("12345.67"), "beta": Decimal(0), "gamma": Decimal(0)}  # accrued, part of the loan
USERS = {"vera": "viewer", "tom": "treasury", "tina": "treasury", "carol": "compliance", "dave": "compliance",
         "adam": "admin"}
ALLOWLIST_ENTRY = f"""
  - id: alpha-vault-usdc
    client: alpha
    venue: evm
    chain: ethereum
    asset: USDC
    address: "{DEST}"
    label: Alpha settlement wallet
    added_by: carol
    added_at: 2026-01-01T00:00:00Z
    expires_at: 2099-01-01T00:00:00Z
"""


@dataclass
class Seeded:
    store: Store
    tokens: dict[str, str]
    policy_dir: Path
    service: WithdrawalService
    playbook: Playbook
    action_id: str  # beta's needs-approval action
    dry_run_action_id: str
    pending_withdrawal: str  # tom's 150k request, waiting for approval
    proposal_hash: str  # carol's pending policy proposal
    active_hash: str
    now: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def rebind(self, store: Store) -> Seeded:
        """The same book over a copy of the seeded database."""
        service = WithdrawalService(service_config(), store, self.service.decide, stub_context, gate=StubGate())
        return replace(self, store=store, service=service, playbook=Playbook(store, {}), extra={})


class StubGate:
    """The seeded book has no chain: the destination gate (screening, the vault's allowlist) is
    exercised on anvil in tests/custody/test_destinations.py; here it passes the policy's decision."""

    def apply(self, session: Any, req: Any, decision: Any, **_: Any) -> Any:
        return decision


def stub_context(req: Any, approvals: Any, recent: Any) -> WithdrawalContext:
    return WithdrawalContext(usd_price=Decimal(1), price_age_s=5, recent=list(recent), ltv=Decimal("0.5"),
                             post_ltv=Decimal("0.55"), ladder_state="normal", client_blind=False,
                             venue_whitelisted=None, approvals=approvals, post_loan_to_collateral=Decimal("0.5"),
                             post_stress_shortfall=Decimal(0))


def service_config() -> PrimeguardConfig:
    return PrimeguardConfig.model_validate({
        "chains": [{"id": "ethereum", "chain_id": 1, "rpc_url": "http://127.0.0.1:9"}],
        "tokens": [{"symbol": "USDC", "chain": "ethereum", "address": USDC, "decimals": 6, "asset": "USDC"}],
        "clients": [{"id": c, "tier": t} for c, t in TIERS.items()],
        "vaults": [{"id": "alpha-vault", "client": "alpha", "chain": "ethereum", "address": VAULT}],
    })


def _ltv_path(client: str, n: int) -> list[Decimal | None]:
    if client == "alpha":
        return [Decimal("0.80") + Decimal("0.0012") * i for i in range(n)]
    if client == "beta":
        return [Decimal("0.70") + Decimal("0.0042") * i for i in range(n)]
    return [Decimal("0.50") + Decimal("0.002") * i for i in range(n - 6)] + [None] * 6


def _state(client: str, ltv: Decimal | None, previous: str) -> str:
    if ltv is None:
        return previous
    state = "normal"
    for name in ("warn", "margin_call", "halt", "liquidate"):
        if ltv >= Decimal(BANDS[client][name]):
            state = name
    return state


def seed(store: Store, tmp: Path, *, now: datetime | None = None) -> Seeded:
    now = now or datetime.now(UTC).replace(microsecond=0)
    tokens: dict[str, str] = {}
    people: dict[str, Actor] = {}
    with store.session() as s:
        for name, role in USERS.items():
            row, tokens[name] = repos.create_user(s, name, role, now=now)
            people[name] = actor_of(row)

    # metric history: 40 sweeps over the last 20 hours
    n = 40
    with store.session() as s:
        for client in ("alpha", "beta", "gamma"):
            state = "normal"
            for i, ltv in enumerate(_ltv_path(client, n)):
                at = now - timedelta(minutes=30 * (n - 1 - i))
                state = _state(client, ltv, state)
                loan = {"alpha": Decimal("9000000"), "beta": Decimal("2000000"), "gamma": Decimal("500000")}[client]
                blind = ltv is None
                collateral = loan / ltv if ltv else Decimal("800000")
                repos.record_metric(s, client_id=client, at=at, equity=collateral - loan, loan=loan, ltv=ltv,
                                    ladder_state=state, sweep_id=f"sweep-{i}", extra={
                                        "bands": BANDS[client],
                                        "ladder": {"state": state, "entered_at": at.isoformat(), "below_since": None,
                                                   "deadline": None},
                                        "valuation": _valuation(client, collateral, loan, ltv, blind),
                                        "stress": _stress(client, ltv) if i == n - 1 else [],
                                        "peak_equity": str(collateral - loan), "ltv_infinite": False})

    # latest snapshots per account
    with store.session() as s:
        for acct, venue, chain, client, ok, payload, error in _snapshots():
            repos.save_snapshot(s, sweep_id=f"sweep-{n - 1}", account_id=acct, venue=venue, ok=ok,
                                observed_at=now, payload={**payload, "venue": venue, "chain": chain,
                                                          "client": client}, error=error)

    findings = [
        Finding(FindingCode.VENUE_UNREACHABLE, Severity.HIGH, "gamma-okx", "okx did not answer within 5 s",
                venue="okx", client_id="gamma"),
        Finding(FindingCode.BLIND_SPOT, Severity.CRITICAL, "gamma", "gamma cannot be valued: gamma-okx unseen",
                client_id="gamma"),
        Finding(FindingCode.KEY_CAN_WITHDRAW, Severity.CRITICAL, "beta-bybit-key",
                "api_key beta-bybit-key (client) can withdraw: forbidden by client-keys-no-withdraw", venue="bybit",
                client_id="beta", rule_id="client-keys-no-withdraw",
                details={"rule_id": "client-keys-no-withdraw", "shadow": False, "capabilities": ["withdraw"]}),
        Finding(FindingCode.KEY_NOT_IP_BOUND, Severity.INFO, "alpha-binance-trade",
                "[shadow] api_key alpha-binance-trade (client) is not IP-bound", venue="binance", client_id="alpha",
                rule_id="keys-ip-bound-trial", details={"shadow": True, "severity_if_enforced": "high"}),
        Finding(FindingCode.LTV_HALT, Severity.CRITICAL, "beta", "beta LTV 86.38 % reached halt (85 %)",
                client_id="beta"),
        Finding(FindingCode.LEVERAGE_EXCEEDED, Severity.HIGH, "beta", f"leverage note {XSS}", client_id="beta"),
    ]
    with store.session() as s:
        repos.upsert_findings(s, findings, now=now - timedelta(minutes=5))
        halt_key = findings[4].key
        alert, _ = repos.ensure_alert(s, finding_key=halt_key, channel="slack", level="critical",
                                      now=now - timedelta(minutes=5))
        repos.transition_alert(s, alert.id or 0, "sent", now=now - timedelta(minutes=4))

    playbook = Playbook(store, {})
    episode = f"beta:halt:{(now - timedelta(minutes=5)).isoformat()}"
    reduce_only = ActionSpec("reduce_only", "beta", episode, "needs_approval", {"ltv": "0.8638"})
    notify = ActionSpec("notify_client", "beta", episode, "dry_run", {"ltv": "0.8638"})
    playbook.propose([reduce_only, notify], now=now - timedelta(minutes=4))

    # policy: copy the example policies, add alpha's vault destination, activate (carol proposes, dave approves)
    pdir = tmp / "policies"
    shutil.copytree(REPO / "policies", pdir)
    with (pdir / "allowlist.yaml").open("a", encoding="utf-8") as fh:
        fh.write(ALLOWLIST_ENTRY)
    versions = DbVersionStore(store)
    carol, dave = people["carol"], people["dave"]
    active = propose(versions, read_policy_dir(pdir), proposer=carol.name, proposer_id=carol.user_id,
                     role=carol.role, now=now, note="baseline")
    approve(versions, active.hash, approver=dave.name, approver_id=dave.user_id, role=dave.role, now=now)
    looser = read_policy_dir(pdir)
    looser["withdrawals.yaml"] = looser["withdrawals.yaml"].replace("per_tx_usd: 2000000", "per_tx_usd: 3000000")
    proposal = propose(versions, looser, proposer=carol.name, proposer_id=carol.user_id, role=carol.role, now=now,
                       note="raise the standard tier's ticket size")

    service = WithdrawalService(service_config(), store, policy_decider(load(pdir)), stub_context, gate=StubGate())
    big = service.request(account_id="alpha-vault", asset="USDC", amount="150000", destination=DEST,
                          requested_by=people["tom"])
    assert big.state == "requested", big.decision
    small = service.request(account_id="alpha-vault", asset="USDC", amount="2500.50", destination=DEST,
                            requested_by=people["tina"])
    assert small.state == "approved", small.decision
    return Seeded(store=store, tokens=tokens, policy_dir=pdir, service=service, playbook=playbook,
                  action_id=reduce_only.id, dry_run_action_id=notify.id, pending_withdrawal=big.withdrawal_id,
                  proposal_hash=proposal.hash, active_hash=active.hash, now=now)


def _valuation(client: str, collateral: Decimal, loan: Decimal, ltv: Decimal | None, blind: bool) -> dict[str, Any]:
    split = {"alpha": [("binance", Decimal("0.7")), ("evm", Decimal("0.3"))],
             "beta": [("bybit", Decimal("0.6")), ("dydx", Decimal("0.4"))],
             "gamma": [("binance", Decimal("1"))]}[client]
    return {
        "client": client, "tier": TIERS[client], "blind": blind,
        "blind_accounts": ["gamma-okx"] if blind else [],
        "loan": {"asset": "USDC", "principal": str(loan - INTEREST[client]), "accrued_interest": str(INTEREST[client]),
                 "owed_usd": str(loan), "rate": "0.08"},
        "metrics": {"gross_collateral": str(collateral), "haircut_collateral": str(collateral * Decimal("0.98")),
                    "equity": str(collateral - loan), "ltv": None if ltv is None else str(ltv),
                    "leverage": "2.4", "net_delta_ratio": "0.03"},
        "by_venue": {v: {"value": str(collateral * w), "haircut_value": str(collateral * w * Decimal("0.98"))}
                     for v, w in split},
        "positions": [] if client == "gamma" else [
            {"account": f"{client}-{split[0][0]}", "venue": split[0][0], "instrument": "BTC-USDT-PERP",
             "underlying": "BTC", "size": "-12.5", "price": "91000", "notional": "-1137500", "pnl": "-18250.40",
             "liquidation_price": "99500", "liquidation_distance": "0.0934"},
        ],
    }


def _stress(client: str, ltv: Decimal | None) -> list[dict[str, Any]]:
    if ltv is None:
        return [{"scenario": "crypto -30%", "ltv": None, "equity": None, "shortfall": None, "blind": True}]
    return [{"scenario": name, "ltv": str(ltv * f), "equity": str(Decimal(1000000) / f),
             "shortfall": str(max(Decimal(0), (ltv * f - 1) * 1000000)),
             "ltv_after_liquidation": str(ltv * f * Decimal("0.9")), "worst_asset": "BTC", "blind": False}
            for name, f in (("crypto -10%", Decimal("1.08")), ("crypto -30%", Decimal("1.31")),
                            ("venue default: largest", Decimal("1.45")))]


def _snapshots() -> list[tuple[str, str, str | None, str, bool, dict[str, Any], str | None]]:
    def cred(cid: str, caps: list[str], ip: bool | None, holder: str = "client") -> dict[str, Any]:
        return {"id": cid, "kind": "api_key", "holder": holder, "capabilities": caps, "ip_restricted": ip}

    return [
        ("alpha-binance", "binance", None, "alpha", True, {
            "balances": [{"asset": "USDT", "quantity": "6300000", "source": "futures"},
                         {"asset": "BTC", "quantity": "12.5", "source": "spot"}],
            "positions": [{"instrument": "BTCUSDT", "underlying": "BTC", "size": "-12.5", "entry_price": "90120.5",
                           "mark_price": "91000", "liquidation_price": "99500"}],
            "credentials": [cred("alpha-binance-trade", ["read", "trade_futures"], False),
                            cred("alpha-binance-monitor", ["read"], True, "monitor")]}, None),
        ("alpha-vault", "evm", "ethereum", "alpha", True, {
            "balances": [{"asset": "USDC", "quantity": "2000000", "source": "vault"}], "positions": [],
            "credentials": [{"id": "alpha-vault-approval", "kind": "erc20_approval", "holder": "client",
                             "capabilities": ["spend_allowance"], "ip_restricted": None}]}, None),
        ("beta-bybit", "bybit", None, "beta", True, {
            "balances": [{"asset": "USDT", "quantity": "1450000", "source": "unified"}],
            "positions": [{"instrument": "ETHUSDT", "underlying": "ETH", "size": "150", "entry_price": "3010",
                           "mark_price": "2890", "liquidation_price": "2410"}],
            "credentials": [cred("beta-bybit-key", ["read", "trade_futures", "withdraw"], False)]}, None),
        ("beta-dydx", "dydx", None, "beta", True, {
            "balances": [{"asset": "USDC", "quantity": "930000", "source": "subaccount 0"}],
            "positions": [{"instrument": "ETH-USD", "underlying": "ETH", "size": "-150", "entry_price": "3005",
                           "mark_price": "2890", "liquidation_price": "3600"}],
            "credentials": [{"id": "beta-dydx-auth-1", "kind": "dydx_authenticator", "holder": "client",
                             "capabilities": ["trade_futures"], "ip_restricted": None}]}, None),
        ("gamma-okx", "okx", None, "gamma", False, {"balances": [], "positions": [], "credentials": []},
         "okx did not answer within 5 s"),
    ]
