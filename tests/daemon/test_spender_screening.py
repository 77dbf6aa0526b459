"""Approval spenders found by the capability scan are screened like destinations: a sanctioned
spender is a critical finding and a revoke proposal even for a limited approval, kept open across
sweeps; a clear spender is neither; a screening oracle that cannot answer is a blind spot. On anvil
with the sandbox's sanctions oracle."""

from __future__ import annotations

import asyncio

import pytest
from web3 import Web3

from primeguard.daemon.guardian import Guardian
from primeguard.store import audit, repos

pytestmark = pytest.mark.chain

BAD = "0x000000000000000000000000000000000000BAd0"
CLEAN = "0x000000000000000000000000000000000000c1eA"
WORLD = {
    "name": "spenders",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "sanctioned": [BAD],
    "clients": [{"id": "gamma", "wallets": [{"custody_key": True, "tokens": {"USDC": "100"},
                                             "approvals": [{"token": "USDC", "spender": BAD, "amount": "50"},
                                                           {"token": "USDC", "spender": CLEAN, "amount": "50"}]}],
                 "vault": {"limits": {"USDC": "10"}}}],
}


def _open(g: Guardian) -> dict[tuple[str, str], int]:
    with g.store.session(readonly=True) as s:
        return {(f.code, f.subject): f.severity for f in repos.open_findings(s) if f.venue == "screening"}


def test_sanctioned_spender_is_critical_and_revoked_and_a_silent_oracle_is_a_blind_spot(sandbox_factory, tmp_path):
    sb = sandbox_factory(WORLD)
    cfg = sb.config()
    cfg = cfg.model_copy(update={"store": cfg.store.model_copy(update={"url": f"sqlite:///{tmp_path / 's.db'}"})})
    bad = Web3.to_checksum_address(BAD)

    async def flow() -> None:
        g = Guardian(cfg, config_dir=sb.workdir)
        await g.capability_scan()
        await g.sweep()  # carries the finding to the alerts and leaves it open
        assert _open(g) == {("sanctioned_address", bad): 40}
        with g.store.session(readonly=True) as s:
            actions = [a for a in repos.list_actions(s) if a.kind == "revoke_approval"]
            alerted = {a.finding_key for a in repos.alerts_in_state(s, "sent")}
            checked = [e for e in audit.entries(s, limit=1000) if e.kind == "screening.checked"]
        assert [(a.state, a.params["spender"]) for a in actions] == [("proposed", bad)]  # a limited approval too
        assert any(k.startswith("sanctioned_address:") for k in alerted)
        assert {e.subject.lower() for e in checked} == {BAD.lower(), CLEAN.lower()}

        w3 = Web3(Web3.HTTPProvider(sb.chains["ethereum"].node.rpc_url))
        w3.provider.make_request("anvil_setCode", [cfg.screening.oracles[0].address, "0x"])
        fresh = Guardian(cfg, config_dir=sb.workdir)  # no cached answers
        await fresh.capability_scan()
        await fresh.sweep()
        assert _open(fresh) == {("sanctioned_address", bad): 40, ("screening_unavailable", "ethereum"): 30}
        with fresh.store.session(readonly=True) as s:
            assert len([a for a in repos.list_actions(s) if a.kind == "revoke_approval"]) == 1  # not proposed twice

    asyncio.run(flow())
