"""Issue A benchmark: balances of 1,000 wallets × 10 tokens + 10 feeds on the sandbox chain,
batched through BatchReader vs one eth_call per read, in the same run.

Targets: ≤ 10 RPC round trips for the batched path and ≥ 50× faster than naive.
"""

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
from primeguard.venues.evm.reader import ChainReader

WALLETS, TOKENS, FEEDS = 1_000, 10, 10
FUNDED = 50  # wallets given real non-zero balances; a zero balance costs the same read
# Under the default per-call gas budget reads split into ~9 calls that the node runs in parallel on
# both cores, still within the 10-round-trip budget.
CALL_GAS_CAP = 30_000_000


def deploy(w3: Web3, name: str, *args):
    art = contract_artifact(name)
    tx = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args).transact(
        {"from": w3.eth.accounts[0]})
    addr = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    return w3.eth.contract(address=addr, abi=art["abi"])


def main() -> int:
    with start_anvil(chain_id=31337) as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url, request_kwargs={"timeout": 60}))
        me = w3.eth.accounts[0]
        wallets = [derived_account(1000 + i)[0] for i in range(WALLETS)]
        tokens = []
        for i in range(TOKENS):
            t = deploy(w3, "SandboxToken")
            t.functions.initialize(f"T{i}", f"T{i}", 6 + (i % 3) * 6, me).transact({"from": me})
            for w in wallets[:FUNDED]:
                t.functions.mint(w, 10**6 * (i + 1)).transact({"from": me})
            tokens.append(t.address)
        feeds = []
        for i in range(FEEDS):
            f = deploy(w3, "SandboxAggregator")
            f.functions.initialize(8, f"F{i}", me).transact({"from": me})
            f.functions.updateAnswer(1000 * 10**8 + i).transact({"from": me})
            feeds.append(f.address)
        reader = deploy(w3, "BatchReader").address

        async def batched():
            r = ChainReader("bench", node.rpc_url, batch_reader=reader, call_gas_cap=CALL_GAS_CAP, timeout_s=60)
            async with r:
                b, rounds = await asyncio.gather(r.balances(wallets, tokens), r.rounds(feeds))
            return b, rounds, r.round_trips

        async def naive():
            r = ChainReader("bench", node.rpc_url, batch_reader=None, timeout_s=60)
            async with r:
                b, rounds = await asyncio.gather(r.balances(wallets, tokens), r.rounds(feeds))
            return b, rounds, r.round_trips

        ours_s, (b1, r1, trips_ours) = timed(lambda: asyncio.run(batched()), repeat=3)
        base_s, (b2, r2, trips_naive) = timed(lambda: asyncio.run(naive()), repeat=1)
        assert b1.values == b2.values and r1 == r2, "batched and naive reads disagree"
        reads = WALLETS * (TOKENS + 1) + FEEDS
        ok = trips_ours <= 10 and base_s / ours_s >= 50
        report([Result("evm_balances_1000x10_plus_10_feeds", ours_s, base_s,
                       "<=10 round trips and >=50x", ok,
                       {"reads": reads, "round_trips_ours": trips_ours, "round_trips_baseline": trips_naive,
                        "baseline_is": "one eth_call per read, 8 in flight"})])
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
