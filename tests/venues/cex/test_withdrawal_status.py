"""The venues' withdrawal statuses as primeguard reads them (pure): every documented status has a
meaning, a status nobody documented is ``unknown`` (never a success), and a "completed" record
without a transaction hash proves nothing."""

from __future__ import annotations

import pytest

from primeguard.venues.cex.withdraw import withdrawal_state

TX = "0x" + "ab" * 32
CASES = [
    # Binance GET /sapi/v1/capital/withdraw/history: ``status`` is an integer
    ("binance", {"id": "w1", "status": 6, "txId": TX}, "confirmed"),
    ("binance", {"id": "w1", "status": 4, "txId": ""}, "pending"),
    ("binance", {"id": "w1", "status": 0}, "pending"),
    ("binance", {"id": "w1", "status": 2}, "pending"),
    ("binance", {"id": "w1", "status": 1}, "failed"),
    ("binance", {"id": "w1", "status": 3}, "failed"),
    ("binance", {"id": "w1", "status": 5, "info": "address invalid"}, "failed"),
    ("binance", {"id": "w1", "status": 7}, "unknown"),
    ("binance", {"id": "w1", "status": 6, "txId": ""}, "unknown"),
    # OKX GET /api/v5/asset/withdrawal-history: ``state`` is a string
    ("okx", {"wdId": "7", "state": "2", "txId": TX}, "confirmed"),
    *[("okx", {"wdId": "7", "state": s}, "pending") for s in ("-3", "0", "1", "4", "5", "6", "7", "8", "9", "10",
                                                              "12", "15", "16", "17")],
    ("okx", {"wdId": "7", "state": "-2"}, "failed"),
    ("okx", {"wdId": "7", "state": "-1"}, "failed"),
    ("okx", {"wdId": "7", "state": "3"}, "unknown"),
    ("okx", {"wdId": "7", "state": ""}, "unknown"),
    # Bybit GET /v5/asset/withdraw/query-record: ``status`` strings (case matters)
    ("bybit", {"withdrawId": "9", "status": "success", "txID": TX}, "confirmed"),
    ("bybit", {"withdrawId": "9", "status": "BlockchainConfirmed", "txID": TX}, "confirmed"),
    *[("bybit", {"withdrawId": "9", "status": s}, "pending") for s in ("SecurityCheck", "Pending",
                                                                       "MoreInformationRequired")],
    *[("bybit", {"withdrawId": "9", "status": s}, "failed") for s in ("CancelByUser", "Reject", "Fail")],
    ("bybit", {"withdrawId": "9", "status": "Unknown"}, "unknown"),
    ("bybit", {"withdrawId": "9", "status": "SUCCESS", "txID": TX}, "unknown"),
    ("bybit", {"withdrawId": "9"}, "unknown"),
]


@pytest.mark.parametrize("venue,raw,state", CASES)
def test_venue_withdrawal_status_maps_to_our_state(venue: str, raw: dict, state: str) -> None:
    got = withdrawal_state(venue, raw)
    assert got.state == state, got
    assert got.id == str(raw.get("id") or raw.get("wdId") or raw.get("withdrawId"))
    assert got.tx_hash == (TX if state == "confirmed" else got.tx_hash)
    if state == "failed":
        assert got.reason  # the venue's reason, or its status label


def test_binance_failure_carries_the_venue_reason() -> None:
    assert withdrawal_state("binance", {"id": "w", "status": 5, "info": "address invalid"}).reason == "address invalid"
    assert withdrawal_state("okx", {"wdId": "w", "state": "-1"}).reason == "failed"


def test_scenario_settles_withdrawals_and_primeguard_reads_them_back(tmp_path) -> None:
    """Over sockets: a scenario whose venue completes withdrawals (Binance), fails them (OKX) or
    leaves them processing (Bybit); ``read_withdrawal`` reads each back through ccxt with the
    monitoring key, and a withdrawal id the venue does not list is ``unknown`` (``absent``)."""
    import asyncio
    from decimal import Decimal

    from primeguard.sandbox.cex.server import CexSimulators
    from primeguard.sandbox.scenario import Scenario
    from primeguard.venues.cex.withdraw import read_withdrawal, submit_withdrawal

    address = "0x1111111111111111111111111111111111111111"
    outcome = {"binance": "confirmed", "okx": "failed", "bybit": "pending"}
    scenario = Scenario.model_validate({"name": "cex-withdrawals", "clients": [{"id": "alpha", "cex": [
        {"venue": v, "spot": {"USDT": "1000"}, "withdrawals": outcome[v],
         "keys": [{"id": "ops", "holder": "operator", "withdraw": True}],
         "whitelist": [{"coin": "USDT", "address": address}]} for v in outcome]}]})
    with CexSimulators(scenario) as sims:
        for acct in sims.config_accounts(tmp_path / "secrets"):
            async def go(acct=acct):
                wid = await submit_withdrawal(acct, "ops", asset="USDT", amount=Decimal("10"), address=address,
                                              network="ETH", request_id="req1")
                return wid, await read_withdrawal(acct, acct.monitor, wid), \
                    await read_withdrawal(acct, acct.monitor, "404404")

            wid, seen, absent = asyncio.run(go())
            expected = {"confirmed": "confirmed", "failed": "failed", "pending": "pending"}[outcome[acct.venue]]
            assert (seen.id, seen.state) == (wid, expected), (acct.venue, seen)
            assert (seen.tx_hash is not None) == (expected == "confirmed")
            assert (absent.state, absent.status) == ("unknown", "absent")
