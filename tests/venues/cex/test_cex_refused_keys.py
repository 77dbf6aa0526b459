"""A client key the venue refuses after the halt unplugged it is a fact about the key, not missing
data: on the three CEX simulators with real ccxt, once ``disable_client_keys`` pinned (Binance) or
deleted (OKX, Bybit) the client's key, the collector confirms its state with the PB's key_admin
credential, reports it with no powers and the snapshot has no gap (so the ladder can move on).
Fail closed stays: without a key-managing credential, or when the venue shows the key still live
(bound to another address), the refusal is still a blind spot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.venues.cex.conftest import VENUES
from tests.venues.cex.helpers import fast_pool

from primeguard.config.schema import CexAccountConfig
from primeguard.domain.model import Capability, Holder
from primeguard.domain.observation import AccountSnapshot, snapshot_gaps
from primeguard.sandbox.cex.server import CexSimulators
from primeguard.sandbox.scenario import Scenario
from primeguard.venues.cex.capabilities import key_subject
from primeguard.venues.cex.collect import collect
from primeguard.venues.cex.levers import disable_client_keys

CLIENT = {"id": "client", "spot": True, "futures": True, "ip_whitelist": ["127.0.0.1"]}
ELSEWHERE = {"id": "client", "spot": True, "futures": True, "ip_whitelist": ["203.0.113.10"]}  # not ours
OPS = {"id": "ops", "holder": "operator", "spot": True, "futures": True, "ip_whitelist": ["127.0.0.1"]}
KEY_ADMIN = {"id": "pb-keys", "holder": "key_admin", "ip_whitelist": ["127.0.0.1"]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, CexAccountConfig]]:
    """``lima``: unplugged by the halt; ``mike``: the client key works only from the client's address."""
    scn = {"name": "cex-refused", "feeds": [{"asset": "BTC", "answer": "60000"}],
           "clients": [{"id": c, "cex": [{"venue": v, "spot": {"USDT": "1000"}, "keys": [k, OPS, KEY_ADMIN]}
                                         for v in VENUES]}
                       for c, k in (("lima", CLIENT), ("mike", ELSEWHERE))]}
    with CexSimulators(Scenario.model_validate(scn)) as sims:
        yield {a.id: a for a in sims.config_accounts(Path(tmp_path_factory.mktemp("refused-secrets")))}


def _without_key_admin(acct: CexAccountConfig) -> CexAccountConfig:
    return acct.model_copy(update={"credentials": tuple(c for c in acct.credentials if c.holder != Holder.KEY_ADMIN)})


def _client_key(snap: AccountSnapshot) -> Any:
    return next(c for c in snap.credentials if c.holder == Holder.CLIENT)


def _key_gaps(snap: AccountSnapshot) -> list[Any]:
    subject = key_subject(snap.account.id, "client")
    return [f for f in snap.findings if f.subject == subject and f.is_blind_spot]


async def test_an_unplugged_key_is_a_fact_confirmed_by_key_admin(world: dict[str, CexAccountConfig]) -> None:
    async with fast_pool() as pool:
        for venue in VENUES:
            acct = world[f"lima-{venue}"]
            report = await disable_client_keys(acct, f"halt-lima-{venue}", pool=pool)
            assert report.ok and report.changed, report.to_json()
            snap = await collect(acct, pool=pool)
            assert snap.ok, snap.findings
            key = _client_key(snap)
            assert key.capabilities == frozenset(), (venue, key)
            assert not key.moves_funds and not key.can(Capability.WITHDRAW)
            assert key.details["refused"] is True
            assert key.details["key_state"] == ("deleted" if venue != "binance" else "pinned to unused IP 192.0.2.1")
            assert not snapshot_gaps(snap), (venue, snapshot_gaps(snap))

            # fail closed: nobody to confirm the refusal, so it stays a blind spot
            unconfirmed = await collect(_without_key_admin(acct), pool=pool)
            assert Capability.UNKNOWN in _client_key(unconfirmed).capabilities, venue
            assert _key_gaps(unconfirmed) and snapshot_gaps(unconfirmed), venue


async def test_a_key_refused_only_from_our_address_is_still_a_blind_spot(world: dict[str, CexAccountConfig]) -> None:
    """Binance refuses a key bound to the client's address with the same code as a pinned one; the
    key_admin read shows it live elsewhere, so its powers stay unknown."""
    async with fast_pool() as pool:
        snap = await collect(world["mike-binance"], pool=pool)
    assert snap.ok
    assert Capability.UNKNOWN in _client_key(snap).capabilities
    assert _key_gaps(snap) and snapshot_gaps(snap)
