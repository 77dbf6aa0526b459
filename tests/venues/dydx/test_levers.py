"""dYdX levers against the simulated node (real gRPC, transactions signed by dydx-v4-client) and
indexer (real HTTP), and the simulator's transaction checks against the chain's rules."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import grpc
import pytest
from coincurve import PrivateKey
from dydx_v4_client.key_pair import KeyPair
from dydx_v4_client.node.builder import Builder, TxOptions
from dydx_v4_client.node.client import NodeClient
from dydx_v4_client.node.message import cancel_order, order_id, remove_authenticator, subaccount, transfer
from dydx_v4_client.wallet import Wallet
from tests.venues.dydx.conftest import CANCEL, PLACE, WITHDRAW, scenario_dict
from v4_proto.cosmos.tx.v1beta1.tx_pb2 import Fee
from v4_proto.dydxprotocol.clob.order_pb2 import Order
from v4_proto.dydxprotocol.clob.tx_pb2 import MsgPlaceOrder

from primeguard.config.schema import DydxAccountConfig, DydxBrokerKeyConfig, SecretRef
from primeguard.domain.errors import ConfigError
from primeguard.domain.model import Capability
from primeguard.sandbox.dydx.server import DydxSimulators
from primeguard.sandbox.dydx.state import derive_address
from primeguard.venues.dydx import collect
from primeguard.venues.dydx.levers import (
    DydxLeverFailed,
    cancel_open_orders,
    close_positions,
    load_key,
    playbook_levers,
    remove_authenticators,
    transfer_free_usdc,
)

REMOVE = "/dydxprotocol.accountplus.MsgRemoveAuthenticator"
TRANSFER = "/dydxprotocol.sending.MsgCreateTransfer"
BROKER_HEX = "7c" * 32  # canary-like: must never leave the lever
BROKER_PUB = PrivateKey(bytes.fromhex(BROKER_HEX)).public_key.format(compressed=True).hex()
STRANGER_HEX = "3d" * 32
BROKER_ADDR = derive_address("broker", 0)
BROKER_AUTH = 7
RISKY_AUTH = 3


def broker_auth(messages: list[str]) -> dict[str, Any]:
    return {"id": BROKER_AUTH, "type": "AllOf", "holder": "operator", "config": [
        {"type": "SignatureVerification", "config": BROKER_PUB},
        {"type": "MessageFilter", "config": messages}]}


RISKY = {"id": RISKY_AUTH, "type": "AllOf", "config": [
    {"type": "SignatureVerification"}, {"type": "MessageFilter", "config": [WITHDRAW]}]}
FULL_POWER = [PLACE, CANCEL, REMOVE, TRANSFER]


def world(messages: list[str] = FULL_POWER) -> dict[str, Any]:
    data = scenario_dict()
    data["clients"][0]["dydx"][0]["authenticators"] = [
        data["clients"][0]["dydx"][0]["authenticators"][0], RISKY, broker_auth(messages)]
    return data


def alpha_cfg(sims: DydxSimulators, **broker: Any) -> DydxAccountConfig:
    acct = next(a for a in sims.config_accounts(timeout_s=5) if a.client == "alpha")
    fields: dict[str, Any] = {"key": SecretRef(value=BROKER_HEX), "authenticator_id": BROKER_AUTH,
                              "chain_id": sims.chain_id, "sweep_address": BROKER_ADDR}
    fields.update(broker)
    return acct.model_copy(update={"broker": DydxBrokerKeyConfig(**fields)})


@pytest.fixture
def full(sims_factory: Callable[..., DydxSimulators]) -> DydxSimulators:
    return sims_factory(world())


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- levers ---------------------------------------------------------------------------------------


def test_cancel_short_term_and_stateful_orders_then_nothing_to_do(full: DydxSimulators) -> None:
    full.add_order("alpha", 0, "BTC-USD", "BUY", Decimal("0.1"), Decimal(55000), client_id=11)
    full.add_order("alpha", 0, "BTC-USD", "SELL", Decimal("0.2"), Decimal(70000), client_id=12, stateful=True)
    full.add_order("alpha", 1, "ETH-USD", "SELL", Decimal(1), Decimal(3300), client_id=13, stateful=True)
    cfg = alpha_cfg(full)
    seq0 = full.account_info("alpha")[1]
    first = run(cancel_open_orders(cfg, "act-1"))
    assert first.status == "done", first
    assert len(first.done) == 3 and len(first.tx_hashes) == 3
    assert full.open_orders("alpha", 0) == [] and full.open_orders("alpha", 1) == []
    # two stateful cancels consumed the sequence; the short-term cancel (GoodTilBlock) did not
    assert full.account_info("alpha")[1] == seq0 + 2
    second = run(cancel_open_orders(cfg, "act-1"))
    assert second.status == "nothing_to_do" and second.tx_hashes == ()
    assert full.account_info("alpha")[1] == seq0 + 2


def test_close_long_and_short_within_cap_then_nothing_to_do(full: DydxSimulators) -> None:
    cfg = alpha_cfg(full)
    usdc0, usdc1 = full.usdc("alpha", 0), full.usdc("alpha", 1)
    result = run(close_positions(cfg, "act-2", slippage_cap=Decimal("0.02")))
    assert result.status == "done", result
    assert sorted(result.done) == ["0:BTC-USD", "1:ETH-USD"]
    assert full.positions("alpha", 0) == {} and full.positions("alpha", 1) == {}
    # long 0.5 BTC sold at oracle 60000 - 0.1 % spread; short 2 ETH bought at 3000 + 0.1 %
    assert full.usdc("alpha", 0) == usdc0 + Decimal("0.5") * Decimal("59940")
    assert full.usdc("alpha", 1) == usdc1 - 2 * Decimal("3003")
    again = run(close_positions(cfg, "act-2", slippage_cap=Decimal("0.02")))
    assert again.status == "nothing_to_do"
    assert full.usdc("alpha", 0) == usdc0 + Decimal("0.5") * Decimal("59940")


def test_close_beyond_the_cap_is_an_unfilled_ioc(full: DydxSimulators) -> None:
    full.set_spread(Decimal("0.05"))  # the book is 5 % away; the cap is 2 %
    cfg = alpha_cfg(full)
    result = run(close_positions(cfg, "act-3", slippage_cap=Decimal("0.02")))
    assert result.status == "refused" and result.why == "slippage_cap"
    assert sorted(result.not_done) == ["0:BTC-USD", "1:ETH-USD"]
    assert "slippage cap" in result.reason
    assert full.positions("alpha", 0) == {"BTC-USD": Decimal("0.5")}
    assert full.positions("alpha", 1) == {"ETH-USD": Decimal("-2")}


def _withdraw_power(cfg: DydxAccountConfig, auth_id: int) -> bool:
    snap = run(collect(cfg))
    creds = [c for c in snap.credentials if c.details.get("authenticator_id") == auth_id]
    return any(c.can(Capability.WITHDRAW) for c in creds)


def test_remove_risky_authenticator_then_analyzer_no_longer_reports_it(full: DydxSimulators) -> None:
    cfg = alpha_cfg(full)
    assert _withdraw_power(cfg, RISKY_AUTH)
    result = run(remove_authenticators(cfg, "act-4", ids=[RISKY_AUTH]))
    assert result.status == "done" and result.done == (f"authenticator:{RISKY_AUTH}",)
    assert not _withdraw_power(cfg, RISKY_AUTH)
    assert {a.id for a in full.world.authenticators(cfg.address)} == {1, BROKER_AUTH}
    assert run(remove_authenticators(cfg, "act-4", ids=[RISKY_AUTH])).status == "nothing_to_do"


def test_remove_all_client_authenticators_keeps_the_brokers_own(full: DydxSimulators) -> None:
    cfg = alpha_cfg(full)
    result = run(remove_authenticators(cfg, "act-5"))
    assert result.status == "done" and len(result.done) == 2
    assert [a.id for a in full.world.authenticators(cfg.address)] == [BROKER_AUTH]


def test_transfer_free_usdc_to_the_broker_subaccount(full: DydxSimulators) -> None:
    cfg = alpha_cfg(full)
    # subaccount 1: 9000 USDC, short 2 ETH at 3000 (margin 5 %: 300): equity 3000, free 2700
    result = run(transfer_free_usdc(cfg, "act-6"))
    assert result.status == "done", result
    assert result.done == ("1:2700 USDC",)
    assert full.usdc(BROKER_ADDR, 0) == Decimal(2700)
    assert full.usdc("alpha", 1) == Decimal(9000 - 2700)
    rows = run(_transfers(full, cfg.address, 1))
    assert rows[0]["type"] == "TRANSFER_OUT" and rows[0]["recipient"]["address"] == BROKER_ADDR
    assert rows[0]["transactionHash"] == result.tx_hashes[0]
    again = run(transfer_free_usdc(cfg, "act-6"))
    assert again.status == "nothing_to_do"
    assert full.usdc(BROKER_ADDR, 0) == Decimal(2700)


async def _transfers(sims: DydxSimulators, address: str, number: int) -> list[dict[str, Any]]:
    from dydx_v4_client.indexer.rest.indexer_client import IndexerClient
    client = IndexerClient(sims.urls["indexer"], api_timeout=5)
    body = await client.account.get_subaccount_transfers(address, number)
    return list(body["transfers"])


def test_credential_lacking_the_power_is_refused_with_reason(sims_factory: Callable[..., DydxSimulators]) -> None:
    sims = sims_factory(world([PLACE, CANCEL]))  # a trading-only broker key
    cfg = alpha_cfg(sims)
    seq0 = sims.account_info("alpha")[1]
    removed = run(remove_authenticators(cfg, "act-7"))
    assert removed.status == "refused" and removed.why == "no_power"
    assert removed.not_done == ("authenticator:1", f"authenticator:{RISKY_AUTH}")
    assert f"does not admit {REMOVE}" in removed.reason
    moved = run(transfer_free_usdc(cfg, "act-7"))
    assert moved.status == "refused" and moved.why == "no_power" and moved.not_done == ("1:2700 USDC",)
    assert {a.id for a in sims.world.authenticators(cfg.address)} == {1, RISKY_AUTH, BROKER_AUTH}
    assert sims.usdc("alpha", 1) == Decimal(9000) and sims.account_info("alpha")[1] == seq0


def test_no_broker_key_is_refused_not_configured(full: DydxSimulators) -> None:
    acct = next(a for a in full.config_accounts() if a.client == "alpha")
    result = run(cancel_open_orders(acct, "act-8"))
    assert result.status == "refused" and result.why == "not_configured"


def test_owner_key_can_act_without_an_authenticator(full: DydxSimulators) -> None:
    cfg = alpha_cfg(full, key=SecretRef(value=full.owner_key_hex("alpha")), authenticator_id=None)
    result = run(remove_authenticators(cfg, "act-9", ids=[RISKY_AUTH]))
    assert result.status == "done"


def test_playbook_levers_raise_when_refused(sims_factory: Callable[..., DydxSimulators]) -> None:
    from primeguard.config.schema import PrimeguardConfig
    sims = sims_factory(world([PLACE, CANCEL]))
    cfg = PrimeguardConfig.model_construct(dydx_accounts=(alpha_cfg(sims),))
    levers = playbook_levers(cfg)
    assert set(levers) == {"halt_dydx", "liquidate_dydx"}

    class Action:
        id = "act-10"
        client_id = "alpha"
        params = None

    with pytest.raises(DydxLeverFailed) as info:
        run(levers["halt_dydx"](Action()))
    assert any(r.why == "no_power" for r in info.value.results)


def test_broker_key_never_leaks(full: DydxSimulators, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cfg = alpha_cfg(full)
    full.add_order("alpha", 0, "BTC-USD", "BUY", Decimal("0.1"), Decimal(55000), client_id=21)
    results = [run(cancel_open_orders(cfg, "act-11")), run(close_positions(cfg, "act-11")),
               run(transfer_free_usdc(cfg, "act-11")), run(remove_authenticators(cfg, "act-11"))]
    text = repr(results) + repr(cfg) + cfg.model_dump_json() + caplog.text + str([r.to_json() for r in results])
    assert BROKER_HEX not in text and BROKER_HEX.upper() not in text
    bad = cfg.model_copy(update={"broker": cfg.broker.model_copy(  # type: ignore[union-attr]
        update={"key": SecretRef(value="canary-secret-dydx-broker")})})
    with pytest.raises(ConfigError) as info:
        load_key(bad)
    assert "canary-secret-dydx-broker" not in str(info.value) and info.value.__cause__ is None


# --- the simulator's transaction path against the chain's rules ------------------------------------


def _node(sims: DydxSimulators) -> NodeClient:
    return NodeClient(grpc.insecure_channel(sims.urls["node_grpc"]), Builder(sims.chain_id, "usdc", memo=""))


def _send(sims: DydxSimulators, key_hex: str, msg: Any, *, auth: int | None = BROKER_AUTH,
          sequence: int | None = None, number: int | None = None) -> Any:
    node = _node(sims)
    acct_number, acct_seq = sims.account_info("alpha")
    number = acct_number if number is None else number
    sequence = acct_seq if sequence is None else sequence
    wallet = Wallet(KeyPair.from_hex(key_hex), number, sequence)
    options = None if auth is None else TxOptions([auth], sequence, number)
    tx = node.builder.build(wallet, msg, fee=Fee(gas_limit=1_000_000), tx_options=options)
    return run(node.broadcast(tx)).tx_response


def _remove_risky(sims: DydxSimulators) -> Any:
    return remove_authenticator(sims.address_of("alpha"), RISKY_AUTH)


def test_chain_accepts_a_good_tx_and_consumes_the_sequence(full: DydxSimulators) -> None:
    seq0 = full.account_info("alpha")[1]
    r = _send(full, BROKER_HEX, _remove_risky(full))
    assert r.code == 0 and len(r.txhash) == 64
    assert full.account_info("alpha")[1] == seq0 + 1
    gone = _send(full, BROKER_HEX, _remove_risky(full))  # delivered, fails in the message handler
    assert (gone.codespace, gone.code) == ("accountplus", 1)
    assert full.account_info("alpha")[1] == seq0 + 2


def test_chain_refuses_a_wrong_signature(full: DydxSimulators) -> None:
    seq0 = full.account_info("alpha")[1]
    r = _send(full, STRANGER_HEX, _remove_risky(full))
    assert (r.codespace, r.code) == ("sdk", 4) and "signature verification failed" in r.raw_log
    owner_path = _send(full, STRANGER_HEX, _remove_risky(full), auth=None)
    assert (owner_path.codespace, owner_path.code) == ("sdk", 4)
    assert "please verify account number" in owner_path.raw_log
    assert full.account_info("alpha")[1] == seq0
    assert RISKY_AUTH in {a.id for a in full.world.authenticators(full.address_of("alpha"))}


def test_chain_refuses_a_wrong_sequence(full: DydxSimulators) -> None:
    seq0 = full.account_info("alpha")[1]
    r = _send(full, BROKER_HEX, _remove_risky(full), sequence=seq0 + 5)
    assert (r.codespace, r.code) == ("sdk", 32)
    assert f"account sequence mismatch, expected {seq0}, got {seq0 + 5}" in r.raw_log


def test_chain_refuses_a_wrong_account_number(full: DydxSimulators) -> None:
    number = full.account_info("alpha")[0]
    r = _send(full, full.owner_key_hex("alpha"), _remove_risky(full), auth=None, number=number + 1)
    assert (r.codespace, r.code) == ("sdk", 4)
    assert f"account number ({number})" in r.raw_log
    ok = _send(full, full.owner_key_hex("alpha"), _remove_risky(full), auth=None)
    assert ok.code == 0


def test_chain_refuses_a_message_the_authenticator_does_not_admit(
        sims_factory: Callable[..., DydxSimulators]) -> None:
    sims = sims_factory(world([PLACE, CANCEL]))
    r = _send(sims, BROKER_HEX, _remove_risky(sims))
    assert (r.codespace, r.code) == ("sdk", 4) and "message types do not match" in r.raw_log
    sub = transfer(subaccount(sims.address_of("alpha"), 1), subaccount(BROKER_ADDR, 0), 0, 1_000_000)
    r2 = _send(sims, BROKER_HEX, sub)
    assert (r2.codespace, r2.code) == ("sdk", 4)
    assert sims.usdc("alpha", 1) == Decimal(9000)


def test_chain_decoding_rules(full: DydxSimulators) -> None:
    from v4_proto.cosmos.tx.v1beta1.service_pb2 import BroadcastTxRequest
    from v4_proto.cosmos.tx.v1beta1.service_pb2_grpc import ServiceStub
    stub = ServiceStub(grpc.insecure_channel(full.urls["node_grpc"]))
    garbage = stub.BroadcastTx(BroadcastTxRequest(tx_bytes=b"\xff\x00not a tx"), timeout=5).tx_response
    assert (garbage.codespace, garbage.code) == ("sdk", 2)
    # unknown authenticator id: accountplus 1
    r = _send(full, BROKER_HEX, _remove_risky(full), auth=99)
    assert (r.codespace, r.code) == ("accountplus", 1) and "Authenticator is not found" in r.raw_log
    # selected authenticators must match the message count: sdk 18
    node = _node(full)
    number, seq = full.account_info("alpha")
    wallet = Wallet(KeyPair.from_hex(BROKER_HEX), number, seq)
    tx = node.builder.build(wallet, _remove_risky(full), fee=Fee(gas_limit=1), tx_options=TxOptions([7, 7], seq,
                                                                                                    number))
    mismatch = run(node.broadcast(tx)).tx_response
    assert (mismatch.codespace, mismatch.code) == ("sdk", 18)


def test_short_term_orders_skip_the_sequence_and_respect_the_block_window(full: DydxSimulators) -> None:
    node = _node(full)
    height = run(node.latest_block_height())
    address = full.address_of("alpha")
    seq0 = full.account_info("alpha")[1]
    far = Order(order_id=order_id(address, 0, 5, 0, 0), side=Order.SIDE_SELL, quantums=5_000_000_000,
                subticks=5_000_000_000, good_til_block=height + 25, time_in_force=Order.TIME_IN_FORCE_IOC,
                reduce_only=True)
    r = _send(full, BROKER_HEX, MsgPlaceOrder(order=far), sequence=seq0 + 99)  # sequence ignored
    assert (r.codespace, r.code) == ("clob", 11)
    near = Order(order_id=order_id(address, 0, 5, 0, 0), side=Order.SIDE_BUY, quantums=5_000_000_000,
                 subticks=7_000_000_000, good_til_block=height + 5, time_in_force=Order.TIME_IN_FORCE_IOC,
                 reduce_only=True)
    grow = _send(full, BROKER_HEX, MsgPlaceOrder(order=near), sequence=seq0 + 99)
    assert (grow.codespace, grow.code) == ("clob", 2001)  # reduce-only buy on a long
    missing = _send(full, BROKER_HEX, cancel_order(order_id(address, 0, 404, 0, 0), good_til_block=height + 5))
    assert (missing.codespace, missing.code) == ("clob", 2)
    assert full.account_info("alpha")[1] == seq0
    assert full.positions("alpha", 0) == {"BTC-USD": Decimal("0.5")}
