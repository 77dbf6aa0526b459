"""Defect N.3: an approved withdrawal could change under its approval. Approvals are bound to a
digest of (account, chain, asset, base units, destination); execute recomputes it from the row and
from the hash-chained ``withdrawal.requested`` entry and sends nothing on any difference: the
withdrawal fails with the reason recorded and audited. On anvil (vault) and the Binance simulator
(CEX via ccxt)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from web3 import Web3

from primeguard.config import load_config
from primeguard.custody.context import LiveContext, policy_decider
from primeguard.custody.vault import vault_abi
from primeguard.custody.withdrawals import WithdrawalService
from primeguard.domain.errors import ApprovalDigestMismatch, ApprovalError
from primeguard.policy.loader import load
from primeguard.store import audit, repos
from primeguard.store.db import Store, open_store
from primeguard.store.identity import actor_of
from tests.clitools import run_cli
from tests.conftest import REPO
from tests.security.world import DEST, OTHER, SecurityWorld, build_world

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecurityWorld]:
    yield from build_world(tmp_path_factory.mktemp("digest"), with_users=False)


@pytest.fixture(autouse=True)
def _fresh_feeds(world) -> None:
    world.sb.refresh_prices()  # the module's world lives minutes on a loaded machine: feeds stay inside their age limit


@pytest.fixture(scope="module")
def setup(world):
    cfg = load_config(world.config)
    store = open_store(world.store_url, migrate=True)
    policy = load(world.policy_dir)
    svc = WithdrawalService(cfg, store, policy_decider(policy), LiveContext(cfg, store, policy),
                            config_dir=world.config.parent)
    people = {}
    with store.session() as s:
        for name, role in (("tom", "treasury"), ("carol", "compliance")):
            row, token = repos.create_user(s, name, role)
            people[name] = (actor_of(row), token)
    yield svc, store, people
    store.close()


def _events(world: SecurityWorld, vault: str) -> int:
    w3 = Web3(Web3.HTTPProvider(world.sb.chains["ethereum"].node.rpc_url))
    return len(w3.eth.contract(address=vault, abi=vault_abi()).events.Withdrawn().get_logs(from_block=0))


def _tamper(store: Store, table: str, wid: str, column: str, **values: object) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    with store.session() as s:
        s.execute(sa.text(f"UPDATE {table} SET {sets} WHERE {column} = :wid"), {**values, "wid": wid})


def _refused_and_failed(svc, store, wid: str, world: SecurityWorld) -> None:
    vault = svc.cfg.vaults[0].address
    before = _events(world, vault)
    with pytest.raises(ApprovalDigestMismatch, match="nothing was sent"):
        svc.execute(wid)
    assert _events(world, vault) == before
    with store.session(readonly=True) as s:
        row = repos.get_withdrawal(s, wid)
        assert row.state == "failed" and "approval digest mismatch" in row.error and row.tx_hash is None
        assert [e.kind for e in audit.entries(s, subject=wid, kind="withdrawal.failed")] == ["withdrawal.failed"]
    assert svc.execute(wid).state == "failed"  # and it stays failed: nothing is ever sent for it


def test_amount_raised_after_automatic_approval(world, setup):
    svc, store, people = setup
    r = svc.request(account_id="gamma-vault-ethereum", asset="USDC", amount="2000", destination=DEST,
                    requested_by=people["tom"][0])
    assert r.state == "approved", r.decision.explanation
    _tamper(store, "withdrawals", r.withdrawal_id, "id", amount="9000")
    _refused_and_failed(svc, store, r.withdrawal_id, world)


@pytest.mark.parametrize("change", [{"amount": "190000"}, {"destination": OTHER}, {"asset": "ETH"}])
def test_edit_after_second_person_approved(world, setup, change):
    svc, store, people = setup
    r = svc.request(account_id="gamma-vault-ethereum", asset="USDC", amount="150000", destination=DEST,
                    requested_by=people["tom"][0])
    assert r.state == "requested"
    assert svc.approve(r.withdrawal_id, approver=people["carol"][0]).state == "approved"
    _tamper(store, "withdrawals", r.withdrawal_id, "id", **change)
    _refused_and_failed(svc, store, r.withdrawal_id, world)


def test_consistent_forgery_of_row_and_approvals_is_caught_by_the_audit_entry(world, setup):
    svc, store, people = setup
    r = svc.request(account_id="gamma-vault-ethereum", asset="USDC", amount="150000", destination=DEST,
                    requested_by=people["tom"][0])
    svc.approve(r.withdrawal_id, approver=people["carol"][0])
    forged = svc.digest_of("gamma-vault-ethereum", "ethereum", "USDC", "190000", DEST)  # what an insider can compute
    _tamper(store, "withdrawals", r.withdrawal_id, "id", amount="190000", approval_digest=forged)
    _tamper(store, "withdrawal_approvals", r.withdrawal_id, "withdrawal_id", digest=forged)
    _refused_and_failed(svc, store, r.withdrawal_id, world)


def test_a_changed_request_cannot_be_approved(world, setup):
    svc, store, people = setup
    r = svc.request(account_id="gamma-vault-ethereum", asset="USDC", amount="150000", destination=DEST,
                    requested_by=people["tom"][0])
    _tamper(store, "withdrawals", r.withdrawal_id, "id", destination=OTHER)
    with pytest.raises(ApprovalError, match="does not match"):
        svc.approve(r.withdrawal_id, approver=people["carol"][0])
    with store.session(readonly=True) as s:
        assert repos.list_approvals(s, r.withdrawal_id) == []


def test_cli_execute_refuses(world, setup):
    svc, store, people = setup
    r = svc.request(account_id="gamma-vault-ethereum", asset="USDC", amount="2000", destination=DEST,
                    requested_by=people["tom"][0])
    _tamper(store, "withdrawals", r.withdrawal_id, "id", amount="9000")
    vault = svc.cfg.vaults[0].address
    before = _events(world, vault)
    out = run_cli("withdraw", "execute", r.withdrawal_id, "--config", str(world.config), cwd=REPO,
                  token=people["tom"][1])
    assert out.returncode == 2 and "nothing was sent" in " ".join(out.stderr.split()), out.stdout + out.stderr
    assert _events(world, vault) == before
    with store.session(readonly=True) as s:
        assert repos.get_withdrawal(s, r.withdrawal_id).state == "failed"


LISTED = "0x4b280EdCc946EAA52913262F098391Af6aA31751"
CEX_WORLD = {
    "name": "cex-digest",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400},
              {"asset": "USDT", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": "alpha", "cex": [{
        "venue": "binance", "spot": {"USDT": "500000"},
        "keys": [{"id": "alpha-trading", "holder": "client", "spot": True, "ip_whitelist": ["127.0.0.1"]},
                 {"id": "pb-ops", "holder": "operator", "spot": True, "withdraw": True,
                  "ip_whitelist": ["127.0.0.1"]}],
        "whitelist": [{"coin": "USDT", "address": LISTED, "label": "Alpha cold"}]}]}],
}


def test_cex_withdrawal_edited_after_approval_is_not_sent(sandbox_factory, tmp_path: Path):
    sb = sandbox_factory(CEX_WORLD)
    cfg = sb.config()
    policy = load(REPO / "policies")
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}", migrate=True)
    svc = WithdrawalService(cfg, store, policy_decider(policy), LiveContext(cfg, store, policy),
                            config_dir=sb.workdir)
    with store.session() as s:
        tom = actor_of(repos.create_user(s, "tom", "treasury")[0])
    r = svc.request(account_id=cfg.cex_accounts[0].id, asset="USDT", amount="1000", destination=LISTED,
                    requested_by=tom)
    assert r.state == "approved", r.decision.explanation
    _tamper(store, "withdrawals", r.withdrawal_id, "id", amount="9000")
    with pytest.raises(ApprovalDigestMismatch):
        svc.execute(r.withdrawal_id)
    sim = sb.cex.state("binance")
    assert [w for a in sim.accounts.values() for w in a.withdrawals] == []
    with store.session(readonly=True) as s:
        assert repos.get_withdrawal(s, r.withdrawal_id).state == "failed"
    store.close()
