"""On-chain capability scan on anvil: approvals found from logs and confirmed, revocation, Safes
with modules/guards/thresholds, two chains, a reorg-safe resumable cursor, kind mismatches."""

from __future__ import annotations

import asyncio

import pytest
from web3 import Web3

from primeguard.config.schema import KnownSpenderConfig, ScanConfig
from primeguard.domain.findings import FindingCode
from primeguard.domain.model import Capability
from primeguard.sandbox.chain import derived_account
from primeguard.sandbox.scenario import MAINNET_TOKENS
from primeguard.venues.evm.artifacts import contract_artifact
from primeguard.venues.evm.scan import MemoryCursorStore, capabilities_from_scan, scan_all, scan_chain

pytestmark = pytest.mark.chain

SPENDER = "0x000000000000000000000000000000000000bEEF"
ROUTER = "0x000000000000000000000000000000000000cafE"
MODULE = "0x000000000000000000000000000000000000F00D"

WORLD = {
    "name": "scan",
    "chains": [{"id": "ethereum", "chain_id": 1}, {"id": "arbitrum", "chain_id": 42161, "tokens": ["USDC"]}],
    "feeds": [{"asset": "ETH", "answer": "3000"}],
    "clients": [
        {"id": "firm-a", "wallets": [
            {"tokens": {"USDC": "100"}, "approvals": [
                {"token": "USDC", "spender": SPENDER},
                {"token": "WETH", "spender": ROUTER, "amount": "5"},
            ]},
            {"kind": "safe", "safe": {"owner_count": 1, "threshold": 1, "modules": [MODULE]}},
            # supply on arbitrum above firm-b's approval: "more than the total supply" is unlimited
            {"chain": "arbitrum", "tokens": {"USDC": "5000"}},
        ]},
        {"id": "firm-b", "wallets": [
            {"kind": "safe", "safe": {"owner_count": 3, "threshold": 2, "guard": "sandbox"}},
            {"chain": "arbitrum", "tokens": {"USDC": "7"}, "approvals": [{"token": "USDC", "spender": SPENDER,
                                                                          "amount": "1000"}]},
        ]},
    ],
}


def _scan(cfg, store=None):
    store = store or MemoryCursorStore()
    scans = asyncio.run(scan_all(cfg, store))
    return scans, capabilities_from_scan(cfg, scans), store


def test_approvals_found_and_classified(sandbox_factory):
    sb = sandbox_factory(WORLD)
    cfg = sb.config().model_copy(update={"known_spenders": (KnownSpenderConfig(address=ROUTER, label="router"),)})
    _scans, (creds, findings), _ = _scan(cfg)
    approvals = {(c.chain, c.details["token"], c.details["spender"]): c for c in creds if c.kind == "erc20_approval"}
    assert set(approvals) == {("ethereum", "USDC", SPENDER), ("ethereum", "WETH", ROUTER),
                              ("arbitrum", "USDC", SPENDER)}
    usdc = approvals[("ethereum", "USDC", SPENDER)]
    assert usdc.details["unlimited"] and usdc.capabilities == {Capability.SPEND_ALLOWANCE}
    assert approvals[("ethereum", "WETH", ROUTER)].details["allowance"] == str(5 * 10**18)
    codes = {(f.code, f.subject) for f in findings}
    assert (FindingCode.UNLIMITED_APPROVAL, usdc.id) in codes
    # the router is a known spender: no finding for it even though it exceeds the zero WETH balance
    assert not [f for f in findings if f.subject == approvals[("ethereum", "WETH", ROUTER)].id]
    arb = approvals[("arbitrum", "USDC", SPENDER)]
    assert (FindingCode.APPROVAL_EXCEEDS_BALANCE, arb.id) in codes
    assert all(f.chain in ("ethereum", "arbitrum") for f in findings)


def test_revoked_approval_disappears_and_rescan_is_idempotent(sandbox_factory):
    sb = sandbox_factory(WORLD)
    cfg = sb.config()
    scans1, (_creds1, _), store = _scan(cfg)
    again = asyncio.run(scan_all(cfg, store))  # resumes from the cursor, re-scans the reorg window
    assert sorted(a.spender for s in again for a in s.approvals) == sorted(a.spender for s in scans1
                                                                            for a in s.approvals)
    owner = next(w.address for w in cfg.wallets if w.client == "firm-a" and w.kind == "eoa")
    node = sb.chains["ethereum"].node
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    token = w3.eth.contract(address=MAINNET_TOKENS["USDC"][0], abi=contract_artifact("SandboxToken")["abi"])
    node.rpc("anvil_impersonateAccount", [owner])
    node.rpc("anvil_setBalance", [owner, hex(10**18)])
    w3.eth.wait_for_transaction_receipt(token.functions.approve(SPENDER, 0).transact({"from": owner}))
    node.rpc("evm_mine")
    eth = next(c for c in cfg.chains if c.id == "ethereum")
    previous_head = store.load("ethereum").last_block
    after = asyncio.run(scan_chain(cfg, eth, store, ScanConfig(reorg_depth=2)))
    assert ("USDC", SPENDER) not in {(a.symbol, a.spender) for a in after.approvals}
    assert ("WETH", ROUTER) in {(a.symbol, a.spender) for a in after.approvals}
    assert after.scanned_from == previous_head - 1  # resumed from the cursor minus the reorg window


def test_safes_modules_guard_threshold(sandbox_factory):
    sb = sandbox_factory(WORLD)
    scans, (creds, findings), _ = _scan(sb.config())
    facts = {f.wallet.client: f for s in scans for f in s.wallets if f.kind == "safe"}
    a, b = facts["firm-a"].safe, facts["firm-b"].safe
    assert a.version == "1.4.1" and a.threshold == 1 and len(a.owners) == 1 and a.modules == (MODULE,)
    assert a.guard is None and a.fallback_handler is not None and not a.has_module_guard_slot
    assert b.threshold == 2 and len(b.owners) == 3 and b.modules == () and b.guard is not None
    module_creds = [c for c in creds if c.kind == "safe_module"]
    assert len(module_creds) == 1 and module_creds[0].details["bypasses_guard"] is True
    assert {Capability.MODULE_EXECUTE, Capability.DELEGATECALL} <= module_creds[0].capabilities
    codes = {(f.code, f.client_id) for f in findings}
    assert (FindingCode.SAFE_LOW_THRESHOLD, "firm-a") in codes
    assert (FindingCode.SAFE_LOW_THRESHOLD, "firm-b") not in codes
    assert (FindingCode.SAFE_MODULE_ENABLED, "firm-a") in codes
    assert (FindingCode.SAFE_GUARD_SET, "firm-b") in codes


def test_config_says_safe_but_chain_says_eoa(sandbox_factory):
    sb = sandbox_factory(WORLD)
    cfg = sb.config()
    wallets = tuple(w.model_copy(update={"kind": "safe"}) if w.kind == "eoa" and w.client == "firm-a"
                    and w.chain == "ethereum" else w
                    for w in cfg.wallets)
    _, (_creds, findings), _ = _scan(cfg.model_copy(update={"wallets": wallets}))
    mismatch = [f for f in findings if f.code is FindingCode.WALLET_KIND_MISMATCH]
    assert len(mismatch) == 1 and "is configured as safe but" in mismatch[0].message


def test_reorg_deeper_than_window_rescans_from_start(sandbox_factory):
    sb = sandbox_factory(WORLD)
    cfg = sb.config()
    node = sb.chains["ethereum"].node
    snap = node.rpc("evm_snapshot")
    eth = next(c for c in cfg.chains if c.id == "ethereum")
    store = MemoryCursorStore()
    # an approval made after the snapshot, then reverted away (a reorg), then a different one
    owner = derived_account(7)[0]
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    token = w3.eth.contract(address=MAINNET_TOKENS["USDC"][0], abi=contract_artifact("SandboxToken")["abi"])
    wallets = (*cfg.wallets, cfg.wallets[0].model_copy(update={"id": "extra", "address": owner}))
    cfg2 = cfg.model_copy(update={"wallets": wallets})
    token.functions.approve(SPENDER, 1).transact({"from": owner})
    node.rpc("anvil_mine", [hex(5)])
    first = asyncio.run(scan_chain(cfg2, eth, store))
    assert (owner, SPENDER) in {(a.owner, a.spender) for a in first.approvals}
    node.rpc("evm_revert", [snap])
    node.rpc("anvil_mine", [hex(10)])
    second = asyncio.run(scan_chain(cfg2, eth, store))
    assert (owner, SPENDER) not in {(a.owner, a.spender) for a in second.approvals}
    assert second.scanned_from == 0
