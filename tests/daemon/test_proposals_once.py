"""A ladder episode's actions are proposed to the store once per guardian: later sweeps in the same
episode do not write them again; a new guardian (a restart) proposes again and finds them there
(inserted once). A new episode has other action ids (the episode is part of the id:
tests/daemon/test_action_identity.py), so the memo never hides it."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from primeguard.daemon.guardian import Guardian
from primeguard.store import repos

pytestmark = pytest.mark.chain

WORLD = {
    "name": "proposals-once",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": "firm-a", "loan": {"principal": "15000"}, "wallets": [{"tokens": {"WETH": "10"}}]}],
}


def _spy(g: Guardian) -> list[list[str]]:
    calls: list[list[str]] = []
    real = g.playbook.propose

    def propose(specs, **kwargs):
        calls.append(sorted(s.id for s in specs))
        return real(specs, **kwargs)

    g.playbook.propose = propose  # type: ignore[method-assign]
    return calls


def test_an_episode_is_proposed_once_per_guardian(sandbox_factory):
    sb = sandbox_factory(WORLD)
    g = Guardian(sb.config(), config_dir=sb.workdir)
    calls = _spy(g)
    sb.set_price("ETH", Decimal("2200"))  # 74 % LTV: margin call under the shipped tier
    asyncio.run(g.sweep("test"))
    assert len(calls) == 1 and calls[0]
    first = calls[0]
    sb.refresh_prices()
    asyncio.run(g.sweep("test"))  # same episode: nothing to write
    assert len(calls) == 1
    with g.store.session(readonly=True) as s:
        stored = [a.id for a in repos.list_actions(s, client_id="firm-a", limit=100)]
    assert stored == first

    again = Guardian(sb.config(), config_dir=sb.workdir)  # a restart: proposes, the store has them
    calls2 = _spy(again)
    sb.refresh_prices()
    asyncio.run(again.sweep("test"))
    assert calls2 == [first]
    with again.store.session(readonly=True) as s:
        assert len(repos.list_actions(s, client_id="firm-a", limit=100)) == len(stored)
