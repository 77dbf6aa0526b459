"""The oracle fast path's evaluation with the ladder screen (``evaluate(ladder_bases=...)``): a
client whose float LTV at the new prices is certainly on its rung keeps its status without an
exact valuation; a client on a band edge is valued exactly and gets the rung of the all-exact
path; every client's status is that of the all-exact path."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal as D  # noqa: N817
from pathlib import Path

from primeguard.domain.model import Balance
from primeguard.domain.observation import Observation
from primeguard.pipeline.evaluate import FALLBACK_PARAMS, Evaluation, evaluate
from tests.bench.sweep_world import NOW, build


def moved(obs: Observation, asset: str, factor: D, seconds: int = 5) -> Observation:
    """``obs`` a few seconds later with every quote of ``asset`` times ``factor`` (an oracle round)."""
    prices = tuple(replace(q, price=q.price * factor) if q.asset == asset else q for q in obs.prices)
    return replace(obs, taken_at=obs.taken_at + timedelta(seconds=seconds), prices=prices)


def based(cfg, obs: Observation) -> Evaluation:
    """An exact evaluation of ``obs`` from the rungs of a first one (a daemon's steady state: the
    rungs' calm-run records set, as after any sweep but the first)."""
    first = evaluate(cfg, obs, policy=None, ladder={}, peaks={}, with_stress=False)
    return evaluate(cfg, obs, policy=None, ladder=first.ladder, peaks={}, with_stress=False)


def fast_and_exact(cfg, before: Observation, after: Observation) -> tuple[Evaluation, Evaluation]:
    """The fast path's evaluation of ``after`` (bases and rungs from an exact one of ``before``) and
    the all-exact evaluation of ``after`` from the same rungs."""
    base = based(cfg, before)
    kw = dict(policy=None, ladder=base.ladder, peaks={}, with_stress=False)
    return (evaluate(cfg, after, ladder_bases=base.valuations, **kw),  # type: ignore[arg-type]
            evaluate(cfg, after, **kw))  # type: ignore[arg-type]


def test_far_clients_keep_their_rung_without_an_exact_valuation(tmp_path: Path) -> None:
    w = build(6, tmp_path)
    fast, exact = fast_and_exact(w.cfg, w.obs, moved(w.obs, "ETH", D("0.9")))
    assert set(fast.ladder_screened) == set(exact.valuations)  # all six settled on floats
    assert not fast.valuations and not fast.moves and not [f for f in fast.findings if f.client_id]
    assert fast.ladder == exact.ladder
    for cid, x in fast.ladder_screened.items():
        assert abs(x - float(exact.valuations[cid].ltv)) <= 1e-9 * float(exact.valuations[cid].ltv)


def test_a_client_on_a_band_edge_is_valued_exactly_and_keeps_the_exact_rung(tmp_path: Path) -> None:
    w = build(6, tmp_path)
    cid = "c00004"  # normal, LTV ~0.31 after the move
    after = moved(w.obs, "ETH", D("0.9"))
    probe = evaluate(w.cfg, after, policy=None, ladder={}, peaks={}, with_stress=False).valuations[cid]
    usdc = probe.context.table["USDC"].high
    edge = FALLBACK_PARAMS.ladder.warn - FALLBACK_PARAMS.ladder.hysteresis  # the warn rung's exit
    # A USDC debt on its Binance account that puts the LTV after the move on that edge (to 1e-12 USDC).
    debt = ((probe.loan / edge - probe.haircut_collateral) / usdc).quantize(D("1e-12"))
    assert debt < 0

    def with_debt(obs: Observation) -> Observation:
        return replace(obs, snapshots=tuple(
            replace(s, balances=(*s.balances, Balance(s.account.id, "USDC", debt, NOW, "test")))
            if s.account.id == f"{cid}-binance" else s for s in obs.snapshots))

    fast, exact = fast_and_exact(w.cfg, with_debt(w.obs), with_debt(after))
    assert abs(exact.valuations[cid].ltv - edge) < D("1e-12")
    assert cid not in fast.ladder_screened and set(fast.valuations) == {cid}  # only it was valued exactly
    assert fast.valuations[cid].ltv == exact.valuations[cid].ltv
    assert len(fast.ladder_screened) == 5
    assert fast.ladder == exact.ladder


def test_a_changed_book_an_unpriced_asset_or_no_rung_take_the_exact_path(tmp_path: Path) -> None:
    w = build(3, tmp_path)
    after = moved(w.obs, "ETH", D("0.95"))
    base = based(w.cfg, w.obs)
    kw = dict(policy=None, peaks={}, with_stress=False, ladder_bases=base.valuations)
    # A balance moved since the base was valued: that client's book is not the base's.
    grown = replace(after, snapshots=tuple(
        replace(s, balances=tuple(replace(b, quantity=b.quantity + 1) for b in s.balances))
        if s.account.id == "c00001-binance" else s for s in after.snapshots))
    ev = evaluate(w.cfg, grown, ladder=base.ladder, **kw)  # type: ignore[arg-type]
    assert set(ev.valuations) == {"c00001"} and set(ev.ladder_screened) == {"c00000", "c00002"}
    # No rung held yet (a new client): exact.
    ev = evaluate(w.cfg, after, ladder={}, **kw)  # type: ignore[arg-type]
    assert not ev.ladder_screened and len(ev.valuations) == 3
    # ETH without any price now: every ETH holder is blind on the exact path, never screened.
    no_eth = replace(after, prices=tuple(q for q in after.prices if q.asset != "ETH"))
    ev = evaluate(w.cfg, no_eth, ladder=base.ladder, **kw)  # type: ignore[arg-type]
    assert not ev.ladder_screened and all(v.blind for v in ev.valuations.values())
