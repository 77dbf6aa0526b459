"""CEX simulators for the adapter tests: started once per session, faults reset after each test.

Clients in the shared scenario, each on Binance, OKX and Bybit:

- ``alpha``: read tests (balances, positions, capabilities, whitelists). Not mutated.
- ``bravo``: circuit-breaker levers (orders, positions and keys are changed by the tests).
- ``charlie``: endpoint tests through ccxt sync and async (orders, withdrawals, key management).
- ``delta``: capability findings (whitelist off, expired key, key bound to another IP).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from primeguard.config.schema import CexAccountConfig
from primeguard.sandbox.cex.server import CexSimulators
from primeguard.sandbox.faults import FaultConfig
from primeguard.sandbox.scenario import Scenario

VENUES = ("binance", "okx", "bybit")
WL_ADDRESS = "0x1111111111111111111111111111111111111111"
OFF_LIST = "0x2222222222222222222222222222222222222222"


def _acct(venue: str, keys: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "venue": venue, "spot": {"BTC": "1.25", "ETH": "1", "USDT": "10000"}, "futures": {"USDT": "50000"},
        "positions": [{"symbol": "BTC/USDT:USDT", "size": "0.5", "entry_price": "55000"},
                      {"symbol": "ETH/USDT:USDT", "size": "-2", "entry_price": "3100"}],
        "orders": [{"symbol": "BTC/USDT:USDT", "side": "buy", "amount": "0.1", "price": "50000"},
                   {"symbol": "ETH/USDT", "side": "sell", "amount": "0.5", "price": "3500", "market": "spot"}],
        "whitelist": [{"coin": "USDT", "network": "ETH", "address": WL_ADDRESS, "label": "treasury"}],
        "keys": keys,
    }
    base.update(kw)
    return base


CLIENT = {"id": "client", "spot": True, "futures": True, "withdraw": True, "universal_transfer": True}
OPERATOR = {"id": "ops", "holder": "operator", "spot": True, "futures": True, "withdraw": True,
            "internal_transfer": True, "universal_transfer": True, "ip_whitelist": ["127.0.0.1"]}
MASTER = {"id": "pb-master", "holder": "master", "ip_whitelist": ["127.0.0.1"]}


def scenario_data() -> dict[str, Any]:
    std = [CLIENT, OPERATOR, MASTER]
    charlie_keys = [CLIENT, OPERATOR, MASTER, {"id": "spare1", "spot": True}, {"id": "spare2", "spot": True},
                    {"id": "reader", "holder": "monitor"}]
    delta_keys = [{"id": "client", "spot": True, "expires_in_days": -1},
                  {"id": "elsewhere", "spot": True, "ip_whitelist": ["10.9.8.7"]}, OPERATOR]
    return {
        "name": "cex-tests",
        "feeds": [{"asset": "BTC", "answer": "60000"}, {"asset": "ETH", "answer": "3000"}],
        "clients": [
            {"id": "alpha", "cex": [_acct(v, std) for v in VENUES]},
            {"id": "bravo", "cex": [_acct(v, std) for v in VENUES]},
            {"id": "charlie", "cex": [_acct(v, charlie_keys, positions=[]) for v in VENUES]},
            {"id": "delta", "cex": [_acct(v, delta_keys, whitelist_enabled=False, orders=[]) for v in VENUES]},
        ],
    }


@pytest.fixture(scope="session")
def sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CexSimulators]:
    s = CexSimulators(Scenario.model_validate(scenario_data()))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cex-secrets")


@pytest.fixture(scope="session")
def accounts(sims: CexSimulators, secrets_dir: Path) -> dict[str, CexAccountConfig]:
    return {a.id: a for a in sims.config_accounts(secrets_dir)}


@pytest.fixture(autouse=True)
def _no_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sims" in request.fixturenames:
        s: CexSimulators = request.getfixturevalue("sims")
        for v in VENUES:
            s.set_faults(v, FaultConfig())
            s.state(v).clock_offset_ms = 0

