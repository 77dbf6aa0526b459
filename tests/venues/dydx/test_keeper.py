"""The node simulator stores only what the chain's x/accountplus keeper stores, answers with the
chain's gRPC codes, and lists ids in the keeper's store order; the adapter reads a bad address as
bad input, not as an outage. Real gRPC over loopback."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import grpc
import pytest
from pydantic import ValidationError
from v4_proto.dydxprotocol.accountplus import query_pb2, query_pb2_grpc

from primeguard.domain.errors import SandboxError, VenueBadRequest, VenueUnavailable
from primeguard.sandbox.dydx.keeper import KeeperRefusal, check_add
from primeguard.sandbox.dydx.state import derive_address
from primeguard.sandbox.faults import FaultConfig
from primeguard.sandbox.scenario import Scenario
from primeguard.venues.dydx.node import list_authenticators

PLACE = "/dydxprotocol.clob.MsgPlaceOrder"
KEY = bytes([2]) + bytes(range(1, 33))
KEY_B64 = base64.b64encode(KEY).decode()


def _sub(t: str, raw: bytes) -> dict[str, Any]:
    return {"type": t, "config": base64.b64encode(raw).decode()}


REFUSED: list[tuple[str, dict[str, Any]]] = [
    ("unsigned leaf", {"type": "MessageFilter", "config": [PLACE]}),
    ("unsigned AnyOf branch", {"type": "AnyOf", "config": [
        {"type": "SignatureVerification"}, {"type": "MessageFilter", "config": [PLACE]}]}),
    ("AllOf of filters only", {"type": "AllOf", "config": [
        {"type": "MessageFilter", "config": [PLACE]}, {"type": "SubaccountFilter", "config": [0]}]}),
    ("AllOf with one child", {"type": "AllOf", "config": [{"type": "SignatureVerification"}]}),
    ("AnyOf with one child", {"type": "AnyOf", "config": [{"type": "SignatureVerification"}]}),
    ("inline JSON sub-config", {"type": "AllOf", "encoding": "nested", "config": [
        {"type": "SignatureVerification"},
        {"type": "AnyOf", "config": [{"type": "SignatureVerification"}, {"type": "SignatureVerification"}]}]}),
    ("unregistered type", {"type": "PartitionedAllOf", "config": "[]"}),
    ("over 1,024 bytes", {"type": "AllOf", "config": [
        {"type": "SignatureVerification"},
        {"type": "MessageFilter", "config": [f"/x.y.Msg{i:04d}" for i in range(90)]}]}),
]


@pytest.mark.parametrize(("name", "auth"), REFUSED, ids=[r[0] for r in REFUSED])
def test_add_authenticator_refuses_what_the_keeper_refuses(sims, name, auth):
    addr = sims.address_of("alpha")
    before = sims.world.authenticators(addr)
    with pytest.raises(SandboxError, match="keeper refuses"):
        sims.add_authenticator(addr, {"id": 77, **auth})
    assert sims.world.authenticators(addr) == before, "nothing stored"


@pytest.mark.parametrize(("name", "auth"), REFUSED, ids=[r[0] for r in REFUSED])
def test_scenario_loading_refuses_what_the_keeper_refuses(world, name, auth):
    data = world()
    data["clients"][0]["dydx"][0]["authenticators"] = [{"id": 3, **auth}]
    with pytest.raises(ValidationError, match="keeper refuses"):
        Scenario.model_validate(data)
    data["clients"][0]["dydx"][0]["authenticators"] = [{"id": 3, "bypass_keeper": True, **auth}]
    Scenario.model_validate(data)  # the explicit escape hatch for "a node not behaving like dYdX"


def test_keeper_accepts_what_the_chain_accepts():
    check_add("SignatureVerification", KEY)
    # Go decodes []byte from base64 or from a byte array; a filter's text is not parsed on add.
    check_add("AllOf", json.dumps([{"type": "SignatureVerification", "config": list(KEY)},
                                   _sub("SubaccountFilter", b"0")]).encode())
    check_add("AnyOf", json.dumps([{"Type": "SignatureVerification", "Config": KEY_B64},
                                   _sub("AllOf", json.dumps([{"type": "SignatureVerification", "config": KEY_B64},
                                                             _sub("MessageFilter", PLACE.encode())]).encode())
                                   ]).encode())
    # Two different keys under one AllOf are stored (the keeper only checks that a signature is
    # required); they can never verify a transaction, which the analyser reports.
    other = bytes([3]) + bytes(range(101, 133))
    check_add("AllOf", json.dumps([_sub("SignatureVerification", KEY), _sub("SignatureVerification", other)]).encode())
    with pytest.raises(KeeperRefusal, match="public key size"):
        check_add("SignatureVerification", KEY[:20])


def _ids(sims: Any, addr: str) -> list[int]:
    channel = grpc.insecure_channel(sims.urls["node_grpc"])
    try:
        resp = query_pb2_grpc.QueryStub(channel).GetAuthenticators(
            query_pb2.GetAuthenticatorsRequest(account=addr), timeout=5)
        return [a.id for a in resp.account_authenticators]
    finally:
        channel.close()


def test_ids_come_back_in_the_keepers_string_order(sims):
    addr = sims.address_of("beta")
    key = {"type": "SignatureVerification"}
    sims.set_authenticators(addr, [{"id": i, **key} for i in (2, 10, 1, 100, 9)])
    assert _ids(sims, addr) == [1, 10, 100, 2, 9]  # store keys "<addr>/1/", "<addr>/10/", ...


def test_adapter_reads_a_bad_address_as_bad_input_not_an_outage(sims):
    target = sims.urls["node_grpc"]
    for bad in ("cosmos1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5lzv7xu",  # valid bech32, wrong prefix
                "dydx1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5lzv7xv",  # bad checksum
                "not-an-address"):
        with pytest.raises(VenueBadRequest) as err:
            asyncio.run(list_authenticators(target, bad, 5))
        assert err.value.code == "bad_address" and not err.value.retryable
        assert not isinstance(err.value, VenueUnavailable)
    # A real internal failure is still an outage.
    sims.set_faults("dydx-node", FaultConfig(error_5xx_rate=1))
    with pytest.raises(VenueUnavailable):
        asyncio.run(list_authenticators(target, sims.address_of("alpha"), 5))
    sims.set_faults("dydx-node", FaultConfig())
    # A valid address with no authenticators: an empty list, as the chain answers.
    assert asyncio.run(list_authenticators(target, derive_address("nobody", 0), 5)) == ()
