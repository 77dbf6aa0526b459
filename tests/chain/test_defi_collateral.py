"""DeFi collateral on anvil, valued through the protocols' own views and oracle feeds, equal to a
hand computation in exact Decimal: OpenZeppelin ERC-4626 vault shares (share price not 1:1),
an Aave v3 market deployed from @aave/core-v3's artifacts (supply WETH, borrow USDC), and a
wstETH-shaped wrapper (OURS: Lido's wstETH is not published as a deployable package; it has
wstETH's views and a rate the test sets). A protocol read that fails leaves the position unpriced
and the client blind."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from primeguard.config.schema import (
    ChainConfig,
    ClientConfig,
    DefiPositionConfig,
    PrimeguardConfig,
    TokenConfig,
    WalletConfig,
)
from primeguard.domain.findings import FindingCode, Severity
from primeguard.domain.model import PriceQuote, PriceSourceKind
from primeguard.pipeline.collect import collect
from primeguard.pipeline.evaluate import evaluate
from primeguard.policy import load_bundle
from primeguard.risk.defi import value_positions
from primeguard.sandbox.aave import ReserveSpec, deploy_aave_v3
from primeguard.sandbox.anvil import start_anvil
from primeguard.sandbox.toolchain import built_artifact
from primeguard.venues.evm.artifacts import contract_artifact
from primeguard.venues.evm.defi import read_positions
from primeguard.venues.evm.reader import ChainReader

pytestmark = pytest.mark.chain

HAIRCUTS = {"erc4626": Decimal("0.10"), "aave_v3": Decimal("0.25"), "wsteth": Decimal("0.15")}
POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"


def shipped_policy() -> Any:
    from primeguard.policy.loader import read_policy_dir

    return load_bundle(read_policy_dir(POLICY_DIR))


def deploy(w3: Web3, art: dict[str, Any], *args: Any) -> Any:
    tx = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args).transact(
        {"from": w3.eth.accounts[0]})
    return w3.eth.contract(address=w3.eth.wait_for_transaction_receipt(tx)["contractAddress"], abi=art["abi"])


def send(w3: Web3, fn: Any, sender: str) -> None:
    assert w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))["status"] == 1


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    with start_anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        me, lp, client = w3.eth.accounts[:3]
        reader = deploy(w3, contract_artifact("BatchReader"))
        usdc = deploy(w3, built_artifact("OzAsset"), "USDC", 6)
        weth = deploy(w3, built_artifact("OzAsset"), "WETH", 18)
        feeds = {}
        for asset, answer in (("ETH", 3123_45678901), ("USDC", 99_980000)):
            f = deploy(w3, contract_artifact("SandboxAggregator"))
            send(w3, f.functions.initialize(8, f"{asset} / USD", me), me)
            send(w3, f.functions.updateAnswer(answer), me)
            feeds[asset] = f
        # ERC-4626: the client deposits, then the vault earns (assets sent in): a share is worth more than 1
        vault = deploy(w3, built_artifact("OzVault"), usdc.address)
        send(w3, usdc.functions.mint(client, 1_000 * 10**6), me)
        send(w3, usdc.functions.approve(vault.address, 2**256 - 1), client)
        send(w3, vault.functions.deposit(700 * 10**6, client), client)
        send(w3, usdc.functions.mint(vault.address, 77_777_777), me)
        # Aave v3: the market prices from an oracle we control (the same numbers as the feeds, base 8 dec)
        market = deploy_aave_v3(w3, me, [ReserveSpec(usdc.address, 6, 99_980000),
                                          ReserveSpec(weth.address, 18, 3123_45678901)])
        send(w3, usdc.functions.mint(lp, 10**12), me)
        send(w3, usdc.functions.approve(market.pool.address, 2**256 - 1), lp)
        send(w3, market.pool.functions.supply(usdc.address, 10**12, lp, 0), lp)
        send(w3, weth.functions.mint(client, 3 * 10**18), me)
        send(w3, weth.functions.approve(market.pool.address, 2**256 - 1), client)
        send(w3, market.pool.functions.supply(weth.address, 2 * 10**18, client, 0), client)
        send(w3, market.pool.functions.borrow(usdc.address, 4_000 * 10**6, 2, 0, client), client)
        node.rpc("evm_increaseTime", [30 * 86400])  # interest accrues: the views, not the inputs, count
        node.rpc("evm_mine")
        # wstETH-shaped wrapper: 1 wstETH = 1.1734... stETH
        wst = deploy(w3, built_artifact("WstEthLike"))
        send(w3, wst.functions.mint(client, 5 * 10**18), me)
        send(w3, wst.functions.setRate(1_173_456_789_012_345_678), me)
        chain = ChainConfig(id="eth", chain_id=31337, rpc_url=node.rpc_url, batch_reader=reader.address,
                            max_block_age_s=None)
        cfg = PrimeguardConfig(
            chains=(chain,), clients=(ClientConfig(id="firm"),),
            tokens=(TokenConfig(symbol="USDC", chain="eth", address=usdc.address, decimals=6, asset="USDC"),
                    TokenConfig(symbol="WETH", chain="eth", address=weth.address, decimals=18, asset="ETH")),
            wallets=(WalletConfig(id="w", client="firm", chain="eth", address=client),),
            defi_positions=(DefiPositionConfig(id="vault", wallet="w", protocol="erc4626", address=vault.address),
                            DefiPositionConfig(id="aave", wallet="w", protocol="aave_v3", address=market.pool.address),
                            DefiPositionConfig(id="wst", wallet="w", protocol="wsteth", address=wst.address)),
        )
        yield {"node": node, "w3": w3, "cfg": cfg, "client": client, "vault": vault, "market": market,
               "usdc": usdc, "weth": weth, "wst": wst, "feeds": feeds}


async def _read(cfg: PrimeguardConfig) -> list[Any]:
    chain = cfg.chains[0]
    async with ChainReader(chain.id, chain.rpc_url, batch_reader=chain.batch_reader) as reader:
        return await read_positions(cfg, reader, chain.id)


def oracle_prices(world: dict[str, Any]) -> dict[str, Decimal]:
    out = {}
    for asset, feed in world["feeds"].items():
        answer = feed.functions.latestRoundData().call()[1]
        out[asset] = Decimal(answer) / Decimal(10) ** feed.functions.decimals().call()
    return out


def test_collateral_and_loan_equal_hand_computation(world: dict[str, Any]) -> None:
    positions = asyncio.run(_read(world["cfg"]))
    prices = oracle_prices(world)
    got = value_positions(positions, prices, HAIRCUTS)["firm"]
    # by hand, from the protocols' views at the same block
    c, m = world["client"], world["market"]
    w3 = world["w3"]
    erc20 = contract_artifact("SandboxToken")["abi"]
    shares = world["vault"].functions.balanceOf(c).call()
    vault_usdc = Decimal(world["vault"].functions.convertToAssets(shares).call()) / Decimal(10**6)
    assert vault_usdc > Decimal(700)  # the share grew: not 1:1
    a_weth = Decimal(w3.eth.contract(address=m.a_tokens[world["weth"].address], abi=erc20)
                     .functions.balanceOf(c).call()) / Decimal(10**18)
    debt_usdc = Decimal(w3.eth.contract(address=m.variable_debt[world["usdc"].address], abi=erc20)
                        .functions.balanceOf(c).call()) / Decimal(10**6)
    assert debt_usdc > Decimal(4000)  # interest accrued: the debt token's view, not the borrowed amount
    steth = Decimal(world["wst"].functions.getStETHByWstETH(5 * 10**18).call()) / Decimal(10**18)
    assert steth != Decimal(5)  # a share whose value grows, not 1:1 ETH
    eth, usd = prices["ETH"], prices["USDC"]
    gross = vault_usdc * usd + a_weth * eth + steth * eth
    collateral = (vault_usdc * usd * (1 - HAIRCUTS["erc4626"]) + a_weth * eth * (1 - HAIRCUTS["aave_v3"])
                  + steth * eth * (1 - HAIRCUTS["wsteth"]))
    assert got.gross == gross
    assert got.collateral == collateral
    assert got.liabilities == debt_usdc * usd
    assert not got.blind and got.unpriced == []
    hf = Decimal(m.pool.functions.getUserAccountData(c).call()[5]) / Decimal(10**18)
    aave = next(p for p in positions if p.id == "aave")
    assert aave.health_factor == hf and hf > Decimal("1.1")
    assert not [f for f in got.findings if f.code is FindingCode.HEALTH_FACTOR_LOW]


def test_health_factor_near_one_is_a_finding(world: dict[str, Any]) -> None:
    w3, m, node = world["w3"], world["market"], world["node"]
    snap = node.rpc("evm_snapshot")
    try:
        # ETH falls in the market's oracle: the Aave position nears liquidation
        send(w3, m.oracle.functions.setAssetPrice(world["weth"].address, 2400_00000000), w3.eth.accounts[0])
        positions = asyncio.run(_read(world["cfg"]))
        got = value_positions(positions, oracle_prices(world), HAIRCUTS)["firm"]
        low = [f for f in got.findings if f.code is FindingCode.HEALTH_FACTOR_LOW]
        aave = next(p for p in positions if p.id == "aave")
        assert aave.health_factor is not None and Decimal(1) < aave.health_factor < Decimal("1.1")
        assert len(low) == 1 and low[0].severity is Severity.HIGH
    finally:
        node.rpc("evm_revert", [snap])


def test_failed_protocol_read_leaves_position_unpriced_and_client_blind(world: dict[str, Any]) -> None:
    cfg = world["cfg"]
    broken = tuple(p.model_copy(update={"address": world["usdc"].address}) if p.id == "wst" else p
                   for p in cfg.defi_positions)  # a token without wstETH's views
    positions = asyncio.run(_read(cfg.model_copy(update={"defi_positions": broken})))
    got = value_positions(positions, oracle_prices(world), HAIRCUTS)["firm"]
    assert got.blind and got.unpriced == ["wst"]
    assert [f.code for f in got.findings] == [FindingCode.DEFI_POSITION_UNREADABLE]
    full = value_positions(asyncio.run(_read(cfg)), oracle_prices(world), HAIRCUTS)["firm"]
    assert got.gross < full.gross  # the other positions still count; the broken one is not zero-filled silently


def _with_prices(obs: Any, prices: dict[str, Decimal]) -> Any:
    """The observation with the feeds' answers as fresh oracle quotes (the fixture's chain clock is
    30 days ahead, so the feeds themselves are stale there; the oracle checks are tested elsewhere)."""
    quotes = tuple(PriceQuote(a, p, PriceSourceKind.ORACLE, f"feed:{a}", obs.taken_at, obs.taken_at)
                   for a, p in prices.items())
    return dataclasses.replace(obs, prices=obs.prices + quotes)


def test_positions_are_collateral_and_debt_in_the_sweep(world: dict[str, Any]) -> None:
    """The sweep's EVM collection turns each declared position into an account of its client: supplied
    legs are balances of the underlying, borrowed legs negative balances (owed in full)."""
    cfg = world["cfg"]
    positions = {p.id: p for p in asyncio.run(_read(cfg))}
    obs, _ = asyncio.run(collect(cfg))
    snaps = {s.account.id: s for s in obs.snapshots}
    for pid, pos in positions.items():
        snap = snaps[pid]
        assert snap.ok and snap.account.client_id == "firm"
        assert sorted((b.asset, b.quantity) for b in snap.balances) == sorted(
            (leg.asset, -leg.amount if leg.borrowed else leg.amount) for leg in pos.legs)
    assert any(b.quantity < 0 for b in snaps["aave"].balances)  # the USDC debt
    prices = oracle_prices(world)
    policy = shipped_policy()
    ev = evaluate(cfg, _with_prices(obs, prices), policy=policy, ladder={}, peaks={}, with_stress=False)
    firm = ev.valuations["firm"]
    assert not firm.blind
    held = sum((b.quantity * prices[b.asset] for s in obs.snapshots if s.account.client_id == "firm"
                for b in s.balances), Decimal(0))
    assert firm.equity == held
    # haircuts: a position's supplied legs by its class in the policy (not by the asset), debt in full
    params = ev.params["firm"]
    classes = {d.id: policy.defi_classes[d.klass].haircut for d in cfg.defi_positions}
    by_hand = Decimal(0)
    for snap in (s for s in obs.snapshots if s.account.client_id == "firm"):
        for b in snap.balances:
            value = b.quantity * prices[b.asset]
            haircut = classes.get(snap.account.id, params.haircut(b.asset))
            by_hand += value * (1 - haircut) if value > 0 else value
    assert firm.haircut_collateral == by_hand
    assert classes["aave"] != params.haircut("ETH")  # the class decides, not the underlying asset


def test_a_position_class_the_policy_does_not_list_is_not_collateral(world: dict[str, Any]) -> None:
    """Fail closed: a DeFi position whose haircut class is not in the policy counts for nothing as
    collateral (its debt still counts in full) and blinds its client with a finding saying why."""
    cfg = world["cfg"]
    odd = cfg.model_copy(update={"defi_positions": tuple(
        p.model_copy(update={"haircut_class": "morpho_blue"}) if p.id == "aave" else p for p in cfg.defi_positions)})
    obs, _ = asyncio.run(collect(odd))
    prices = oracle_prices(world)
    policy = shipped_policy()
    seen = _with_prices(obs, prices)
    known = evaluate(cfg, seen, policy=policy, ladder={}, peaks={}, with_stress=False).valuations["firm"]
    ev = evaluate(odd, seen, policy=policy, ladder={}, peaks={}, with_stress=False)
    firm = ev.valuations["firm"]
    assert firm.blind and not known.blind
    aave = next(s for s in obs.snapshots if s.account.id == "aave")
    supplied = sum((b.quantity * prices[b.asset] for b in aave.balances if b.quantity > 0), Decimal(0))
    keep = 1 - policy.defi_classes["aave_v3"].haircut
    assert firm.haircut_collateral == known.haircut_collateral - supplied * keep  # debt still counted
    blind = [f for f in firm.findings if f.code is FindingCode.BLIND_SPOT and f.details["account"] == "aave"]
    assert len(blind) == 1 and blind[0].details["cause"] == FindingCode.DEFI_HAIRCUT_CLASS_UNKNOWN.value
    assert "morpho_blue" in blind[0].message
    # the pure valuation says the same
    positions = [dataclasses.replace(p, haircut_class="morpho_blue") if p.id == "aave" else p
                 for p in asyncio.run(_read(cfg))]
    got = value_positions(positions, prices, HAIRCUTS)["firm"]
    assert got.blind and got.unpriced == ["aave"]
    assert [f.code for f in got.findings] == [FindingCode.DEFI_HAIRCUT_CLASS_UNKNOWN]


def test_an_unreadable_position_blinds_its_client_in_the_sweep(world: dict[str, Any]) -> None:
    cfg = world["cfg"]
    broken = cfg.model_copy(update={"defi_positions": tuple(
        p.model_copy(update={"address": world["usdc"].address}) if p.id == "wst" else p for p in cfg.defi_positions)})
    obs, _ = asyncio.run(collect(broken))
    wst = next(s for s in obs.snapshots if s.account.id == "wst")
    assert not wst.ok and not wst.balances
    assert [f.code for f in wst.findings] == [FindingCode.DEFI_POSITION_UNREADABLE]
    ev = evaluate(broken, _with_prices(obs, oracle_prices(world)), policy=None, ladder={}, peaks={},
                  with_stress=False)
    assert ev.valuations["firm"].blind
