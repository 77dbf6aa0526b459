"""Issue M levers proposed by the guardian: the capability scan finds an EIP-7702 delegation to an
unknown delegate, an unlimited Permit2 allowance to an unknown spender and an NFT operator on the
custody wallet; each becomes one ``revoke_grant`` action that waits for a person (ids from the
grant: scanning again proposes nothing new). Approved, the custody key clears the delegation,
locks Permit2 down and turns the operator off; the next scan finds none of them and proposes
nothing. On a real anvil (prague: a real authorization signed by ``cast send --auth``), Permit2
from its published bytecode, an OpenZeppelin ERC-721."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from primeguard.daemon.guardian import Guardian
from primeguard.sandbox.chain import derived_account
from primeguard.sandbox.published import permit2_runtime
from primeguard.sandbox.toolchain import built_artifact, find_tool
from primeguard.sandbox.vaults import TREASURY_KEY_INDEX
from primeguard.store import repos
from primeguard.store.identity import actor_of
from primeguard.venues.evm.grants import OPERATOR_ABI, PERMIT2, PERMIT2_ABI

pytestmark = pytest.mark.chain

P2_SPENDER = "0x000000000000000000000000000000000000D00d"
OPERATOR = "0x0000000000000000000000000000000000000BA1"
WORLD = {
    "name": "revoke-grants",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": "gamma", "wallets": [{"custody_key": True, "tokens": {"USDC": "100"}}],
                 "vault": {"limits": {"USDC": "10"}}}],
}


def _send(w3: Web3, fn: Any, sender: str) -> None:
    assert w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))["status"] == 1


def _grant_everything(rpc_url: str, usdc: str) -> dict[str, str]:
    """From the custody wallet: a 7702 delegation to a sweeper, an unlimited Permit2 allowance and
    an NFT operator. Returns the addresses the test checks."""
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    owner, key = derived_account(TREASURY_KEY_INDEX)
    me = w3.eth.accounts[0]
    w3.provider.make_request("anvil_setCode", [PERMIT2, permit2_runtime()])  # type: ignore[arg-type]
    w3.provider.make_request("anvil_impersonateAccount", [owner])  # type: ignore[arg-type]
    nft_art = built_artifact("OzNft")
    tx = w3.eth.contract(abi=nft_art["abi"], bytecode=nft_art["bytecode"]).constructor().transact({"from": me})
    nft = w3.eth.contract(address=w3.eth.wait_for_transaction_receipt(tx)["contractAddress"], abi=nft_art["abi"])
    _send(w3, nft.functions.mint(owner, 1), me)
    _send(w3, w3.eth.contract(address=nft.address, abi=OPERATOR_ABI).functions.setApprovalForAll(OPERATOR, True),
          owner)
    far = w3.eth.get_block("latest")["timestamp"] + 365 * 86400
    _send(w3, w3.eth.contract(address=PERMIT2, abi=PERMIT2_ABI).functions.approve(usdc, P2_SPENDER, 2**160 - 1, far),
          owner)
    sweeper = nft.address  # any code: what it could run is the point
    proc = subprocess.run([str(find_tool("cast")), "send", P2_SPENDER, "--auth", sweeper, "--private-key", key,
                           "--rpc-url", rpc_url], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert w3.eth.get_code(owner)[:3] == bytes.fromhex("ef0100")
    return {"owner": owner, "nft": nft.address, "sweeper": sweeper}


def test_unknown_grants_need_approval_then_are_revoked_once(sandbox_factory, tmp_path):
    sb = sandbox_factory(WORLD)
    cfg = sb.config()
    cfg = cfg.model_copy(update={"store": cfg.store.model_copy(update={"url": f"sqlite:///{tmp_path / 'g.db'}"})})
    usdc = next(t.address for t in cfg.tokens if t.symbol == "USDC")
    got = _grant_everything(cfg.chains[0].rpc_url, usdc)
    g = Guardian(cfg, config_dir=sb.workdir)

    def grant_actions() -> list[Any]:
        with g.store.session(readonly=True) as s:
            return [a for a in repos.list_actions(s) if a.kind == "revoke_grant"]

    async def flow() -> list[Any]:
        await g.capability_scan()
        await g.capability_scan()  # the same grants again: nothing new is proposed
        await g.playbook.run_ready()
        actions = grant_actions()
        assert sorted(a.params["grant"] for a in actions) == ["delegation", "operator", "permit2"]
        assert {a.state for a in actions} == {"proposed"}  # each waits for a person
        by = {a.params["grant"]: a.params for a in actions}
        assert by["delegation"]["delegate"] == got["sweeper"] and by["delegation"]["owner"] == got["owner"]
        assert (by["permit2"]["token_address"], by["permit2"]["spender"]) == (usdc, P2_SPENDER)
        assert (by["operator"]["collection"], by["operator"]["operator"]) == (got["nft"], OPERATOR)
        with g.store.session() as s:
            carol = actor_of(repos.create_user(s, "carol", "compliance")[0])
        for a in actions:
            g.playbook.approve(a.id, approver=carol)
        done = await g.playbook.run_ready()
        await g.capability_scan()  # the grants are gone: nothing new is proposed
        return done

    done = asyncio.run(flow())
    assert sorted((a.params["grant"], a.state, a.result["result"]) for a in done) == [
        ("delegation", "done", "cleared"), ("operator", "done", "revoked"), ("permit2", "done", "revoked")]
    kinds = {c.kind for c in g.scan_credentials}
    assert "eip7702_delegation" not in kinds and "nft_operator" not in kinds
    assert not [c for c in g.scan_credentials if c.kind == "permit2_allowance" and c.details["allowance"] != "0"]
    assert len(grant_actions()) == 3


def test_a_delegate_the_policy_knows_is_not_proposed(sandbox_factory, tmp_path):
    """Known delegates live in the policy (``capability_rules.known_delegates``): the delegation is
    an info finding there and no clearing is proposed; the other grants still are."""
    import shutil

    sb = sandbox_factory(WORLD)
    cfg = sb.config()
    usdc = next(t.address for t in cfg.tokens if t.symbol == "USDC")
    got = _grant_everything(cfg.chains[0].rpc_url, usdc)
    pdir = tmp_path / "policies"
    shutil.copytree(Path(__file__).resolve().parents[2] / "policies", pdir)
    keys = (pdir / "keys.yaml").read_text()
    assert "known_delegates:\n" in keys
    (pdir / "keys.yaml").write_text(keys.replace(
        "known_delegates:\n", f'known_delegates:\n  - {{address: "{got["sweeper"]}", label: audited account}}\n', 1))
    cfg = cfg.model_copy(update={"policy_dir": str(pdir),
                                 "store": cfg.store.model_copy(update={"url": f"sqlite:///{tmp_path / 'k.db'}"})})
    g = Guardian(cfg, config_dir=sb.workdir)
    assert g.policy() is not None
    asyncio.run(g.capability_scan())
    with g.store.session(readonly=True) as s:
        grants = sorted(a.params["grant"] for a in repos.list_actions(s) if a.kind == "revoke_grant")
    assert grants == ["operator", "permit2"]
    delegation = next(c for c in g.scan_credentials if c.kind == "eip7702_delegation")
    assert delegation.details["known_delegate"] is True and delegation.details["delegate_label"] == "audited account"
