"""Forked chains without the internet: an upstream anvil with mainnet-shaped state, a fork of it,
a price crash on the fork only. With PRIMEGUARD_FORK_URL set, the same against a real network."""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal

import pytest
from web3 import Web3

from primeguard.pipeline.collateral import oracle_collateral
from primeguard.pipeline.collect import collect
from primeguard.sandbox.anvil import start_anvil
from primeguard.sandbox.chain import set_feed_round
from primeguard.sandbox.scenario import MAINNET_FEEDS
from primeguard.venues.evm.artifacts import contract_artifact

pytestmark = pytest.mark.chain

SCENARIO = {
    "name": "fork",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": "firm-a", "wallets": [{"native": "10", "tokens": {"USDC": "1000", "WETH": "5"}}]}],
}


def _crash_eth(rpc_url: str, answer: str) -> None:
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    agg = w3.eth.contract(address=MAINNET_FEEDS["ETH"], abi=contract_artifact("SandboxAggregator")["abi"])
    set_feed_round(agg, Decimal(answer), 8, w3.eth.accounts[0])


def test_crash_on_fork_only(sandbox_factory):
    sb = sandbox_factory(SCENARIO)
    upstream_cfg = sb.config()
    with start_anvil(fork_url=sb.chains["ethereum"].node.rpc_url) as fork:
        assert fork.chain_id == 1
        fork_chain = upstream_cfg.chains[0].model_copy(update={"rpc_url": fork.rpc_url, "ws_url": fork.ws_url})
        fork_cfg = upstream_cfg.model_copy(update={"chains": (fork_chain,)})
        before = oracle_collateral(asyncio.run(collect(fork_cfg))[0]).per_client["firm-a"]
        assert before == Decimal(15) * 3000 + 1000
        _crash_eth(fork.rpc_url, "1500")
        after_fork = oracle_collateral(asyncio.run(collect(fork_cfg))[0]).per_client["firm-a"]
        after_upstream = oracle_collateral(asyncio.run(collect(upstream_cfg))[0]).per_client["firm-a"]
    assert after_fork == Decimal(15) * 1500 + 1000
    assert after_upstream == before
    assert fork.process.poll() is not None  # the fork is stopped by the context manager


@pytest.mark.skipif(not os.environ.get("PRIMEGUARD_FORK_URL"), reason="PRIMEGUARD_FORK_URL not set")
def test_crash_on_real_network_fork():
    """Same shape against a real network: the real ETH/USD feed, then our feed code on the fork."""
    from primeguard.venues.evm.oracle import FeedSpec
    from primeguard.venues.evm.reader import ChainReader

    upstream = os.environ["PRIMEGUARD_FORK_URL"]
    with start_anvil(fork_url=upstream) as fork:
        reader = ChainReader("fork", fork.rpc_url, batch_reader=None)
        spec = FeedSpec("ETH", "fork", MAINNET_FEEDS["ETH"], 8, 86400)
        raw = asyncio.run(reader.rounds([spec.address]))[0]
        assert raw.ok and raw.answer > 0
        art = contract_artifact("SandboxAggregator")
        fork.rpc("anvil_setCode", [spec.address, art["deployedBytecode"]])
        w3 = Web3(Web3.HTTPProvider(fork.rpc_url))
        agg = w3.eth.contract(address=spec.address, abi=art["abi"])
        agg.functions.initialize(8, "ETH / USD", w3.eth.accounts[0]).transact({"from": w3.eth.accounts[0]})
        _crash_eth(fork.rpc_url, "1")
        crashed = asyncio.run(ChainReader("fork", fork.rpc_url, batch_reader=None).rounds([spec.address]))[0]
        assert crashed.answer == 10**8
    real = asyncio.run(ChainReader("up", upstream, batch_reader=None).rounds([spec.address]))[0]
    assert real.answer == raw.answer or real.round_id >= raw.round_id
