"""Playbook actions: one row per action id, modes respected, a crash mid-action resumes without
acting twice, and the vault pause lever really pauses the vault on anvil (guardian key only)."""

from __future__ import annotations

import asyncio

import pytest
from web3 import Web3

from primeguard.custody.vault import vault_abi
from primeguard.playbooks.engine import ActionSpec, Playbook
from primeguard.playbooks.levers import vault_pause_lever
from primeguard.store import repos
from primeguard.store.db import open_store
from primeguard.store.identity import actor_of

pytestmark = pytest.mark.chain

WORLD = {
    "name": "pb",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": "firm-a", "vault": {"limits": {"USDC": "1000"}, "tokens": {"USDC": "5000"}}}],
}


def _paused_events(sb, cfg) -> int:
    node = sb.chains["ethereum"].node
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    vault = w3.eth.contract(address=cfg.vaults[0].address, abi=vault_abi())
    return len(vault.events.Paused().get_logs(from_block=0))


def test_pause_lever_once_and_resume_after_crash(sandbox_factory, tmp_path):
    sb = sandbox_factory(WORLD)
    cfg = sb.config()
    store = open_store(f"sqlite:///{tmp_path / 'pb.db'}", migrate=True)
    levers = {"halt_vault": vault_pause_lever(cfg)}
    spec = ActionSpec("halt_vault", "firm-a", episode="firm-a:halt:1", mode="automatic")
    book = Playbook(store, levers)
    assert book.propose([spec, spec]) == [spec.id]
    assert book.propose([spec]) == []  # same episode, same action: never twice
    # Simulate a crash right after the action was marked executing, before the lever ran.
    with store.session() as s:
        repos.transition_action(s, spec.id, "executing", expected="proposed", actor="daemon")
    restarted = Playbook(open_store(f"sqlite:///{tmp_path / 'pb.db'}"), levers)
    done = asyncio.run(restarted.run_ready())
    assert [(a.id, a.state) for a in done] == [(spec.id, "done")]
    assert done[0].result == {"vaults": {"firm-a-vault-ethereum": "paused"}}
    assert _paused_events(sb, cfg) == 1
    # Running the lever again (e.g. a second episode) finds it paused and does nothing.
    again = ActionSpec("halt_vault", "firm-a", episode="firm-a:halt:2", mode="automatic")
    book.propose([again])
    second = asyncio.run(book.run_ready())
    assert second[0].result == {"vaults": {"firm-a-vault-ethereum": "already_paused"}}
    assert _paused_events(sb, cfg) == 1


def test_modes(sandbox_factory, tmp_path):
    sb = sandbox_factory(WORLD)
    cfg = sb.config()
    store = open_store(f"sqlite:///{tmp_path / 'pb.db'}", migrate=True)
    book = Playbook(store, {"halt_vault": vault_pause_lever(cfg)})
    dry = ActionSpec("halt_vault", "firm-a", episode="e1", mode="dry_run")
    needs = ActionSpec("halt_vault", "firm-a", episode="e2", mode="needs_approval")
    book.propose([dry, needs])
    assert asyncio.run(book.run_ready()) == []
    assert _paused_events(sb, cfg) == 0
    with store.session() as s:
        carol = actor_of(repos.create_user(s, "carol", "compliance")[0])
    book.approve(needs.id, approver=carol)
    ran = asyncio.run(book.run_ready())
    assert [(a.id, a.state, a.approved_by) for a in ran] == [(needs.id, "done", "carol")]
    with store.session() as s:
        assert repos.get_action(s, dry.id).state == "proposed"
    assert _paused_events(sb, cfg) == 1
