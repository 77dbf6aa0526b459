"""Chain identity: the config's ``chain_id`` is checked against the node's ``eth_chainId`` by the
sweep's reader (at start and after every reconnect), by the oracle watcher (every WebSocket
connection) and by custody (before signing and before sending).

The module's sandbox runs anvil with chain id 5 while the config says 1: a config for mainnet
pointed at another chain. The reconnect test swaps a bare anvil for one on another chain behind
the same port.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import yaml

from primeguard.config.loader import load_config
from primeguard.custody.context import LiveContext, policy_decider
from primeguard.custody.withdrawals import WithdrawalService
from primeguard.daemon.watcher import OracleUpdate, OracleWatcher
from primeguard.domain.decision import ReasonCode
from primeguard.domain.errors import ChainIdMismatch, VenueError
from primeguard.domain.findings import FindingCode, Severity
from primeguard.pipeline.collect import collect
from primeguard.pipeline.evaluate import evaluate
from primeguard.policy.loader import load
from primeguard.sandbox.anvil import start_anvil
from primeguard.sandbox.chain import derived_account
from primeguard.sandbox.scenario import MAINNET_TOKENS
from primeguard.sandbox.vaults import TREASURY_KEY_INDEX
from primeguard.sandbox.world import Sandbox
from primeguard.store.db import open_store
from primeguard.venues.evm.reader import ChainReader
from tests.conftest import REPO, scenario_from
from tests.security.world import allowlist_entry
from tests.store.util import actor

pytestmark = pytest.mark.chain

CID = "gamma"
NODE_CHAIN_ID = 5
CONFIG_CHAIN_ID = 1
DEST = "0x4b280EdCc946EAA52913262F098391Af6aA31751"
USDC = MAINNET_TOKENS["USDC"][0]
WORLD = {
    "name": "chain-identity",
    "chains": [{"id": "ethereum", "chain_id": NODE_CHAIN_ID}],
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": CID, "vault": {"limits": {"USDC": "10000000"}, "tokens": {"USDC": "2000000"},
                                      "allowlist": [{"asset": "USDC", "address": DEST}]}}],
}
ENTRY = allowlist_entry("gamma-vault-usdc", CID, "USDC", DEST, "Gamma settlement wallet")


def with_chain_id(sb: Sandbox, chain_id: int) -> Any:
    """The sandbox's config, written to a file with another ``chain_id`` and loaded from it."""
    data = sb.config_dict()
    for c in data["chains"]:
        c["chain_id"] = chain_id
    path = sb.workdir / f"config-chain-{chain_id}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Any, Any, Any]]:
    root = tmp_path_factory.mktemp("chainid")
    sb = Sandbox(scenario_from(WORLD), root / "world")
    sb.start()
    try:
        pdir = root / "policies"
        shutil.copytree(REPO / "policies", pdir)
        with (pdir / "allowlist.yaml").open("a") as fh:
            fh.write(ENTRY)
        store = open_store(f"sqlite:///{root / 'custody.db'}", migrate=True)
        yield sb, with_chain_id(sb, CONFIG_CHAIN_ID), load(pdir), store
    finally:
        sb.stop()


def service(sb: Sandbox, cfg: Any, policy: Any, store: Any) -> WithdrawalService:
    return WithdrawalService(cfg, store, policy_decider(policy), LiveContext(cfg, store, policy), config_dir=sb.workdir)


def test_sweep_marks_the_chain_blind_and_withdrawal_is_denied(world):
    sb, cfg, policy, store = world
    obs, _ = asyncio.run(collect(cfg))
    [mismatch] = [f for f in obs.findings if f.code is FindingCode.CHAIN_ID_MISMATCH]
    assert mismatch.severity is Severity.CRITICAL and mismatch.chain == "ethereum"
    assert mismatch.details == {"expected_chain_id": CONFIG_CHAIN_ID, "node_chain_id": NODE_CHAIN_ID}
    evm = [s for s in obs.snapshots if s.account.chain == "ethereum"]
    assert evm and all(not s.ok and not s.balances for s in evm)
    assert not any(q.source_id.startswith("ethereum:") for q in obs.prices)  # no oracle price from it
    ev = evaluate(cfg, obs, policy=policy, ladder={}, peaks={}, loan_start=obs.taken_at, with_stress=False)
    assert ev.valuations[CID].blind
    r = service(sb, cfg, policy, store).request(account_id=cfg.vaults[0].id, asset="USDC", amount="10",
                                                destination=DEST, requested_by=actor(store, "tom"))
    assert r.state == "denied" and ReasonCode.BLIND_SPOT in r.decision.reasons, r.decision.explanation
    # Control: the same world with the node's real chain id is not blind.
    right = with_chain_id(sb, NODE_CHAIN_ID)
    obs_ok, _ = asyncio.run(collect(right))
    assert not any(f.code is FindingCode.CHAIN_ID_MISMATCH for f in obs_ok.findings)
    assert all(s.ok for s in obs_ok.snapshots)


def test_custody_refuses_to_sign_or_send_and_nothing_is_mined(world):
    sb, cfg, policy, store = world
    node = sb.chains["ethereum"].node
    treasury = derived_account(TREASURY_KEY_INDEX)[0]
    nonce_before = int(node.rpc("eth_getTransactionCount", [treasury, "pending"]), 16)
    block_before = int(node.rpc("eth_blockNumber"), 16)
    svc = service(sb, cfg, policy, store)
    ex = svc.executor(cfg.vaults[0])
    with pytest.raises(ChainIdMismatch) as err:
        ex.sign_withdraw(USDC, DEST, 10_000_000, b"\x01" * 32, nonce_before)
    assert (err.value.expected, err.value.actual) == (CONFIG_CHAIN_ID, NODE_CHAIN_ID)
    # A transaction signed elsewhere (for the configured chain) is not sent either.
    fn = ex.vault.functions.withdraw(USDC, DEST, 10_000_000, b"\x02" * 32)
    signed = svc.signer().sign(fn.build_transaction({
        "from": treasury, "nonce": nonce_before, "gas": 250_000, "chainId": CONFIG_CHAIN_ID,
        "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}))
    with pytest.raises(ChainIdMismatch):
        ex.broadcast(signed)
    assert int(node.rpc("eth_getTransactionCount", [treasury, "pending"]), 16) == nonce_before
    assert int(node.rpc("eth_blockNumber"), 16) == block_before
    assert node.rpc("eth_getTransactionByHash", [signed.tx_hash]) is None


def test_oracle_watcher_ignores_a_node_on_another_chain(world):
    sb, cfg, _policy, _store = world
    right = with_chain_id(sb, NODE_CHAIN_ID)

    async def run() -> tuple[list[OracleUpdate], list[OracleUpdate], dict[str, int | None]]:
        wrong_seen: list[OracleUpdate] = []
        right_seen: list[OracleUpdate] = []

        async def on_wrong(u: OracleUpdate) -> None:
            wrong_seen.append(u)

        async def on_right(u: OracleUpdate) -> None:
            right_seen.append(u)

        wrong_w = OracleWatcher(cfg, on_wrong, retry_s=0.2)
        right_w = OracleWatcher(right, on_right, retry_s=0.2)
        wrong_w.start()
        right_w.start()
        try:
            await until(lambda: "ethereum" in wrong_w.wrong_chain and right_w.connected.get("ethereum"))
            await asyncio.to_thread(sb.set_price, "ETH", Decimal("2900"))
            await until(lambda: bool(right_seen))  # the update was emitted and is visible to a right watcher
            return wrong_seen, right_seen, dict(wrong_w.wrong_chain)
        finally:
            await wrong_w.stop()
            await right_w.stop()

    wrong_seen, right_seen, wrong_chain = asyncio.run(run())
    assert right_seen[0].asset == "ETH"
    assert wrong_seen == []
    assert wrong_chain == {"ethereum": NODE_CHAIN_ID}


async def until(pred: Any, deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def test_reconnect_to_a_node_on_another_chain_is_detected(world, tmp_path):
    """A bare anvil on chain 31337 is replaced, behind the same port, by one on chain 999: the
    reader's next reads and the watcher's reconnect both see the change."""
    _sb, cfg, _policy, _store = world
    first = start_anvil(chain_id=31337, log_dir=tmp_path)
    port = first.port
    second = None
    chain = cfg.chains[0].model_copy(update={"chain_id": 31337, "rpc_url": first.rpc_url, "ws_url": first.ws_url})
    local = cfg.model_copy(update={"chains": [chain]})
    try:
        async def run() -> tuple[int, BaseException, dict[str, int | None]]:
            nonlocal second

            async def ignore(_u: OracleUpdate) -> None:
                return None

            watcher = OracleWatcher(local, ignore, retry_s=0.2)
            watcher.start()
            async with ChainReader("ethereum", chain.rpc_url, batch_reader=None, expected_chain_id=31337,
                                   timeout_s=2.0) as reader:
                try:
                    ts = await reader.block_timestamp()
                    await until(lambda: watcher.connected.get("ethereum") is True)
                    first.stop()
                    second = await asyncio.to_thread(start_anvil, chain_id=999, port=port, log_dir=tmp_path)
                    err: BaseException | None = None
                    end = time.monotonic() + 30
                    while err is None or not isinstance(err, ChainIdMismatch):
                        if time.monotonic() > end:
                            raise AssertionError(f"reader never saw the new chain (last error {err!r})")
                        try:
                            await reader.block_timestamp()
                            err = AssertionError("read answered by a node on another chain")
                            break
                        except VenueError as exc:  # the dead connection first, then the mismatch
                            err = exc
                            await asyncio.sleep(0.05)
                    await until(lambda: watcher.wrong_chain.get("ethereum") == 999)
                    return ts, err, dict(watcher.wrong_chain)
                finally:
                    await watcher.stop()

        ts, err, wrong = asyncio.run(run())
        assert ts > 0
        assert isinstance(err, ChainIdMismatch) and (err.expected, err.actual) == (31337, 999)
        assert wrong == {"ethereum": 999}
    finally:
        first.stop()
        if second is not None:
            second.stop()
