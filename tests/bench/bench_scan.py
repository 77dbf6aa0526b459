"""Approval scan of 500 wallets over 50,000 blocks of logs on the sandbox chain, over *every* token
(no token list: logs filtered by the owner topic across all contracts; 10 tokens carry approvals).
Ours: one getLogs per block chunk with topic lists (all grant events × all owners), then one batched
allowance read and one batched token-metadata read. Baseline: a getLogs walk per wallet (same
topics, same chunks), one allowance call per pair and three metadata calls per token.
Target ≥ 20× (time), RPC counts reported."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.benchlib import Result, report, timed
from web3 import Web3

from primeguard.sandbox.anvil import start_anvil
from primeguard.sandbox.chain import derived_account
from primeguard.venues.evm.artifacts import contract_artifact
from primeguard.venues.evm.grants import token_metadata
from primeguard.venues.evm.reader import ChainReader
from primeguard.venues.evm.scan import discover_pairs, discover_pairs_naive

WALLETS, TOKENS, BLOCKS, APPROVERS, CHUNK = 500, 10, 50_000, 100, 10_000
# anvil's cost per mined block grows with chain length (measured ~1 µs × height), so mining 50,000
# real blocks takes ~20 min. The node starts at genesis 45,000 and mines the last 5,000 blocks for
# real with the approvals spread across them; the scan range is still blocks 0..50,000 (the span
# below genesis answers empty, which makes each baseline call cheaper: conservative for the ratio).
GENESIS, MINED = 45_000, 5_000


def deploy(w3: Web3, name: str):
    art = contract_artifact(name)
    tx = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor().transact({"from": w3.eth.accounts[0]})
    return w3.eth.contract(address=w3.eth.wait_for_transaction_receipt(tx)["contractAddress"], abi=art["abi"])


def main() -> int:
    with start_anvil(extra_args=("--auto-impersonate", "--number", str(GENESIS))) as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url, request_kwargs={"timeout": 120}))
        me = w3.eth.accounts[0]
        wallets = [derived_account(2000 + i)[0] for i in range(WALLETS)]
        tokens = []
        for i in range(TOKENS):
            t = deploy(w3, "SandboxToken")
            t.functions.initialize(f"T{i}", f"T{i}", 18, me).transact({"from": me})
            tokens.append(t)
        reader_addr = deploy(w3, "BatchReader").address
        spenders = [derived_account(9000 + i)[0] for i in range(7)]
        approvals = 0
        for k, owner in enumerate(wallets[:APPROVERS]):
            node.rpc("anvil_setBalance", [owner, hex(10**18)])
            for j in (k % TOKENS, (k * 3 + 1) % TOKENS):
                tokens[j].functions.approve(spenders[(k + j) % 7], 2**256 - 1).transact({"from": owner})
                approvals += 1
            node.rpc("anvil_mine", [hex(MINED // APPROVERS)])
        head = w3.eth.block_number
        assert head >= BLOCKS, head
        async def run(batched: bool):
            async with ChainReader("bench", node.rpc_url, batch_reader=reader_addr if batched else None,
                                   call_gas_cap=100_000_000, timeout_s=120) as r:
                find = discover_pairs if batched else discover_pairs_naive
                pairs = sorted(await find(r, None, wallets, 0, head, CHUNK))
                allowances = await r.allowances(pairs)
                metas = await token_metadata(r, sorted({p[0] for p in pairs}))
                return pairs, (allowances, metas), r.round_trips

        ours_s, (p1, a1, trips1) = timed(lambda: asyncio.run(run(True)), repeat=3)
        base_s, (p2, a2, trips2) = timed(lambda: asyncio.run(run(False)), repeat=1)
        assert p1 == p2 and a1 == a2 and len(p1) == approvals, (len(p1), len(p2), approvals)
        result = Result("approval_scan_any_token_500_wallets_over_50k_blocks", ours_s, base_s, ">=20x",
                        base_s / ours_s >= 20,
                        {"blocks": head, "approvals": approvals, "round_trips_ours": trips1,
                         "round_trips_baseline": trips2,
                         "baseline_is": "getLogs walk per wallet over every contract (topic lists, one per block "
                                        "chunk) + allowance per pair + metadata per token, 8 in flight"})
        report([result])
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
