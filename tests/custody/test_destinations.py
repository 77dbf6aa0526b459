"""Destinations from request to chain, on anvil through the CLI with stored users: a proposed
destination is usable only after a second compliance user approved it and the vault's timelock
passed; removal denies at once (agent) and reverts (vault); screening denies sanctioned
destinations at request and at execute, fails closed when the oracle is down, and honours an
imported SDN list."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from web3 import Web3

from primeguard.custody.vault import vault_abi
from primeguard.sandbox.chain import derived_account
from primeguard.sandbox.scenario import MAINNET_TOKENS
from primeguard.sandbox.vaults import TREASURY_KEY_INDEX
from primeguard.store import audit
from primeguard.store.db import open_store
from primeguard.venues.evm.artifacts import contract_abi
from tests.clitools import make_users, run_cli
from tests.json_schemas import check

pytestmark = pytest.mark.chain

DEST = "0x4b280EdCc946EAA52913262F098391Af6aA31751"  # seeded active on the vault, in the policy
OTHER = "0x506fEDd589E0BB429f2b312Dae2eDdd0a7c2F794"  # seeded active, in the policy (SDN test)
SANC = "0x8589427373D6D84E98730D7795D8f6f8731FDA16"  # seeded active, in the policy, sanctioned by the oracle
NEW = "0x1111111111111111111111111111111111111111"  # proposed through the product path
USDC = MAINNET_TOKENS["USDC"][0]
VAULT = "gamma-vault-ethereum"
TIMELOCK_S = 3
WORLD = {
    "name": "destinations",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "sanctioned": [SANC],
    "clients": [{"id": "gamma", "vault": {
        "timelock_s": TIMELOCK_S, "limits": {"USDC": "10000000"}, "tokens": {"USDC": "2000000"},
        "allowlist": [{"asset": "USDC", "address": a} for a in (DEST, OTHER, SANC)]}}],
}


def _entry(eid: str, address: str) -> str:
    return f"""
  - id: {eid}
    client: gamma
    venue: evm
    chain: ethereum
    asset: USDC
    address: "{address}"
    label: {eid}
    added_by: carol
    added_at: 2026-01-01T00:00:00Z
    expires_at: 2099-01-01T00:00:00Z
"""


@pytest.fixture
def world(sandbox_factory, repo, tmp_path):
    sb = sandbox_factory(WORLD)
    pdir = tmp_path / "policies"
    shutil.copytree(repo / "policies", pdir)
    text = (pdir / "allowlist.yaml").read_text().replace("timelock_s: 86400", "timelock_s: 0")
    (pdir / "allowlist.yaml").write_text(text + "".join(
        _entry(e, a) for e, a in (("gamma-dest", DEST), ("gamma-other", OTHER), ("gamma-sanc", SANC))))
    sb.policy_dir = str(pdir)
    sb.config_path = sb._write_config()
    cfg = str(sb.config_path)
    tokens = make_users(sb.config_path, tmp_path, {"carol": "compliance", "dave": "compliance", "tom": "treasury"})
    return sb, cfg, tokens, tmp_path


def _cli(world, who: str, *args: str):
    _sb, cfg, tokens, cwd = world
    return run_cli(*args, "--config", cfg, cwd=cwd, token=tokens[who])


def _json(out) -> dict:
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def _request(world, to: str, amount: str = "10", *, refresh: bool = True) -> dict:
    if refresh:  # CLI steps take seconds on a loaded machine: feeds stay inside their age limit
        world[0].refresh_prices()
    result = _json(_cli(world, "tom", "withdraw", "request", "--account", VAULT, "--asset", "USDC", "--amount",
                        amount, "--to", to, "--json"))
    check("withdrawal", result)
    return result


def _w3(sb) -> Web3:
    return Web3(Web3.HTTPProvider(sb.chains["ethereum"].node.rpc_url))


def _vault(sb):
    w3 = _w3(sb)
    return w3.eth.contract(address=sb.config().vaults[0].address, abi=vault_abi())


def _store(sb):
    return open_store(sb.config().store.url, migrate=True)


def test_propose_approve_timelock_active_remove(world):
    sb = world[0]
    proposed = _json(_cli(world, "carol", "allowlist", "propose", NEW, "--client", "gamma", "--asset", "USDC",
                          "--label", "Gamma new settlement", "--json"))
    ref = proposed["version"]["hash"][:12]
    assert proposed["screening"]["verdict"] == "clear"
    assert "not_allowlisted" in _request(world, NEW)["decision"]["reasons"]  # proposed is not approved

    own = _cli(world, "carol", "allowlist", "approve", ref, "--json")
    assert own.returncode == 2 and "self_approval" in own.stderr  # four eyes, by user id
    sb.refresh_prices()  # fresh now: the request inside the timelock must not mine a block (chain time stays)
    approved = _json(_cli(world, "dave", "allowlist", "approve", ref, "--json"))
    step = next(s for s in approved["steps"] if s["address"] == NEW)
    assert step["action"] == "proposed" and step["onchain"] == "pending" and step["tx_hash"]
    eta = _vault(sb).functions.activatesAt(USDC, NEW).call()
    assert eta > 0

    inside = _request(world, NEW, refresh=False)
    assert inside["state"] == "denied" and "allowlist_not_yet_active" in inside["decision"]["reasons"]

    w3 = _w3(sb)
    deadline = time.monotonic() + 60
    while w3.eth.get_block("latest")["timestamp"] < eta and time.monotonic() < deadline:
        time.sleep(0.5)
        w3.provider.make_request("evm_mine", [])
    synced = _json(_cli(world, "carol", "allowlist", "sync", "--apply", "--json"))
    assert next(s for s in synced["steps"] if s["address"] == NEW)["onchain"] == "active"
    ok = _request(world, NEW)
    assert ok["state"] == "approved", ok
    done = _json(_cli(world, "tom", "withdraw", "execute", ok["id"], "--json"))
    assert done["state"] == "confirmed", done
    check("withdrawal", done)

    status = _json(_cli(world, "carol", "allowlist", "status", "--no-venues", "--json"))
    check("allowlist", status)
    row = next(d for d in status["destinations"] if d["address"] == NEW)
    assert row["vaults"][0]["state"] == "active" and row["screening"] == "clear"
    assert any(p["state"] == "active" for p in row["policy"])

    removed = _json(_cli(world, "carol", "allowlist", "remove", NEW, "--json"))
    assert removed["steps"] and removed["steps"][0]["tx_hash"] and removed["policy_version"]
    assert _vault(sb).functions.activatesAt(USDC, NEW).call() == 0
    after = _request(world, NEW)
    assert after["state"] == "denied" and "not_allowlisted" in after["decision"]["reasons"]
    # Forced with the treasury key: the vault refuses.
    contract = _vault(sb)
    sender, key = derived_account(TREASURY_KEY_INDEX)
    tx = contract.functions.withdraw(USDC, NEW, 10, b"\x00" * 32).build_transaction({
        "from": sender, "gas": 200_000, "nonce": w3.eth.get_transaction_count(sender)})
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(w3.eth.account.sign_transaction(tx, key).raw_transaction))
    assert receipt["status"] == 0

    store = _store(sb)
    with store.session(readonly=True) as s:
        kinds = [e.kind for e in audit.entries(s, limit=1000)]
    for kind in ("destination.proposed", "destination.pending", "destination.active", "destination.removed",
                 "screening.checked"):
        assert kind in kinds, kind
    assert audit.verify(store).ok


def test_sanctioned_denied_at_request_and_execute(world):
    sb = world[0]
    hit = _request(world, SANC)  # allowlisted in the policy and on the vault, sanctioned by the oracle
    assert hit["state"] == "denied" and "sanctioned" in hit["decision"]["reasons"]
    with _store(sb).session(readonly=True) as s:
        from primeguard.store import repos

        assert any(f.code == "sanctioned_address" and f.severity == 40 for f in repos.open_findings(s))

    ok = _request(world, DEST)
    assert ok["state"] == "approved", ok
    w3 = _w3(sb)
    oracle = w3.eth.contract(address=sb.config().screening.oracles[0].address,
                             abi=contract_abi("SandboxSanctionsList"))
    oracle.functions.addToSanctionsList([DEST]).transact({"from": w3.eth.accounts[0]})
    done = _json(_cli(world, "tom", "withdraw", "execute", ok["id"], "--json"))
    assert done["state"] == "denied" and "sanctioned" in done["decision"]["reasons"]

    refused = _cli(world, "carol", "allowlist", "propose", SANC, "--client", "gamma", "--asset", "USDC",
                   "--label", "nope")
    assert refused.returncode == 2 and "sanctioned" in refused.stderr


def test_oracle_down_denies(world):
    sb = world[0]
    w3 = _w3(sb)
    w3.provider.make_request("anvil_setCode", [sb.config().screening.oracles[0].address, "0x"])
    r = _request(world, OTHER)
    assert r["state"] == "denied" and "screening_unavailable" in r["decision"]["reasons"]


def test_policy_marks_the_oracle_advisory(world):
    """The policy's screening guard, not the config, says which sources only advise: with the oracle
    advisory, its silence no longer refuses (the imported lists still answer)."""
    sb = world[0]
    limits = Path(sb.policy_dir) / "withdrawals.yaml"
    text, stress = limits.read_text(), "  stress: {id: stress-shortfall-holds}\n"
    assert stress in text
    guard = "  screening: {id: screening-sources, advisory: ['oracle:ethereum']}\n"
    limits.write_text(text.replace(stress, stress + guard))
    _w3(sb).provider.make_request("anvil_setCode", [sb.config().screening.oracles[0].address, "0x"])
    r = _request(world, OTHER)
    assert "screening_unavailable" not in r["decision"]["reasons"], r["decision"]


SDN = """<?xml version="1.0" encoding="utf-8"?>
<Sanctions xmlns="https://sanctionslistservice.ofac.treas.gov/api/PublicationPreview/exports/ADVANCED_XML">
  <DateOfIssue><Year>2026</Year><Month>11</Month><Day>3</Day></DateOfIssue>
  <ReferenceValueSets>
    <FeatureTypeValues>
      <FeatureType ID="345" FeatureTypeGroupID="1">Digital Currency Address - ETH</FeatureType>
      <FeatureType ID="8" FeatureTypeGroupID="2">Place of Birth</FeatureType>
    </FeatureTypeValues>
  </ReferenceValueSets>
  <DistinctParties>
    <DistinctParty FixedRef="40001">
      <Profile ID="40001" PartySubTypeID="3">
        <Feature ID="1" FeatureTypeID="345"><FeatureVersion ID="1">
          <VersionDetail DetailTypeID="1432">{addr}</VersionDetail></FeatureVersion></Feature>
        <Feature ID="2" FeatureTypeID="8"><FeatureVersion ID="2">
          <VersionDetail DetailTypeID="1432">Nowhere</VersionDetail></FeatureVersion></Feature>
      </Profile>
    </DistinctParty>
  </DistinctParties>
</Sanctions>
"""


def test_imported_sdn_address_denied(world):
    _sb, _cfg, _tokens, tmp = world
    evil = tmp / "evil.xml"
    evil.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Sanctions/>')
    bad = _cli(world, "carol", "screening", "import", str(evil))
    assert bad.returncode == 2 and "refused" in bad.stderr
    assert _json(_cli(world, "carol", "screening", "lists", "--json"))["lists"] == []

    assert _request(world, OTHER)["state"] == "approved"
    sdn = tmp / "sdn_advanced.xml"
    sdn.write_text(SDN.format(addr=OTHER.lower()))
    imported = _json(_cli(world, "carol", "screening", "import", str(sdn), "--json"))
    assert imported["count"] == 1 and imported["source_date"] == "2026-11-03" and imported["source"] == "ofac-sdn"
    r = _request(world, OTHER)
    assert r["state"] == "denied" and "sanctioned" in r["decision"]["reasons"]
    assert "list:ofac-sdn" in r["decision"]["explanation"]
