"""Secrets never leak: not in logs (DEBUG everywhere), exceptions, reprs of config or results, nor
the JSON of the capability report. Every sandbox secret and passphrase is a canary, plus one
explicit ``CANARY`` secret that the venue accepts."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import pytest
from tests.venues.cex.conftest import OFF_LIST, VENUES
from tests.venues.cex.helpers import c, fast_pool, run_with, with_secret

from primeguard.config.schema import CexAccountConfig
from primeguard.domain.errors import VenueError
from primeguard.sandbox.cex.keys import KeyMaterial
from primeguard.sandbox.cex.server import CexSimulators
from primeguard.sandbox.faults import FaultConfig
from primeguard.venues.cex import capabilities_report, collect, collect_many
from primeguard.venues.cex.levers import cancel_all_orders
from primeguard.venues.cex.withdraw import submit_withdrawal

CANARY = "CANARY-7d1e0c5f-never-print-me-9a2b"
CANARY_PASS = "CANARY-passphrase-3f8e"


@pytest.fixture
def canary_account(sims: CexSimulators, accounts: dict[str, CexAccountConfig]) -> Any:
    """alpha-okx's client key given the canary secret and passphrase, on the venue and in config."""
    st = sims.state("okx")
    key = st.key_by_id("alpha-okx", "client")
    saved = key.material
    with st.lock:
        key.material = KeyMaterial(saved.api_key, CANARY, CANARY_PASS)
    try:
        yield with_secret(accounts["alpha-okx"], "client", secret=CANARY, passphrase=CANARY_PASS)
    finally:
        with st.lock:
            key.material = saved


def _all_secrets(sims: CexSimulators) -> list[str]:
    out = [CANARY, CANARY_PASS]
    for v in VENUES:
        for k in sims.state(v).keys.values():
            out.append(k.secret)
            if k.passphrase:
                out.append(k.passphrase)
    return out


async def test_no_secret_anywhere(sims: CexSimulators, accounts: dict[str, CexAccountConfig], canary_account: Any,
                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("ccxt", "aiohttp", "primeguard", "urllib3"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    seen: list[str] = []
    chosen = [canary_account, *(accounts[f"{cl}-{v}"] for cl in ("alpha", "delta") for v in VENUES
                                if f"{cl}-{v}" != "alpha-okx")]
    async with fast_pool(request_timeout_s=0.5) as pool:
        snaps = await collect_many(chosen, pool=pool)  # successes and refused keys
        wrong = with_secret(canary_account, "monitor", secret=CANARY)  # signature failure with a canary
        snaps.append(await collect(wrong, pool=pool))
        sims.set_faults("bybit", FaultConfig(malformed_rate=1))
        snaps.append(await collect(accounts["alpha-bybit"], pool=pool))
        sims.set_faults("bybit", FaultConfig())
        seen.append(repr(await cancel_all_orders(canary_account.model_copy(update={"operator": "monitor"}), "a",
                                                 pool=pool)))
        for acct, cred in ((canary_account, "client"), (wrong, "monitor")):
            try:
                await submit_withdrawal(acct, cred, asset="USDT", amount=Decimal(1), address=OFF_LIST,
                                        network="ETH", request_id="leak", pool=pool)
            except VenueError as exc:
                seen += [str(exc), repr(exc), repr(exc.args)]
        seen.append(repr(pool.exchange(canary_account, "client")))

    report = json.dumps(capabilities_report(snaps))
    seen += [report, repr(snaps), repr(chosen), repr(wrong), wrong.model_dump_json(),
             json.dumps(wrong.model_dump(mode="json")), repr(sims.state("okx").keys)]
    blob = "\n".join(seen) + "\n" + caplog.text
    assert "alpha-okx" in report and len(caplog.records) > 0
    for secret in _all_secrets(sims):
        assert secret not in blob


def test_sync_and_async_clients(canary_account: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("ccxt", "urllib3", "aiohttp"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    seen: list[str] = []

    async def ok(ex: Any) -> Any:
        return await c(ex.privateGetAccountConfig())

    async def refused(ex: Any) -> Any:
        return await c(ex.privatePostAssetWithdrawal({"ccy": "USDT", "amt": "1", "dest": "4", "toAddr": OFF_LIST}))

    bad_phrase = with_secret(canary_account, "client", passphrase=CANARY_PASS + "x")
    for mode in ("sync", "async"):
        seen.append(repr(run_with(canary_account, "client", mode, ok)))
        for acct in (canary_account, bad_phrase):
            with pytest.raises(VenueError) as info:
                run_with(acct, "client", mode, refused)
            seen += [str(info.value), repr(info.value), repr(info.value.__cause__), repr(info.value.__context__)]
    blob = "\n".join(seen) + caplog.text
    assert CANARY not in blob and CANARY_PASS not in blob

    # the trap this guards against: ccxt's default logger writes request headers (OKX's passphrase)
    import ccxt

    from primeguard.venues.cex.client import point_at

    plain = ccxt.okx({"apiKey": "k", "secret": CANARY, "password": CANARY_PASS})
    point_at(plain, "okx", canary_account.base_url)
    with pytest.raises(ccxt.BaseError):
        plain.privateGetAccountConfig()
    assert CANARY_PASS in caplog.text
