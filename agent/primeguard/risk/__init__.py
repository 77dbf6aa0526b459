"""Pure risk maths: no I/O, no clock, Decimal in every decision (docs/risk.md).

- :mod:`~primeguard.risk.pricing`: one conservative USD price per asset, with provenance.
- :mod:`~primeguard.risk.valuation`: one client's collateral, loan, LTV, delta, leverage, findings.
- :mod:`~primeguard.risk.interest`: loan interest, ACT/365, simple or compounded.
- :mod:`~primeguard.risk.ladder`: the escalation ladder with hysteresis and cooldown.
- :mod:`~primeguard.risk.stress`: exact stress scenarios and the whole-book float grid.
- :mod:`~primeguard.risk.portfolio`: the whole book per sweep (``revalue_book``, ``assess``).
- :mod:`~primeguard.risk.params`: what the policy tells the engine.
"""
