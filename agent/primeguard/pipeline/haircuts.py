"""Haircuts that follow volatility, live: the stored daily closes feed :mod:`primeguard.risk.volatility`
and the result replaces the listed haircut of each asset the policy's ``volatility`` rule covers.

The listed haircut is the floor. With too little history the policy decides: the floor
(``short_history: floor``) or the whole value (``full``: the asset counts for nothing), with a
``HAIRCUT_HISTORY_SHORT`` finding either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from primeguard.policy.policyset import PolicySet
from primeguard.risk.params import RiskParameters
from primeguard.risk.volatility import VolatilityHaircut, volatility_haircut
from primeguard.store.db import Store
from primeguard.store.history import price_closes

PriceHistory = Mapping[str, Sequence[tuple[datetime, Decimal]]]


def load_price_history(store: Store, policy: PolicySet | None, now: datetime
                       ) -> dict[str, list[tuple[datetime, Decimal]]]:
    """The stored daily closes of the assets the policy's volatility rule covers, over its window
    up to ``now`` (empty without a rule). Reads only."""
    spec = None if policy is None else policy.volatility
    if policy is None or spec is None:
        return {}
    with store.session(readonly=True) as s:
        return price_closes(s, policy.volatility_assets(), since=now - timedelta(days=spec.window_days + 1), until=now)


def volatility_haircuts(policy: PolicySet | None, history: PriceHistory | None, now: datetime
                        ) -> dict[str, VolatilityHaircut]:
    """Per covered asset, its haircut from ``history`` (missing history: short, see the module
    docstring). Empty without a policy or a volatility rule. Pure."""
    spec = None if policy is None else policy.volatility
    if policy is None or spec is None:
        return {}
    short = Decimal(1) if spec.short_history == "full" else None
    hist = history or {}
    return {a: volatility_haircut(a, policy.haircuts.get(a, policy.default_haircut), spec.k, hist.get(a, ()), now,
                                  window_days=spec.window_days, min_points=spec.min_points,
                                  short_history_haircut=short)
            for a in policy.volatility_assets()}


def with_volatility(params: RiskParameters, vols: Mapping[str, VolatilityHaircut]) -> RiskParameters:
    """``params`` with each covered asset's haircut replaced by its volatility haircut. Pure."""
    if not vols:
        return params
    return replace(params, haircuts=MappingProxyType({**params.haircuts, **{a: v.haircut for a, v in vols.items()}}))
