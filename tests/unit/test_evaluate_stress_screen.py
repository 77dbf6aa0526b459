"""The sweep's evaluation on the float screen (``evaluate``, the daemon's path): clients far from
every threshold skip the exact Decimal stress; a client on a band gets it, identical to before;
the findings are those of the all-exact path."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from decimal import Decimal as D  # noqa: N817
from pathlib import Path

from primeguard.domain.model import Balance
from primeguard.domain.observation import Observation
from primeguard.pipeline.evaluate import Evaluation, evaluate
from tests.bench.sweep_world import NOW, build


def both(cfg, obs: Observation) -> tuple[Evaluation, Evaluation]:
    """The daemon's evaluation (screen first) and the all-exact one, without a policy (strict ladder)."""
    fast = evaluate(cfg, obs, policy=None, ladder={}, peaks={})
    exact = evaluate(cfg, obs, policy=None, ladder={}, peaks={}, screen_stress_first=False)
    return fast, exact


def findings(ev: Evaluation) -> list[dict]:
    return [f.to_json() for f in ev.findings]


def test_clients_far_from_every_threshold_skip_the_exact_stress(tmp_path: Path) -> None:
    w = build(6, tmp_path)
    fast, exact = both(w.cfg, w.obs)
    assert Counter(fast.stress_method.values()) == {"float_screen": 6}  # no exact stress ran
    assert Counter(exact.stress_method.values()) == {"exact": 6}
    assert findings(fast) == findings(exact)
    for cid, rows in fast.stress.items():
        assert [r["scenario"] for r in rows] == [r["scenario"] for r in exact.stress[cid]]
        assert all(r["method"] == "float_screen" and "equity" not in r for r in rows)
        assert fast.stress_tolerance_usd[cid] > 0


def test_a_client_on_a_band_under_stress_gets_the_exact_results_of_the_old_path(tmp_path: Path) -> None:
    w = build(6, tmp_path)
    _, before = both(w.cfg, w.obs)
    cid = "c00002"
    r = next(x for x in before.stress[cid] if x["scenario"] == "all risk assets -50%")
    coll, owed = D(r["haircut_collateral"]), D(r["loan"])
    usdc = before.valuations[cid].context.table["USDC"].high
    # A USDC debt on its Binance account that puts the -50 % LTV on the 0.5 band (to 1e-12 USDC).
    debt = ((owed / D("0.5") - coll) / usdc).quantize(D("1e-12"))
    assert debt < 0
    snaps = tuple(replace(s, balances=(*s.balances, Balance(s.account.id, "USDC", debt, NOW, "test")))
                  if s.account.id == f"{cid}-binance" else s for s in w.obs.snapshots)
    obs = replace(w.obs, snapshots=snaps)
    fast, exact = both(w.cfg, obs)
    on_band = next(x for x in exact.stress[cid] if x["scenario"] == "all risk assets -50%")
    assert abs(D(on_band["ltv"]) - D("0.5")) < D("1e-15")
    assert fast.stress_method[cid] == "exact"
    assert fast.stress[cid] == exact.stress[cid]  # every figure, Decimal strings, as before
    assert Counter(fast.stress_method.values()) == {"float_screen": 5, "exact": 1}
    assert findings(fast) == findings(exact)


def test_the_metric_row_says_how_stress_was_computed(tmp_path: Path) -> None:
    from primeguard.pipeline.outcome import persist_sweep
    from primeguard.store import open_store, repos

    w = build(3, tmp_path)
    fast, _ = both(w.cfg, w.obs)
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}", migrate=True)
    try:
        persist_sweep(store, sweep_id="s1", obs=w.obs, ev=fast, findings=list(fast.findings), clients=None, peaks={})
        with store.session(readonly=True) as s:
            extra = repos.latest_metric(s, "c00000").extra
    finally:
        store.close()
    assert extra["stress_method"] == "float_screen" and D(extra["stress_margin_usd"]) > 0
    assert all(r["method"] == "float_screen" and r["ltv_approx"] is not None and "shortfall" not in r
               for r in extra["stress"])
