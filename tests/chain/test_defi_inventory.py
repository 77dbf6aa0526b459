"""DeFi-aware inventory against published contracts on a prague anvil: EIP-7702 delegations signed
by a real authorization (``cast send --auth``), UNI's uint96 allowances, approvals on tokens the
config does not list (including an old bytes32-symbol token), Permit2 (the package's own bytecode at
its canonical address) and OpenZeppelin ERC-721 / ERC-1155 operators."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from web3 import Web3

from primeguard.config.schema import (
    ChainConfig,
    ClientConfig,
    KnownDelegateConfig,
    KnownSpenderConfig,
    PrimeguardConfig,
    ScanConfig,
    TokenConfig,
    WalletConfig,
)
from primeguard.domain.findings import FindingCode, Severity
from primeguard.domain.model import Capability
from primeguard.sandbox.anvil import AnvilNode, start_anvil
from primeguard.sandbox.chain import derived_account
from primeguard.sandbox.published import permit2_runtime, uni_artifact
from primeguard.sandbox.toolchain import built_artifact, find_tool
from primeguard.venues.evm.artifacts import contract_artifact
from primeguard.venues.evm.grants import OPERATOR_ABI, PERMIT2, PERMIT2_ABI
from primeguard.venues.evm.scan import MemoryCursorStore, capabilities_from_scan, scan_chain

pytestmark = pytest.mark.chain

SPENDER = "0x000000000000000000000000000000000000bEEF"
LIMITED = "0x000000000000000000000000000000000000b0b0"
P2_SPENDER = "0x000000000000000000000000000000000000D00d"
P2_SHORT = "0x000000000000000000000000000000000000dEaD"
OPERATOR = "0x0000000000000000000000000000000000000BA1"
OPERATOR_OFF = "0x0000000000000000000000000000000000000Ba2"
MAX256 = 2**256 - 1
MAX160 = 2**160 - 1


def deploy(w3: Web3, art: dict[str, Any], *args: Any) -> Any:
    me = w3.eth.accounts[0]
    tx = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args).transact({"from": me})
    addr = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    return w3.eth.contract(address=addr, abi=art["abi"])


def send(w3: Web3, fn: Any, sender: str) -> None:
    receipt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
    assert receipt["status"] == 1


def delegate_with_cast(node: AnvilNode, key: str, delegate: str) -> None:
    """A real EIP-7702 authorization, signed by the EOA's key and sent by cast (self-sponsored; the
    transaction itself goes to an empty address so the delegate's code is not run)."""
    proc = subprocess.run([str(find_tool("cast")), "send", SPENDER, "--auth", delegate, "--private-key", key,
                           "--rpc-url", node.rpc_url], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-500:]


@dataclass
class World:
    node: AnvilNode
    w3: Web3
    cfg: PrimeguardConfig
    eoa: str
    swept: str
    smart: str
    uni: Any
    asset: Any
    old: Any
    nft: Any
    multi: Any
    permit2: Any
    sweeper: str
    known_delegate: str


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with start_anvil(hardfork="prague", extra_args=("--auto-impersonate",)) as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        me = w3.eth.accounts[0]
        reader = deploy(w3, contract_artifact("BatchReader"))
        eoa, _ = derived_account(20)
        swept, swept_key = derived_account(21)
        smart, smart_key = derived_account(22)
        for a in (eoa, swept, smart):
            node.rpc("anvil_setBalance", [a, hex(10**20)])
        now = w3.eth.get_block("latest")["timestamp"]
        uni = deploy(w3, uni_artifact(), me, me, now + 10**6)  # published UNI: 1e9 UNI to `me`
        asset = deploy(w3, built_artifact("OzAsset"), "ASSET", 18)
        old = deploy(w3, built_artifact("Bytes32SymbolToken"))
        nft = deploy(w3, built_artifact("OzNft"))
        multi = deploy(w3, built_artifact("OzMulti"))
        node.rpc("anvil_setCode", [PERMIT2, permit2_runtime()])
        permit2 = w3.eth.contract(address=PERMIT2, abi=PERMIT2_ABI)
        sweeper = deploy(w3, built_artifact("OzAsset"), "SWEEP", 18).address  # any code: what it runs is the point
        known_delegate = deploy(w3, built_artifact("OzNft")).address
        send(w3, uni.functions.transfer(eoa, 10**18), me)
        send(w3, asset.functions.mint(eoa, 50 * 10**18), me)
        send(w3, old.functions.mint(eoa, 10), me)
        send(w3, nft.functions.mint(eoa, 1), me)
        send(w3, multi.functions.mint(eoa, 7, 3), me)
        send(w3, uni.functions.approve(SPENDER, MAX256), eoa)  # UNI stores 2**96 - 1
        send(w3, asset.functions.approve(LIMITED, 5 * 10**18), eoa)  # not in the config's token list
        send(w3, old.functions.approve(SPENDER, 11), eoa)  # more than the whole supply
        send(w3, asset.functions.approve(PERMIT2, MAX256), eoa)  # the gateway
        far = now + 365 * 86400
        send(w3, permit2.functions.approve(asset.address, P2_SPENDER, MAX160, far), eoa)
        send(w3, permit2.functions.approve(asset.address, P2_SHORT, MAX160, now + 100), eoa)
        send(w3, nft.functions.setApprovalForAll(OPERATOR, True), eoa)
        send(w3, multi.functions.setApprovalForAll(OPERATOR, True), eoa)
        send(w3, multi.functions.setApprovalForAll(OPERATOR_OFF, True), eoa)
        send(w3, multi.functions.setApprovalForAll(OPERATOR_OFF, False), eoa)
        delegate_with_cast(node, swept_key, sweeper)
        delegate_with_cast(node, smart_key, known_delegate)
        node.rpc("evm_increaseTime", [1000])  # P2_SHORT expires
        node.rpc("evm_mine")
        chain = ChainConfig(id="eth", chain_id=31337, rpc_url=node.rpc_url, batch_reader=reader.address,
                            max_block_age_s=None)
        cfg = PrimeguardConfig(
            chains=(chain,), clients=(ClientConfig(id="firm"),),
            # UNI is listed; ASSET and OLD are not: their approvals must be found anyway
            tokens=(TokenConfig(symbol="UNI", chain="eth", address=uni.address, decimals=18, asset="UNI"),),
            wallets=(WalletConfig(id="hot", client="firm", chain="eth", address=eoa),
                     WalletConfig(id="swept", client="firm", chain="eth", address=swept),
                     WalletConfig(id="smart", client="firm", chain="eth", address=smart, kind="contract")),
            known_delegates=(KnownDelegateConfig(address=known_delegate, label="audited smart account"),),
        )
        yield World(node, w3, cfg, eoa, swept, smart, uni, asset, old, nft, multi, permit2, sweeper, known_delegate)


def scan(cfg: PrimeguardConfig, store: MemoryCursorStore | None = None) -> tuple[Any, list[Any], list[Any]]:
    result = asyncio.run(scan_chain(cfg, cfg.chains[0], store or MemoryCursorStore(), ScanConfig(reorg_depth=2)))
    creds, findings = capabilities_from_scan(cfg, [result])
    return result, creds, findings


def test_eip7702_delegations_found_with_their_delegates(world: World) -> None:
    result, creds, findings = scan(world.cfg)
    kinds = {f.wallet.id: f for f in result.wallets}
    assert kinds["swept"].kind == "eoa_7702" and kinds["swept"].delegate == world.sweeper
    assert kinds["smart"].kind == "eoa_7702" and kinds["smart"].delegate == world.known_delegate
    assert kinds["hot"].kind == "eoa" and kinds["hot"].delegate is None
    by_id = {c.id: c for c in creds}
    d = by_id[f"eip7702:eth:{world.swept}"]
    assert d.capabilities == {Capability.DELEGATED_CODE} and d.details["delegate"] == world.sweeper
    assert d.details["known_delegate"] is False
    # the key's own power does not disappear because code was delegated
    assert Capability.SIGN_ANYTHING in by_id[f"eoa:eth:{world.swept}"].capabilities
    crit = [f for f in findings if f.code is FindingCode.EOA_DELEGATED_CODE and f.subject == d.id]
    assert len(crit) == 1 and crit[0].severity is Severity.CRITICAL and world.sweeper in crit[0].message
    # a delegated EOA declared eoa is not a kind mismatch; declared "contract" it is, and still reported
    mism = [f for f in findings if f.code is FindingCode.WALLET_KIND_MISMATCH]
    assert [f.subject for f in mism] == ["smart"]
    info = [f for f in findings if f.code is FindingCode.EOA_DELEGATED_CODE and world.smart in f.subject]
    assert len(info) == 1 and info[0].severity is Severity.INFO


def test_uni_max_approval_is_unlimited(world: World) -> None:
    assert world.uni.functions.allowance(world.eoa, SPENDER).call() == 2**96 - 1  # the published token's truncation
    _result, creds, findings = scan(world.cfg)
    cred = next(c for c in creds if c.kind == "erc20_approval" and c.details["token_address"] == world.uni.address)
    assert cred.details["unlimited"] is True and cred.details["allowance"] == str(2**96 - 1)
    assert (FindingCode.UNLIMITED_APPROVAL, cred.id) in {(f.code, f.subject) for f in findings}


def test_approvals_on_unlisted_tokens_found_with_tolerant_metadata(world: World) -> None:
    _result, creds, findings = scan(world.cfg)
    approvals = {(c.details["token_address"], c.details["spender"]): c for c in creds if c.kind == "erc20_approval"}
    limited = approvals[(world.asset.address, LIMITED)]
    assert limited.details["token"] == "ASSET" and limited.details["token_listed"] is False
    assert limited.details["unlimited"] is False and limited.details["allowance"] == str(5 * 10**18)
    old = approvals[(world.old.address, SPENDER)]
    assert old.details["token"] == "OLD"  # bytes32 symbol, no decimals(): read anyway
    assert old.details["unlimited"] is True  # 11 > total supply 10
    gateway = approvals[(world.asset.address, PERMIT2)]
    assert gateway.details["permit2_gateway"] is True and gateway.details["spender_label"] == "Permit2"
    assert not [f for f in findings if f.subject == gateway.id]  # a gateway, not a spender


def test_permit2_allowances_live_and_expired(world: World) -> None:
    _result, creds, findings = scan(world.cfg)
    p2 = {c.details["spender"]: c for c in creds if c.kind == "permit2_allowance"}
    assert set(p2) == {P2_SPENDER, P2_SHORT}
    live, short = p2[P2_SPENDER], p2[P2_SHORT]
    assert live.details["unlimited"] is True and live.details["expired"] is False
    assert live.capabilities == {Capability.SPEND_ALLOWANCE}
    assert short.details["expired"] is True and short.capabilities == frozenset()
    codes = {(f.code, f.subject) for f in findings}
    assert (FindingCode.UNLIMITED_APPROVAL, live.id) in codes
    assert not [f for f in findings if f.subject == short.id]
    # a known spender is not a finding
    cfg = world.cfg.model_copy(update={"known_spenders": (KnownSpenderConfig(address=P2_SPENDER, label="router"),)})
    _r, _c, findings2 = scan(cfg)
    assert not [f for f in findings2 if f.subject == live.id]


def test_nft_operators_confirmed_by_is_approved_for_all(world: World) -> None:
    _result, creds, findings = scan(world.cfg)
    ops = {(c.details["collection"], c.details["operator"]) for c in creds if c.kind == "nft_operator"}
    # OPERATOR_OFF was approved then revoked on the 1155: logs show it, the chain does not
    assert ops == {(world.nft.address, OPERATOR), (world.multi.address, OPERATOR)}
    assert len([f for f in findings if f.code is FindingCode.NFT_OPERATOR]) == 2


def test_rescan_drops_revoked_grants(world: World) -> None:
    store = MemoryCursorStore()
    scan(world.cfg, store)
    snap = world.node.rpc("evm_snapshot")
    try:
        send(world.w3, world.permit2.functions.lockdown([(world.asset.address, P2_SPENDER)]), world.eoa)
        send(world.w3, world.w3.eth.contract(address=world.nft.address, abi=OPERATOR_ABI)
             .functions.setApprovalForAll(OPERATOR, False), world.eoa)
        result, creds, _ = scan(world.cfg, store)
        assert result.scanned_from > 0  # resumed from the cursor
        assert P2_SPENDER not in {c.details["spender"] for c in creds if c.kind == "permit2_allowance"}
        assert (world.nft.address, OPERATOR) not in {(c.details["collection"], c.details["operator"])
                                                     for c in creds if c.kind == "nft_operator"}
    finally:
        world.node.rpc("evm_revert", [snap])


def test_levers_revoke_permit2_operator_and_clear_delegation_idempotently(world: World, tmp_path: Any) -> None:
    from eth_account import Account as EthAccount

    from primeguard.custody.signer import KeystoreSigner
    from primeguard.playbooks.levers import clear_delegation_once, revoke_operator_once, revoke_permit2_once

    def signer_for(index: int) -> KeystoreSigner:
        path = tmp_path / f"k{index}.json"
        path.write_text(json.dumps(EthAccount.encrypt(derived_account(index)[1], "pw")))
        return KeystoreSigner(path, "pw")

    snap = world.node.rpc("evm_snapshot")
    try:
        hot, swept, rpc_url = signer_for(20), signer_for(21), world.node.rpc_url
        first = revoke_permit2_once(rpc_url, hot, world.asset.address, P2_SPENDER, 200_000, 30)
        again = revoke_permit2_once(rpc_url, hot, world.asset.address, P2_SPENDER, 200_000, 30)
        assert (first["result"], again["result"]) == ("revoked", "already_revoked")
        op1 = revoke_operator_once(rpc_url, hot, world.multi.address, OPERATOR, 200_000, 30)
        op2 = revoke_operator_once(rpc_url, hot, world.multi.address, OPERATOR, 200_000, 30)
        assert (op1["result"], op2["result"]) == ("revoked", "already_revoked")
        c1 = clear_delegation_once(rpc_url, swept, 200_000, 30)
        c2 = clear_delegation_once(rpc_url, swept, 200_000, 30)
        assert (c1["result"], c2["result"]) == ("cleared", "not_delegated")
        result, creds, findings = scan(world.cfg)
        assert {f.wallet.id: f.kind for f in result.wallets}["swept"] == "eoa"
        assert P2_SPENDER not in {c.details["spender"] for c in creds if c.kind == "permit2_allowance"}
        assert (world.multi.address, OPERATOR) not in {(c.details["collection"], c.details["operator"])
                                                       for c in creds if c.kind == "nft_operator"}
        assert not [f for f in findings if f.code is FindingCode.EOA_DELEGATED_CODE and world.swept in f.subject]
    finally:
        world.node.rpc("evm_revert", [snap])


def test_a_refused_log_query_is_a_chain_error(world: World) -> None:
    """getLogs answers are read raw (not through web3's formatters): a node's error answer is still a
    typed ChainError, never an empty list that would hide grants."""
    from primeguard.domain.errors import ChainError
    from primeguard.venues.evm.reader import ChainReader

    async def ask() -> None:
        async with ChainReader("eth", world.node.rpc_url, batch_reader=None) as r:
            assert await r.logs(None, [[]], 0, 0) == []  # a well-formed query over an empty block
            await r.logs(None, [["0x12"]], 0, 0)  # not a topic: the node refuses

    with pytest.raises(ChainError, match="eth_getLogs failed"):
        asyncio.run(ask())


# --- the scan's batched reads: same answers as the separate reads, fewer round trips ---------------


def test_one_batched_read_confirms_every_grant_as_the_separate_reads_do(world: World) -> None:
    """confirm_grants (the scan's one read for allowances, token metadata, operator flags and Permit2)
    answers exactly what the separate reads answer, with the BatchReader (one round trip) and without
    it; a pair on an address without code is unreadable (None), never 0."""
    from primeguard.venues.evm.grants import (
        confirm_grants,
        discover_grants,
        operator_flags,
        permit2_allowances,
        token_metadata,
    )
    from primeguard.venues.evm.reader import ChainReader

    nowhere = "0x00000000000000000000000000000000DeaDBeef"

    async def reads(batch_reader: str | None) -> tuple[Any, Any, int]:
        async with ChainReader("eth", world.node.rpc_url, batch_reader=batch_reader) as r:
            head = world.w3.eth.block_number
            found = await discover_grants(r, [world.eoa], 0, head, 1000)
            erc20 = [*sorted(found.erc20), (nowhere, world.eoa, SPENDER)]
            tokens = sorted({p[0] for p in erc20} | {p[0] for p in found.permit2})
            ops, p2 = sorted(found.operators), sorted(found.permit2)
            before = r.round_trips
            got = await confirm_grants(r, erc20, tokens, ops, p2)
            trips = r.round_trips - before
            separate = (await r.allowances(erc20), await token_metadata(r, tokens), await operator_flags(r, ops),
                        await permit2_allowances(r, p2))
            return (got.allowances, got.metas, got.operators, got.permit2), separate, trips

    reader_addr = world.cfg.chains[0].batch_reader
    batched, separate, trips = asyncio.run(reads(reader_addr))
    assert batched == separate and trips == 1
    allowances, metas, operators, p2 = batched
    assert allowances[(world.uni.address, world.eoa, SPENDER)] == 2**96 - 1
    assert allowances[(nowhere, world.eoa, SPENDER)] is None
    assert metas[world.old.address].symbol == "OLD" and len(operators) == 3 and len(p2) == 2
    per_call, separate_per_call, _ = asyncio.run(reads(None))
    assert per_call == separate_per_call == batched


def test_log_chunks_travel_in_one_batch_with_the_same_answers(world: World) -> None:
    """logs_many asks one getLogs per block range inside one JSON-RPC batch request: the same logs
    as one request per range, one round trip; a range the node refuses makes the whole read a
    ChainError (never a shorter list that would hide grants)."""
    from primeguard.domain.errors import ChainError
    from primeguard.venues.evm.grants import GRANT_TOPICS, topic_address
    from primeguard.venues.evm.reader import ChainReader

    head = world.w3.eth.block_number
    ranges = [(a, min(head, a + 2)) for a in range(0, head + 1, 3)]
    topics = [GRANT_TOPICS, [topic_address(world.eoa)]]

    async def ask() -> tuple[list[Any], list[Any], int]:
        async with ChainReader("eth", world.node.rpc_url, batch_reader=None) as r:
            one_by_one = [await r.logs(None, topics, a, b) for a, b in ranges]
            before = r.round_trips
            many = await r.logs_many(None, topics, ranges)
            return one_by_one, many, r.round_trips - before

    one_by_one, many, trips = asyncio.run(ask())
    assert many == one_by_one and sum(len(x) for x in many) >= 10
    assert trips == -(-len(ranges) // 10)  # LOGS_PER_BATCH ranges per request

    async def refused() -> None:
        async with ChainReader("eth", world.node.rpc_url, batch_reader=None) as r:
            await r.logs_many(None, [["0x12"]], ranges[:3])

    with pytest.raises(ChainError, match="eth_getLogs failed"):
        asyncio.run(refused())


class BatchRefusingNode:
    """A JSON-RPC front for the real node that answers every batch request as some hosted nodes do:
    ``refuse`` (one error object, batches not supported) or ``drop`` (the batch's last answer
    missing). Single requests pass through unchanged."""

    def __init__(self, upstream: str, mode: str) -> None:
        import http.server
        import threading
        import urllib.request

        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                req = urllib.request.Request(upstream, data=body, headers={"Content-Type": "application/json"})
                if body.lstrip().startswith(b"["):
                    front.batches += 1
                if body.lstrip().startswith(b"[") and mode == "refuse":
                    out = json.dumps({"jsonrpc": "2.0", "id": None,
                                      "error": {"code": -32600, "message": "batch requests are not supported"}})
                    answer = out.encode()
                else:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        answer = resp.read()
                    if body.lstrip().startswith(b"[") and mode == "drop":
                        answer = json.dumps(json.loads(answer)[:-1]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.batches = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("mode", ["refuse", "drop"])
def test_a_node_without_batches_is_asked_range_by_range_and_a_short_batch_fails(world: World, mode: str) -> None:
    """A node that refuses JSON-RPC batches still gets scanned (one getLogs per range, same grants);
    a batch answer missing a range is a ChainError, never a scan that silently skipped blocks."""
    from primeguard.domain.errors import ChainError
    from primeguard.venues.evm.grants import discover_grants
    from primeguard.venues.evm.reader import ChainReader

    front = BatchRefusingNode(world.node.rpc_url, mode)
    head = world.w3.eth.block_number

    async def grants(url: str) -> Any:
        async with ChainReader("eth", url, batch_reader=None) as r:
            return await discover_grants(r, [world.eoa], 0, head, 2)

    try:
        if mode == "refuse":
            assert asyncio.run(grants(front.url)) == asyncio.run(grants(world.node.rpc_url))
        else:
            with pytest.raises(ChainError, match="answers for"):
                asyncio.run(grants(front.url))
        assert front.batches >= 1
    finally:
        front.close()
