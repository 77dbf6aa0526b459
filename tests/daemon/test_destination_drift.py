"""Destination drift made behind the agent's back is found within one run of the guardian's
``destinations`` job and carried by the next sweep to the alerts: a direct ``proposeDestination`` on
the vault (critical), an entry added inside the Binance simulator's address book (high), an approved
entry removed there (warning); an emptied address book is read as empty. An unreadable vault is a
blind spot that keeps the vault's findings open; once the drift is undone the findings close. On
anvil and the CEX simulators."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from web3 import Web3

from primeguard.custody.vault import vault_abi
from primeguard.daemon.guardian import Guardian
from primeguard.sandbox.cex.scenario import WhitelistEntryScenario
from primeguard.sandbox.scenario import MAINNET_TOKENS
from primeguard.store import repos
from tests.security.world import allowlist_entry

pytestmark = pytest.mark.chain

LISTED = "0x4b280EdCc946EAA52913262F098391Af6aA31751"  # alpha-cold-usdc in policies/allowlist.yaml (binance)
DEST = Web3.to_checksum_address("0x" + "22" * 20)  # on alpha's vault and in the policy
ROGUE = Web3.to_checksum_address("0x" + "66" * 20)  # proposed on the vault directly
ODD = Web3.to_checksum_address("0x" + "77" * 20)  # added to the venue's address book directly
USDC = MAINNET_TOKENS["USDC"][0]
KEYS = [{"id": "alpha-trading", "holder": "client", "spot": True, "ip_whitelist": ["127.0.0.1"]},
        {"id": "pb-ops", "holder": "operator", "spot": True, "withdraw": True, "ip_whitelist": ["127.0.0.1"]}]
WORLD = {
    "name": "drift",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400},
              {"asset": "USDT", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": "alpha",
                 "vault": {"timelock_s": 3600, "limits": {"USDC": "1000000"}, "tokens": {"USDC": "1000"},
                           "allowlist": [{"asset": "USDC", "address": DEST}]},
                 "cex": [{"venue": "binance", "spot": {"USDT": "1000"}, "keys": KEYS,
                          "whitelist": [{"coin": c, "address": LISTED, "label": "Alpha cold"}
                                        for c in ("USDC", "USDT")]},
                         {"venue": "okx", "spot": {"USDT": "1000"}, "keys": KEYS}]}],
}


def _open(g: Guardian) -> dict[tuple[str, str], int]:
    with g.store.session(readonly=True) as s:
        return {(f.code, f.subject): f.severity for f in repos.open_findings(s) if f.venue == "allowlist"}


def test_drift_is_found_alerted_kept_while_blind_and_closed_when_undone(sandbox_factory, repo, tmp_path):
    sb = sandbox_factory(WORLD)
    pdir = tmp_path / "policies"
    shutil.copytree(repo / "policies", pdir)
    with (pdir / "allowlist.yaml").open("a") as fh:
        fh.write(allowlist_entry("alpha-vault-dest", "alpha", "USDC", DEST, "Alpha vault settlement"))
    sb.policy_dir = str(pdir)
    sb.config_path = sb._write_config()
    cfg = sb.config()
    vault_id = cfg.vaults[0].id
    binance = next(a.id for a in cfg.cex_accounts if a.venue == "binance")
    okx = next(a.id for a in cfg.cex_accounts if a.venue == "okx")
    w3 = Web3(Web3.HTTPProvider(sb.chains["ethereum"].node.rpc_url))
    vault = w3.eth.contract(address=cfg.vaults[0].address, abi=vault_abi())
    compliance = w3.eth.accounts[1]  # the sandbox vaults' compliance role
    book = next(a.whitelist for a in sb.cex.state("binance").accounts.values() if a.whitelist)
    g = Guardian(cfg, config_dir=sb.workdir)

    async def flow() -> None:
        await g.reconcile_destinations()
        # In line: only OKX's address book, which the venue does not let anyone list (a warning).
        assert _open(g) == {("allowlist_unreadable", okx): 20}

        vault.functions.proposeDestination(USDC, ROGUE).transact({"from": compliance})
        book.append(WhitelistEntryScenario(coin="USDT", address=ODD, label="added at the venue"))
        book[:] = [e for e in book if e.coin != "USDC"]
        await g.reconcile_destinations()
        await g.sweep()
        found = _open(g)
        assert found[("vault_destination_unknown", f"{vault_id}:USDC:{ROGUE.lower()}")] == 40
        assert found[("venue_whitelist_unknown", f"{binance}:USDT:{ODD.lower()}")] == 30
        assert found[("destination_missing", f"{binance}:USDC:{LISTED.lower()}")] == 20
        with g.store.session(readonly=True) as s:
            alerted = {a.finding_key for a in repos.alerts_in_state(s, "sent")}
            keys = {f.key for f in repos.open_findings(s) if f.venue == "allowlist"}
        assert keys <= alerted  # the sweep carried them to the alerts (the default log channel)

        saved = list(book)
        book.clear()  # Binance answers an empty list: read, and empty (not "cannot be listed" as on OKX)
        await g.reconcile_destinations()
        empty = _open(g)
        assert ("allowlist_unreadable", binance) not in empty
        assert empty[("destination_missing", f"{binance}:USDT:{LISTED.lower()}")] == 20
        assert ("venue_whitelist_unknown", f"{binance}:USDT:{ODD.lower()}") not in empty  # closed: read again
        book[:] = saved

        code = w3.eth.get_code(vault.address)
        w3.provider.make_request("anvil_setCode", [vault.address, "0x"])
        await g.reconcile_destinations()
        await g.sweep()
        blind = _open(g)
        assert blind[("allowlist_unreadable", vault_id)] == 30  # a blind spot, not "no drift"
        assert ("vault_destination_unknown", f"{vault_id}:USDC:{ROGUE.lower()}") in blind  # kept: unknown
        w3.provider.make_request("anvil_setCode", [vault.address, code.to_0x_hex()])

        vault.functions.removeDestination(USDC, ROGUE).transact({"from": compliance})
        book[:] = [e for e in book if e.address != ODD]
        book.append(WhitelistEntryScenario(coin="USDC", address=LISTED, label="Alpha cold"))
        await g.reconcile_destinations()
        await g.sweep()
        assert _open(g) == {("allowlist_unreadable", okx): 20}

    asyncio.run(flow())
