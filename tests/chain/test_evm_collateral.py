"""On-chain collateral read from a real anvil sandbox: balances across decimals, every oracle
failure case, batched vs naive equality, and multi-chain naming."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from primeguard.domain.findings import FindingCode
from primeguard.pipeline.collateral import oracle_collateral
from primeguard.pipeline.collect import collect
from primeguard.venues.evm.collect import collect_evm
from primeguard.venues.evm.reader import ChainReader

pytestmark = pytest.mark.chain

FEEDS = [
    {"asset": "ETH", "answer": "3000", "heartbeat_s": 3600},
    {"asset": "BTC", "answer": "60000.12345678", "heartbeat_s": 3600},
    {"asset": "USDC", "answer": "1.0001", "heartbeat_s": 86400},
    {"asset": "USDT", "answer": "0.9998", "heartbeat_s": 86400},
]


def world(**over):
    data = {
        "name": "collateral",
        "feeds": FEEDS,
        "clients": [
            {"id": "firm-a", "loan": {"principal": "100000"}, "wallets": [
                {"native": "1.5", "tokens": {"USDC": "1234.567891", "WBTC": "0.12345678",
                                              "WETH": "2.000000000000000001"}},
                {"tokens": {"USDT": "10"}},
            ]},
            {"id": "firm-b", "wallets": [{"native": "0"}]},
        ],
    }
    data.update(over)
    return data


def test_balances_exact_across_decimals(sandbox_factory):
    sb = sandbox_factory(world())
    obs, stats = asyncio.run(collect(sb.config()))
    by = {(s.account.id, b.asset): b for s in obs.snapshots for b in s.balances if b.source.count(":") == 1
          or not b.source.endswith("WETH")}
    native = [b for s in obs.snapshots for b in s.balances if b.source == "evm:ethereum"
              and s.account.id == "firm-a-ethereum-1"]
    assert [b.base_units for b in native] == [15 * 10**17]
    usdc = by[("firm-a-ethereum-1", "USDC")]
    assert (usdc.base_units, usdc.decimals, usdc.quantity) == (1234567891, 6, Decimal("1234.567891"))
    assert by[("firm-a-ethereum-1", "BTC")].quantity == Decimal("0.12345678")
    # WETH is priced as ETH; the 18th decimal survives.
    weth = next(b for s in obs.snapshots for b in s.balances if b.source.endswith("WETH"))
    assert weth.base_units == 2 * 10**18 + 1
    assert weth.quantity == Decimal("2.000000000000000001")
    table = oracle_collateral(obs)
    expected = (Decimal("1.5") * 3000 + Decimal("1234.567891") * Decimal("1.0001")
                + Decimal("0.12345678") * Decimal("60000.12345678") + Decimal("2.000000000000000001") * 3000
                + 10 * Decimal("0.9998"))
    assert table.per_client["firm-a"] == expected
    assert table.per_client["firm-b"] == 0
    assert all(isinstance(r.usd, Decimal) for r in table.rows)
    assert stats.venues["evm"]["round_trips"] <= 4


def test_batched_equals_naive(sandbox_factory):
    sb = sandbox_factory(world())
    cfg = sb.config()
    chain = cfg.chains[0]
    wallets = [w.address for w in cfg.wallets]
    tokens = [t.address for t in cfg.tokens]
    feeds = [f.address for f in cfg.feeds]

    async def both():
        batched = ChainReader(chain.id, chain.rpc_url, batch_reader=chain.batch_reader, call_gas_cap=chain.call_gas_cap)
        naive = ChainReader(chain.id, chain.rpc_url, batch_reader=None)
        async with batched, naive:
            b = await batched.balances(wallets, tokens)
            n = await naive.balances(wallets, tokens)
            rb, rn = await batched.rounds(feeds), await naive.rounds(feeds)
        return b, n, rb, rn, batched.round_trips, naive.round_trips

    b, n, rb, rn, trips_b, trips_n = asyncio.run(both())
    assert b.values == n.values and not b.failed
    assert rb == rn
    assert trips_b < trips_n


@pytest.mark.parametrize(
    ("feed", "code"),
    [
        ({"asset": "ETH", "answer": "3000", "heartbeat_s": 3600, "age_s": 7200}, FindingCode.ORACLE_STALE),
        ({"asset": "ETH", "answer": "0", "heartbeat_s": 3600}, FindingCode.ORACLE_NON_POSITIVE),
        ({"asset": "ETH", "answer": "-5", "heartbeat_s": 3600}, FindingCode.ORACLE_NON_POSITIVE),
        ({"asset": "ETH", "answer": "3000", "heartbeat_s": 3600, "incomplete": True},
         FindingCode.ORACLE_INCOMPLETE_ROUND),
    ],
)
def test_oracle_failure_gives_finding_not_price(sandbox_factory, feed, code):
    sb = sandbox_factory(world(feeds=[feed, *FEEDS[1:]]))
    obs, _ = asyncio.run(collect(sb.config()))
    assert [q for q in obs.prices if q.asset == "ETH"] == []
    assert code in {f.code for f in obs.findings}
    table = oracle_collateral(obs)
    # ETH unpriced → firm-a's total is unknown, never a smaller number.
    assert table.per_client["firm-a"] is None


def test_unexpected_decimals_and_unreadable_feed(sandbox_factory):
    sb = sandbox_factory(world())
    cfg = sb.config()
    feeds = list(cfg.feeds)
    eth = next(f for f in feeds if f.asset == "ETH")
    btc = next(f for f in feeds if f.asset == "BTC")
    wrong_dec = eth.model_copy(update={"decimals": 18})
    no_code = btc.model_copy(update={"address": "0x000000000000000000000000000000000000dEaD"})
    kept = tuple(f for f in feeds if f.asset not in ("ETH", "BTC"))
    cfg2 = cfg.model_copy(update={"feeds": (*kept, wrong_dec, no_code)})
    res = asyncio.run(collect_evm(cfg2))
    codes = {f.code for f in res.findings}
    assert FindingCode.ORACLE_BAD_DECIMALS in codes
    assert FindingCode.ORACLE_UNREADABLE in codes
    assert {q.asset for q in res.prices} == {"USDC", "USDT"}


def test_stale_after_chain_time_moves(sandbox_factory):
    sb = sandbox_factory(world())
    node = sb.chains["ethereum"].node
    node.rpc("evm_increaseTime", [7201])
    node.rpc("evm_mine")
    obs, _ = asyncio.run(collect(sb.config()))
    stale = {f.subject.split("/")[0] for f in obs.findings if f.code is FindingCode.ORACLE_STALE}
    assert {"ETH", "BTC"} <= stale  # 1 h heartbeat; stablecoins (24 h) still fresh
    assert {q.asset for q in obs.prices} == {"USDC", "USDT"}


def test_two_chains_name_their_chain(sandbox_factory):
    data = world(
        chains=[{"id": "ethereum", "chain_id": 1}, {"id": "arbitrum", "chain_id": 42161, "tokens": ["USDC"]}],
        feeds=[*FEEDS, {"asset": "USDC", "chain": "arbitrum", "answer": "1", "heartbeat_s": 86400}],
    )
    data["clients"][1]["wallets"] = [{"chain": "arbitrum", "tokens": {"USDC": "5"}}]
    sb = sandbox_factory(data)
    obs, _ = asyncio.run(collect(sb.config()))
    arb = [s for s in obs.snapshots if s.account.chain == "arbitrum"]
    assert len(arb) == 1 and arb[0].account.client_id == "firm-b"
    assert [b.quantity for b in arb[0].balances if b.asset == "USDC"] == [Decimal(5)]
    assert {q.source_id.split(":")[0] for q in obs.prices} == {"ethereum", "arbitrum"}


def test_unreachable_chain_is_blind_not_zero(sandbox_factory):
    sb = sandbox_factory(world())
    cfg = sb.config()
    sb.chains["ethereum"].node.stop()
    obs, _ = asyncio.run(collect(cfg, now=datetime.now(UTC)))
    assert all(not s.ok and not s.balances for s in obs.snapshots)
    assert FindingCode.VENUE_UNREACHABLE in {f.code for f in obs.findings}
    assert oracle_collateral(obs).per_client == {"firm-a": None, "firm-b": None}
