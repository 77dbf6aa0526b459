"""Issue I lever: an unlimited approval to an unknown spender becomes a revoke action that waits
for a person; once approved, the custody key sends approve(spender, 0) and the next scan no
longer finds the approval. Run twice, it changes nothing."""

from __future__ import annotations

import asyncio

import pytest

from primeguard.daemon.guardian import Guardian
from primeguard.store import repos
from primeguard.store.identity import actor_of

pytestmark = pytest.mark.chain

SPENDER = "0x000000000000000000000000000000000000bEEF"
WORLD = {
    "name": "revoke",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": "gamma", "wallets": [{"custody_key": True, "tokens": {"USDC": "100"},
                                             "approvals": [{"token": "USDC", "spender": SPENDER}]}],
                 "vault": {"limits": {"USDC": "10"}}}],
}


def test_revoke_needs_approval_then_revokes_once(sandbox_factory, tmp_path):
    sb = sandbox_factory(WORLD)
    cfg = sb.config()
    cfg = cfg.model_copy(update={"store": cfg.store.model_copy(update={"url": f"sqlite:///{tmp_path / 'r.db'}"})})
    g = Guardian(cfg, config_dir=sb.workdir)

    async def flow():
        await g.capability_scan()
        await g.playbook.run_ready()
        with g.store.session(readonly=True) as s:
            actions = [a for a in repos.list_actions(s) if a.kind == "revoke_approval"]
        assert [a.state for a in actions] == ["proposed"]  # waits for a person
        with g.store.session() as s:
            carol = actor_of(repos.create_user(s, "carol", "compliance")[0])
        g.playbook.approve(actions[0].id, approver=carol)
        done = await g.playbook.run_ready()
        await g.capability_scan()  # the same approval is gone: nothing new is proposed
        return actions[0].id, done

    action_id, done = asyncio.run(flow())
    assert [(a.id, a.state, a.result["result"]) for a in done] == [(action_id, "done", "revoked")]
    assert not [c for c in g.scan_credentials if c.kind == "erc20_approval"]
    with g.store.session(readonly=True) as s:
        assert len([a for a in repos.list_actions(s) if a.kind == "revoke_approval"]) == 1
