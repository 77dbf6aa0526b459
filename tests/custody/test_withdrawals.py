"""Custody end to end on anvil: request → approve → sign → vault transfer → confirmed; denials by
the agent and reverts by the vault; velocity; four-eyes; a crash between signing and broadcast
does not send twice; bad input changes nothing."""

from __future__ import annotations

import shutil

import pytest
from web3 import Web3

from primeguard.custody.context import LiveContext, policy_decider
from primeguard.custody.vault import vault_abi
from primeguard.custody.withdrawals import WithdrawalService
from primeguard.domain.decision import ReasonCode
from primeguard.domain.errors import InputError, SelfApprovalError
from primeguard.domain.identity import Actor
from primeguard.policy.loader import load
from primeguard.sandbox.chain import derived_account
from primeguard.sandbox.scenario import MAINNET_TOKENS
from primeguard.sandbox.vaults import TREASURY_KEY_INDEX
from primeguard.store import audit, repos
from primeguard.store.db import open_store
from primeguard.venues.evm.artifacts import contract_artifact

pytestmark = pytest.mark.chain

TOM = Actor(1, "tom", "treasury")  # the fixture creates these users, in this order
CAROL = Actor(2, "carol", "compliance")

DEST = "0x4b280EdCc946EAA52913262F098391Af6aA31751"
OLD = "0x506fEDd589E0BB429f2b312Dae2eDdd0a7c2F794"
THIEF = "0x000000000000000000000000000000000000BAd0"
USDC = MAINNET_TOKENS["USDC"][0]
WORLD = {
    "name": "custody",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": "gamma", "vault": {
        "limits": {"USDC": "10000000"}, "tokens": {"USDC": "2000000"},
        "allowlist": [{"asset": "USDC", "address": DEST}, {"asset": "USDC", "address": OLD}]}}],
}
ENTRIES = f"""
  - id: gamma-vault-usdc
    client: gamma
    venue: evm
    chain: ethereum
    asset: USDC
    address: "{DEST}"
    label: Gamma settlement wallet
    added_by: carol
    added_at: 2026-01-01T00:00:00Z
    expires_at: 2099-01-01T00:00:00Z
  - id: gamma-old-usdc
    client: gamma
    venue: evm
    chain: ethereum
    asset: USDC
    address: "{OLD}"
    label: Gamma retired wallet
    added_by: carol
    added_at: 2025-01-01T00:00:00Z
    expires_at: 2026-01-01T00:00:00Z
"""


@pytest.fixture
def custody(sandbox_factory, repo, tmp_path):
    sb = sandbox_factory(WORLD)
    pdir = tmp_path / "policies"
    shutil.copytree(repo / "policies", pdir)
    with (pdir / "allowlist.yaml").open("a") as fh:
        fh.write(ENTRIES)
    policy = load(pdir)
    cfg = sb.config()
    store = open_store(f"sqlite:///{tmp_path / 'custody.db'}", migrate=True)
    with store.session() as s:
        for who in (TOM, CAROL):
            assert repos.create_user(s, who.name, who.role)[0].id == who.user_id
    svc = WithdrawalService(cfg, store, policy_decider(policy), LiveContext(cfg, store, policy),
                            config_dir=sb.workdir)
    return sb, cfg, store, svc


def _usdc(sb, who: str) -> int:
    w3 = Web3(Web3.HTTPProvider(sb.chains["ethereum"].node.rpc_url))
    return w3.eth.contract(address=USDC, abi=contract_artifact("SandboxToken")["abi"]).functions.balanceOf(who).call()


def _withdrawn_events(sb, vault: str) -> int:
    w3 = Web3(Web3.HTTPProvider(sb.chains["ethereum"].node.rpc_url))
    return len(w3.eth.contract(address=vault, abi=vault_abi()).events.Withdrawn().get_logs(from_block=0))


def test_request_approve_sign_confirm(custody):
    sb, cfg, store, svc = custody
    vault = cfg.vaults[0]
    small = svc.request(account_id=vault.id, asset="USDC", amount="1500.25", destination=DEST, requested_by=TOM)
    assert small.state == "approved", small.decision.explanation  # below $100k: no second person needed
    big = svc.request(account_id=vault.id, asset="USDC", amount="150000", destination=DEST, requested_by=TOM)
    assert big.state == "requested" and big.decision.outcome.value == "needs_approval"
    with pytest.raises(SelfApprovalError, match="cannot approve"):
        svc.approve(big.withdrawal_id, approver=TOM)  # four eyes
    assert svc.approve(big.withdrawal_id, approver=CAROL).state == "approved"
    for r in (small, big):
        done = svc.execute(r.withdrawal_id)
        assert done.state == "confirmed", done
    assert _usdc(sb, DEST) == 151_500_250_000
    assert audit.verify(store).ok
    with store.session(readonly=True) as s:
        row = repos.get_withdrawal(s, big.withdrawal_id)
        assert row.state == "confirmed" and row.tx_hash and row.nonce is not None


def test_not_allowlisted_denied_by_agent_and_reverted_by_vault(custody):
    sb, cfg, _store, svc = custody
    vault = cfg.vaults[0]
    r = svc.request(account_id=vault.id, asset="USDC", amount="10", destination=THIEF, requested_by=TOM)
    assert r.state == "denied" and ReasonCode.NOT_ALLOWLISTED in r.decision.reasons
    assert THIEF in r.decision.explanation
    # Forced directly with the stolen treasury key: the chain refuses.
    w3 = Web3(Web3.HTTPProvider(sb.chains["ethereum"].node.rpc_url))
    contract = w3.eth.contract(address=vault.address, abi=vault_abi())
    key = derived_account(TREASURY_KEY_INDEX)[1]
    tx = contract.functions.withdraw(USDC, THIEF, 10, b"\x00" * 32).build_transaction({
        "from": derived_account(TREASURY_KEY_INDEX)[0], "gas": 200_000,
        "nonce": w3.eth.get_transaction_count(derived_account(TREASURY_KEY_INDEX)[0])})
    signed = w3.eth.account.sign_transaction(tx, key)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    assert receipt["status"] == 0
    assert _usdc(sb, THIEF) == 0


def test_velocity_limit_and_expired_entry(custody):
    _sb, cfg, _store, svc = custody
    vault = cfg.vaults[0]
    states = []
    for _ in range(3):  # gamma is tier "new": $250k per tx, $500k per day
        r = svc.request(account_id=vault.id, asset="USDC", amount="90000", destination=DEST, requested_by=TOM)
        states.append(r.state)
        if r.state == "approved":
            svc.execute(r.withdrawal_id)
    assert states == ["approved"] * 3  # $270k so far
    r = svc.request(account_id=vault.id, asset="USDC", amount="240000", destination=DEST, requested_by=TOM)
    assert r.state == "denied" and ReasonCode.LIMIT_VELOCITY in r.decision.reasons  # $510k > $500k
    old = svc.request(account_id=vault.id, asset="USDC", amount="5", destination=OLD, requested_by=TOM)
    assert old.state == "denied" and ReasonCode.ALLOWLIST_EXPIRED in old.decision.reasons


def test_crash_between_signing_and_broadcast_sends_once(custody):
    sb, cfg, store, svc = custody
    vault = cfg.vaults[0]
    r = svc.request(account_id=vault.id, asset="USDC", amount="700", destination=DEST, requested_by=TOM)
    crashed = svc.execute(r.withdrawal_id, crash_after_sign=True)
    assert crashed.state == "signed" and _withdrawn_events(sb, vault.address) == 0
    fresh = WithdrawalService(cfg, store, svc.decide, svc.context_for, config_dir=sb.workdir)
    assert fresh.execute(r.withdrawal_id).state == "confirmed"
    assert fresh.execute(r.withdrawal_id).state == "confirmed"  # idempotent
    assert _withdrawn_events(sb, vault.address) == 1
    assert _usdc(sb, DEST) == 700_000_000


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"destination": DEST.lower()[:-1] + "A"}, "checksum"),
    ({"destination": "0x0000000000000000000000000000000000000000"}, "zero address"),
    ({"amount": "0"}, "greater than zero"),
    ({"amount": "-5"}, "negative"),
    ({"amount": "1.0000001"}, "more than 6 decimal"),
    ({"amount": "NaN"}, "finite"),
    ({"asset": "DOGE"}, "unknown asset"),
    ({"account_id": "nobody"}, "unknown account"),
])
def test_bad_input_rejected_nothing_written(custody, kwargs, match):
    _sb, cfg, store, svc = custody
    args = {"account_id": cfg.vaults[0].id, "asset": "USDC", "amount": "10", "destination": DEST,
            "requested_by": TOM, **kwargs}
    with pytest.raises(InputError, match=match):
        svc.request(**args)
    with store.session(readonly=True) as s:
        assert repos.list_withdrawals(s) == []
