"""Shared builders for policy tests: the example policies as files, small policies from dicts."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from primeguard.domain.model import VenueKind
from primeguard.policy import ApprovalGiven, WithdrawalContext, WithdrawalRequest
from primeguard.policy.loader import read_policy_dir

REPO = Path(__file__).resolve().parents[3]
POLICIES = REPO / "policies"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ALPHA_COLD = "0x4b280EdCc946EAA52913262F098391Af6aA31751"
GAMMA_OKX = "0xfAcf69eA7094E0BE786F09c893463559313Bc663"


def example_files() -> dict[str, str]:
    return read_policy_dir(POLICIES)


def request(**over: Any) -> WithdrawalRequest:
    base: dict[str, Any] = dict(id="w1", client_id="alpha", account_id="alpha-binance", venue=VenueKind.BINANCE,
                                chain="ethereum", asset="USDC", amount=Decimal(1000), destination=ALPHA_COLD,
                                requested_by="bob", requested_at=NOW)
    base.update(over)
    return WithdrawalRequest(**base)


def context(**over: Any) -> WithdrawalContext:
    base: dict[str, Any] = dict(usd_price=Decimal(1), price_age_s=10, recent=(), ltv=Decimal("0.5"),
                                post_ltv=Decimal("0.5"), ladder_state="normal", client_blind=False,
                                venue_whitelisted=True, approvals=(), post_loan_to_collateral=Decimal("0.5"),
                                post_stress_shortfall=Decimal(0))
    base.update(over)
    return WithdrawalContext(**base)


def approvals(*pairs: tuple[str, str]) -> tuple[ApprovalGiven, ...]:
    return tuple(ApprovalGiven(a, r) for a, r in pairs)


# --- a small policy built from dicts (for lint, diff and property tests) ---------------------------


def small_docs() -> dict[str, dict[str, Any]]:
    """A minimal complete policy: one client per tier, two allowlist entries, limits, approvals."""
    return copy.deepcopy({
        "risk.yaml": {
            "version": 1, "kind": "risk_limits", "id": "risk", "haircuts": "hair",
            "oracle": {"max_age_s": 3600, "max_deviation": "0.02"}, "default_tier": "new",
            "tiers": [
                {"id": "new", "max_loan_to_collateral": 1,
                 "ladder": {"warn": "0.6", "margin_call": "0.7", "halt": "0.8", "liquidate": "0.85"}},
                {"id": "pro", "max_loan_to_collateral": 2, "min_track_record_days": 30,
                 "ladder": {"warn": "0.75", "margin_call": "0.8", "halt": "0.85", "liquidate": "0.9"}},
            ],
            "clients": [{"id": "alpha", "tier": "pro"}, {"id": "gamma", "tier": "new"}],
        },
        "hair.yaml": {"version": 1, "kind": "haircuts", "id": "hair", "default": "0.5",
                      "assets": [{"asset": "USDC", "haircut": 0}, {"asset": "ETH", "haircut": "0.1"}]},
        "allow.yaml": {
            "version": 1, "kind": "withdrawal_allowlist", "id": "allow", "timelock_s": 0,
            "entries": [
                {"id": "e-alpha", "client": "alpha", "venue": "binance", "chain": "ethereum", "assets": ["USDC", "ETH"],
                 "address": ALPHA_COLD, "label": "alpha cold", "added_by": "carol",
                 "added_at": "2026-01-01T00:00:00Z", "expires_at": "2027-06-01T00:00:00Z"},
                {"id": "e-gamma", "client": "gamma", "venue": "okx", "chain": "ethereum", "asset": "USDC",
                 "address": GAMMA_OKX, "label": "gamma okx", "added_by": "carol",
                 "added_at": "2026-01-01T00:00:00Z", "expires_at": "2027-06-01T00:00:00Z"},
            ],
        },
        "limits.yaml": {
            "version": 1, "kind": "withdrawal_limits", "id": "limits", "risk_limits": "risk", "approvals": "appr",
            "allowlists": ["allow"],
            "guards": {"price": {"id": "g-price", "max_age_s": 120},
                       "ladder": {"id": "g-ladder", "allow_states": ["normal", "warn"]},
                       "ltv": {"id": "g-ltv", "max_post_ltv": "warn"},
                       "venue_whitelist": {"id": "g-wl", "unverifiable_venues": ["okx"]}},
            "limits": [
                {"id": "l-all", "per_tx_usd": 1000000, "velocity": {"window_s": 86400, "max_usd": 2000000}},
                {"id": "l-new", "scope": {"tiers": ["new"]}, "per_tx_usd": 100000},
                {"id": "l-burst", "velocity": {"window_s": 3600, "max_usd": 500000}, "shadow": True},
            ],
        },
        "appr.yaml": {"version": 1, "kind": "approvals", "id": "appr", "rules": [
            {"id": "a-50k", "above_usd": 50000, "required": 1, "roles": ["treasury", "compliance"]},
            {"id": "a-500k", "above_usd": 500000, "required": 2, "roles": ["compliance"]},
        ]},
    })


def to_files(docs: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: yaml.safe_dump(doc, sort_keys=False) for name, doc in docs.items()}
