"""The dYdX simulators, driven through the real dydx-v4-client: IndexerClient over HTTP and
QueryNodeClient over a real gRPC channel. Wire shapes, 404/403, injected faults, runtime changes."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import grpc
import httpx
import pytest
from bech32 import bech32_decode
from dydx_v4_client.indexer.rest.indexer_client import IndexerClient
from dydx_v4_client.node.client import QueryNodeClient
from pydantic import ValidationError
from tests.waiting import run_within
from v4_proto.dydxprotocol.accountplus import query_pb2, query_pb2_grpc

from primeguard.config.schema import DydxAccountConfig
from primeguard.domain.model import Holder
from primeguard.sandbox.dydx.indexer import GEOBLOCK_BODY
from primeguard.sandbox.dydx.state import derive_address
from primeguard.sandbox.faults import FaultConfig
from primeguard.sandbox.scenario import Scenario

PLACE = "/dydxprotocol.clob.MsgPlaceOrder"


def indexer(sims, timeout: float = 3) -> IndexerClient:
    return IndexerClient(sims.urls["indexer"], api_timeout=timeout)


def node(sims) -> tuple[QueryNodeClient, grpc.Channel]:
    channel = grpc.insecure_channel(sims.urls["node_grpc"])
    return QueryNodeClient(channel), channel


def test_start_is_idempotent_and_config_accounts_load(sims):
    urls = sims.start()
    assert urls == sims.start() and set(urls) == {"indexer", "node_grpc"}
    assert urls["indexer"].startswith("http://127.0.0.1:") and urls["node_grpc"].startswith("127.0.0.1:")
    accounts = sims.config_accounts()
    assert [a.id for a in accounts] == ["alpha-dydx", "beta-dydx"]
    alpha, beta = accounts
    assert alpha.subaccounts == (0, 1) and alpha.indexer_url == urls["indexer"] and alpha.node_grpc == urls["node_grpc"]
    assert beta.v3_stark_key_holders == (Holder.CLIENT,)
    hrp, data = bech32_decode(alpha.address)
    assert hrp == "dydx" and data is not None and alpha.address == derive_address("alpha", 0)
    DydxAccountConfig.model_validate(alpha.model_dump(mode="json", exclude_none=True))  # what world.py writes


def test_subaccount_shape_through_indexer_client(sims):
    addr = sims.address_of("alpha")
    body = asyncio.run(indexer(sims).account.get_subaccount(addr, 0))
    sub = body["subaccount"]
    assert sub["address"] == addr and sub["subaccountNumber"] == 0 and sub["marginEnabled"] is True
    # equity = quote + size × oracle = -20000 + 0.5 × 60000
    assert sub["equity"] == "10000" and sub["freeCollateral"] == "8500"
    btc = sub["openPerpetualPositions"]["BTC-USD"]
    assert (btc["side"], btc["size"], btc["entryPrice"], btc["unrealizedPnl"], btc["status"]) == (
        "LONG", "0.5", "50000", "5000", "OPEN")
    assert sub["assetPositions"]["USDC"] == {"size": "20000", "symbol": "USDC", "side": "SHORT", "assetId": "0",
                                             "subaccountNumber": 0}
    short = asyncio.run(indexer(sims).account.get_subaccount(addr, 1))["subaccount"]
    eth = short["openPerpetualPositions"]["ETH-USD"]
    assert eth["side"] == "SHORT" and eth["size"] == "-2"  # the indexer signs perpetual sizes
    for value in (sub["equity"], btc["size"], sub["updatedAtHeight"]):
        assert isinstance(value, str)


def test_list_endpoints(sims):
    addr = sims.address_of("alpha")
    client = indexer(sims)

    async def read():
        return await asyncio.gather(
            client.account.get_subaccounts(addr),
            client.account.get_subaccount_perpetual_positions(addr, 0),
            client.account.get_subaccount_asset_positions(addr, 1),
            client.account.get_subaccount_transfers(addr, 0),
            client.markets.get_perpetual_markets(),
            client.markets.get_perpetual_markets("ETH-USD"),
            client.utility.get_height(),
            client.utility.get_time(),
        )

    sims.record_transfer("alpha", 0, amount=Decimal("12.5"), recipient="dydx1" + "q" * 38)
    before = time.time()
    subs, perps, assets, transfers, markets, eth, height, now = asyncio.run(read())
    after = time.time()
    assert [s["subaccountNumber"] for s in subs["subaccounts"]] == [0, 1]
    assert [p["market"] for p in perps["positions"]] == ["BTC-USD"]
    assert assets["positions"][0]["side"] == "LONG" and assets["positions"][0]["size"] == "9000"
    assert transfers["transfers"][0]["size"] == "12.5" and "_number" not in transfers["transfers"][0]
    assert markets["markets"]["BTC-USD"]["oraclePrice"] == "60000"  # from the scenario's feeds
    assert markets["markets"]["BTC-USD"]["clobPairId"] == "0" and "USDC-USD" not in markets["markets"]
    assert list(eth["markets"]) == ["ETH-USD"]
    assert int(height["height"]) > 0 and height["time"].endswith("Z")
    assert before - 1 <= now["epoch"] <= after + 1  # the simulator reports the current time


def test_unknown_address_is_404(sims):
    with pytest.raises(httpx.HTTPStatusError) as err:
        asyncio.run(indexer(sims).account.get_subaccount(derive_address("nobody", 0), 0))
    assert err.value.response.status_code == 404
    with pytest.raises(httpx.HTTPStatusError) as err:
        asyncio.run(indexer(sims).account.get_subaccount(sims.address_of("beta"), 7))
    assert err.value.response.status_code == 404


def test_geo_block_is_403_on_address_routes_only(sims):
    sims.set_geo_blocked(True)
    with pytest.raises(httpx.HTTPStatusError) as err:
        asyncio.run(indexer(sims).account.get_subaccount(sims.address_of("alpha"), 0))
    assert err.value.response.status_code == 403 and err.value.response.json() == GEOBLOCK_BODY
    # comlink applies complianceAndGeoCheck to address routes; markets and height still answer.
    assert asyncio.run(indexer(sims).markets.get_perpetual_markets())["markets"]
    assert asyncio.run(indexer(sims).utility.get_height())["height"]
    sims.set_geo_blocked(False)
    assert asyncio.run(indexer(sims).account.get_subaccount(sims.address_of("alpha"), 0))["subaccount"]


def test_indexer_faults_are_mutable_at_runtime(sims):
    client = indexer(sims, timeout=0.3)
    sims.set_faults("dydx", FaultConfig(down=True))
    with pytest.raises(httpx.HTTPStatusError) as err:
        asyncio.run(client.utility.get_height())
    assert err.value.response.status_code == 503
    sims.set_faults("dydx", FaultConfig(rate_limit_every=1, retry_after_s=3))
    with pytest.raises(httpx.HTTPStatusError) as err:
        asyncio.run(client.utility.get_height())
    assert err.value.response.status_code == 429 and err.value.response.headers["Retry-After"] == "3"
    sims.set_faults("dydx", FaultConfig(malformed_rate=1))
    with pytest.raises(json.JSONDecodeError):
        asyncio.run(client.markets.get_perpetual_markets())
    sims.set_faults("dydx", FaultConfig(error_5xx_rate=1, only_paths=("/v4/height",)))
    assert asyncio.run(client.markets.get_perpetual_markets())["markets"]  # other paths unaffected
    with pytest.raises(httpx.HTTPStatusError):
        asyncio.run(client.utility.get_height())
    sims.set_faults("dydx", FaultConfig(timeout_rate=1, timeout_s=600))  # hangs past any deadline of ours
    with pytest.raises(httpx.TimeoutException):  # the client's 0.3 s timeout ends the hang, not the deadline
        run_within(client.utility.get_height(), what="a request to a hanging indexer")
    sims.set_faults("dydx", FaultConfig(latency_ms=150))
    t0 = time.monotonic()
    asyncio.run(indexer(sims).utility.get_height())
    assert time.monotonic() - t0 >= 0.15
    with pytest.raises(KeyError):
        sims.set_faults("binance", FaultConfig())


def test_fault_boxes_count_every_request(sims):
    """The request counters the drill benchmark reads: every indexer request, faulted or not."""
    box = sims.world.faults["dydx"]
    before = box.requests
    client = indexer(sims)
    asyncio.run(client.utility.get_height())
    sims.set_faults("dydx", FaultConfig(error_5xx_rate=1, only_paths=("/v4/height",)))
    asyncio.run(client.markets.get_perpetual_markets())
    with pytest.raises(httpx.HTTPStatusError):
        asyncio.run(client.utility.get_height())
    assert box.requests == before + 3


def test_scenario_faults_apply_from_the_start(sims_factory, world):
    sims = sims_factory(world(faults={"dydx": {"down": True}, "dydx-node": {"down": True}}))
    with pytest.raises(httpx.HTTPStatusError):
        asyncio.run(indexer(sims).utility.get_height())
    client, channel = node(sims)
    with pytest.raises(grpc.RpcError) as err:
        asyncio.run(client.get_authenticators(sims.address_of("alpha")))
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE
    channel.close()


def test_node_lists_authenticators_as_protobuf(sims):
    client, channel = node(sims)
    try:
        resp = asyncio.run(client.get_authenticators(sims.address_of("alpha")))
        [auth] = resp.account_authenticators
        assert auth.id == 1 and auth.type == "AllOf"
        subs = json.loads(auth.config)  # composite config: JSON bytes, sub-configs base64 like the Go node
        assert [s["type"] for s in subs] == ["SignatureVerification", "AnyOf", "SubaccountFilter"]
        assert isinstance(subs[0]["config"], str) and len(__import__("base64").b64decode(subs[0]["config"])) == 33
        beta = asyncio.run(client.get_authenticators(sims.address_of("beta"))).account_authenticators
        assert beta[0].type == "SignatureVerification" and len(beta[0].config) == 33
        assert not asyncio.run(client.get_authenticators(derive_address("nobody", 0))).account_authenticators
    finally:
        channel.close()


def test_node_get_authenticator_and_base64_lookalike_ids(sims):
    addr = sims.address_of("alpha")
    # The trap: JSON transcoding base64-decodes strings like "1234". Protobuf fields stay exact.
    sims.add_authenticator(addr, {"id": 1234, "type": "AllOf", "config": [
        {"type": "SignatureVerification"}, {"type": "MessageFilter", "config": [PLACE]}]})
    client, channel = node(sims)
    try:
        ids = [a.id for a in asyncio.run(client.get_authenticators(addr)).account_authenticators]
        assert ids == [1, 1234]
        transcoded = QueryNodeClient.transcode_response(asyncio.run(client.get_authenticators(addr)))
        assert transcoded["accountAuthenticators"][1]["id"] != 1234  # what we must not rely on
        stub = query_pb2_grpc.QueryStub(channel)
        one = stub.GetAuthenticator(query_pb2.GetAuthenticatorRequest(account=addr, authenticator_id=1234), timeout=3)
        assert one.account_authenticator.type == "AllOf"
        # The chain's query server answers an unknown id and a bad address with INTERNAL.
        with pytest.raises(grpc.RpcError) as err:
            stub.GetAuthenticator(query_pb2.GetAuthenticatorRequest(account=addr, authenticator_id=5), timeout=3)
        assert err.value.code() is grpc.StatusCode.INTERNAL and "not found" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            stub.GetAuthenticators(query_pb2.GetAuthenticatorsRequest(account="cosmos1xyz"), timeout=3)
        assert err.value.code() is grpc.StatusCode.INTERNAL and "bech32" in err.value.details()
    finally:
        channel.close()


def test_byte_array_and_raw_encodings(sims_factory, world):
    data = world()
    data["clients"][1]["dydx"][0]["authenticators"] = [
        {"id": 5, "type": "AllOf", "encoding": "bytes", "config": [
            {"type": "SignatureVerification"}, {"type": "MessageFilter", "config": [PLACE]}]},
        {"id": 6, "type": "AllOf", "raw_config_b64": "W3tub3QganNvbg==", "bypass_keeper": True},
    ]
    sims = sims_factory(data)
    client, channel = node(sims)
    try:
        auths = asyncio.run(client.get_authenticators(sims.address_of("beta"))).account_authenticators
    finally:
        channel.close()
    subs = json.loads(auths[0].config)
    assert all(isinstance(s["config"], list) for s in subs)
    assert auths[1].config == b"[{not json"


def test_runtime_changes_are_served(sims):
    addr = sims.address_of("alpha")
    sims.set_oracle_price("BTC-USD", Decimal("40000"))
    sims.set_equity("alpha", 0, Decimal("7777"))
    sims.set_position("alpha", 1, "ETH-USD", Decimal(0))
    sims.set_position("alpha", 1, "SOL-USD", Decimal("10"), Decimal("150"))
    client = indexer(sims)
    sub0 = asyncio.run(client.account.get_subaccount(addr, 0))["subaccount"]
    sub1 = asyncio.run(client.account.get_subaccount(addr, 1))["subaccount"]
    markets = asyncio.run(client.markets.get_perpetual_markets())["markets"]
    assert sub0["equity"] == "7777" and sub0["openPerpetualPositions"]["BTC-USD"]["unrealizedPnl"] == "-5000"
    assert list(sub1["openPerpetualPositions"]) == ["SOL-USD"] and markets["SOL-USD"]["oraclePrice"] == "150"
    assert markets["BTC-USD"]["oraclePrice"] == "40000"
    sims.set_authenticators("alpha", [{"id": 9, "type": "SignatureVerification"}])
    sims.remove_authenticator("beta", 2)
    client_n, channel = node(sims)
    try:
        assert [a.id for a in asyncio.run(client_n.get_authenticators(addr)).account_authenticators] == [9]
        assert not asyncio.run(client_n.get_authenticators(sims.address_of("beta"))).account_authenticators
    finally:
        channel.close()


def test_oracle_override_and_explicit_address(sims_factory, world):
    data = world()
    explicit = derive_address("elsewhere", 3)
    data["clients"][1]["dydx"][0]["address"] = explicit
    sims = sims_factory(data, oracle_prices={"BTC-USD": Decimal("61000"), "DOGE-USD": Decimal("0.1")})
    markets = asyncio.run(indexer(sims).markets.get_perpetual_markets())["markets"]
    assert markets["BTC-USD"]["oraclePrice"] == "61000" and markets["DOGE-USD"]["oraclePrice"] == "0.1"
    assert sims.address_of("beta") == explicit
    assert sims.config_accounts()[1].address == explicit


def test_two_accounts_per_client_get_indexed_ids(sims_factory, world):
    data = world()
    data["clients"][0]["dydx"].append({"subaccounts": [{"number": 3, "usdc": "1"}]})
    sims = sims_factory(data)
    ids = [a.id for a in sims.config_accounts()]
    assert ids == ["alpha-dydx-1", "alpha-dydx-2", "beta-dydx"]
    assert sims.address_of("alpha", 1) == derive_address("alpha", 1)


@pytest.mark.parametrize("bad", [
    {"id": 1, "type": "MessageFilter", "config": ["MsgSend"]},
    {"id": 1, "type": "SignatureVerification", "config": "abcd"},
    {"id": 1, "type": "AllOf", "config": []},
    {"id": 1, "type": "AllOf", "config": [{"type": "SubaccountFilter", "config": ["x"]}]},
    {"id": 1, "type": "AllOf", "raw_config_b64": "***"},
])
def test_bad_scenario_authenticators_are_rejected_before_start(world, bad):
    data = world()
    data["clients"][0]["dydx"][0]["authenticators"] = [bad]
    with pytest.raises(ValidationError):
        Scenario.model_validate(data)


def test_stop_releases_ports_and_hanging_requests(sims_factory):
    sims = sims_factory()
    sims.set_faults("dydx", FaultConfig(timeout_rate=1, timeout_s=600))  # longer than the deadline below
    sims.set_faults("dydx-node", FaultConfig(timeout_rate=1, timeout_s=600))
    _client, channel = node(sims)

    async def hang():
        return await asyncio.gather(
            indexer(sims, timeout=0.3).utility.get_height(),
            asyncio.to_thread(lambda: query_pb2_grpc.QueryStub(channel).GetAuthenticators(
                query_pb2.GetAuthenticatorsRequest(account=sims.address_of("alpha")), timeout=0.3)),
            return_exceptions=True)

    results = asyncio.run(hang())
    assert all(isinstance(r, Exception) for r in results)
    channel.close()
    run_within(asyncio.to_thread(sims.stop), what="stopping simulators with hanging requests")
    assert sims.urls == {}
    sims.stop()  # idempotent
