"""``primeguard tiers review``: every client's track record from the stored history, checked against
the policy's tier requirements (:mod:`primeguard.risk.eligibility`). Reads only: a proposed change
of tier is a policy change, proposed and approved like any other (``policy propose`` / ``approve``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from primeguard.config.schema import PrimeguardConfig
from primeguard.domain.errors import PolicyError
from primeguard.policy.policyset import PolicySet
from primeguard.risk.eligibility import DEFAULT_MAX_GAP, TierReview, review
from primeguard.store.db import Store
from primeguard.store.history import client_history

TIERS_REVIEW_SCHEMA = "primeguard.tiers_review/1"


@dataclass(frozen=True)
class TiersReport:
    """The review of every client at ``as_of`` under the policy ``policy_hash``."""

    as_of: datetime
    policy_hash: str
    lookback_days: int
    reviews: tuple[TierReview, ...]

    def review_of(self, client: str) -> TierReview | None:
        return next((r for r in self.reviews if r.client == client), None)

    def to_json_dict(self) -> dict[str, Any]:
        return {"schema": TIERS_REVIEW_SCHEMA, "as_of": self.as_of.isoformat(), "policy": self.policy_hash,
                "lookback_days": self.lookback_days, "clients": [r.to_json_dict() for r in self.reviews],
                "proposals": [{"client": r.client, "action": r.action, "from": r.tier, "to": r.proposed_tier}
                              for r in self.reviews if r.action != "hold"]}


def lookback_days(policy: PolicySet) -> int:
    """How far back the record looks: the longest tier requirement, at least one day."""
    return max([1, *(r.min_days for r in policy.tier_requirements())])


def review_tiers(cfg: PrimeguardConfig | None, store: Store, policy: PolicySet | None, now: datetime,
                 *, clients: list[str] | None = None) -> TiersReport:
    """Review the policy's and the config's clients (or ``clients``) from the store's history at ``now``.

    Raises:
        PolicyError: no policy is in force (nothing to review against).
    """
    if policy is None:
        raise PolicyError("no policy in force: tiers cannot be reviewed (fail closed)")
    configured = {c.id for c in cfg.clients} if cfg is not None else set()
    ids = clients if clients is not None else sorted({c.id for c in policy.risk.clients} | configured)
    reqs = policy.tier_requirements()
    days = lookback_days(policy)
    since = now - timedelta(days=days) - DEFAULT_MAX_GAP
    out = []
    with store.session(readonly=True) as s:
        for cid in ids:
            points = client_history(s, cid, since=since, until=now)
            out.append(review(cid, policy.tier_of(cid), reqs, points, now, since=policy.client_since(cid)))
    return TiersReport(now, policy.hash, days, tuple(out))
