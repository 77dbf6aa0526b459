"""dYdX simulators started per test from scenario dicts; every one is stopped at teardown."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from primeguard.sandbox.dydx.server import DydxSimulators
from primeguard.sandbox.scenario import Scenario

PLACE = "/dydxprotocol.clob.MsgPlaceOrder"
CANCEL = "/dydxprotocol.clob.MsgCancelOrder"
BATCH = "/dydxprotocol.clob.MsgBatchCancel"
WITHDRAW = "/dydxprotocol.sending.MsgWithdrawFromSubaccount"

TRADING_KEY = {"id": 1, "type": "AllOf", "config": [
    {"type": "SignatureVerification"},
    {"type": "AnyOf", "config": [{"type": "MessageFilter", "config": [PLACE]},
                                 {"type": "MessageFilter", "config": [CANCEL]},
                                 {"type": "MessageFilter", "config": [BATCH]}]},
    {"type": "SubaccountFilter", "config": [0]},
]}
BARE_KEY = {"id": 2, "type": "SignatureVerification"}

BASE: dict[str, Any] = {
    "name": "dydx",
    "feeds": [{"asset": "BTC", "answer": "60000"}, {"asset": "ETH", "answer": "3000"},
              {"asset": "USDC", "answer": "1"}],
    "clients": [
        {"id": "alpha", "dydx": [{
            "subaccounts": [
                {"number": 0, "usdc": "-20000",
                 "perps": [{"market": "BTC-USD", "size": "0.5", "entry_price": "50000"}]},
                {"number": 1, "usdc": "9000", "perps": [{"market": "ETH-USD", "size": "-2", "entry_price": "3500"}]},
            ],
            "authenticators": [TRADING_KEY],
        }]},
        {"id": "beta", "dydx": [{"subaccounts": [{"number": 0, "usdc": "5000"}],
                                 "authenticators": [BARE_KEY], "v3_stark_key_holders": ["client"]}]},
    ],
}


def scenario_dict(**over: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(over)
    return data


@pytest.fixture
def world() -> Callable[..., dict[str, Any]]:
    """Build a scenario dict from the base dYdX world with top-level overrides."""
    return scenario_dict


@pytest.fixture
def sims_factory() -> Iterator[Callable[..., DydxSimulators]]:
    started: list[DydxSimulators] = []

    def make(data: dict[str, Any] | None = None, **kwargs: Any) -> DydxSimulators:
        sims = DydxSimulators(Scenario.model_validate(data or scenario_dict()), **kwargs)
        started.append(sims)
        sims.start()
        return sims

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def sims(sims_factory: Callable[..., DydxSimulators]) -> DydxSimulators:
    return sims_factory()
