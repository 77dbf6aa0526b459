"""The lead's orchestrator (``Sandbox``) with dYdX clients: config written, sweep reads the
simulators, oracle moves reach dYdX, scripted outages blind the account. Needs anvil."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from primeguard.domain.findings import FindingCode
from primeguard.domain.model import PriceSourceKind
from primeguard.pipeline.collect import collect
from primeguard.sandbox.scenario import EventScenario

pytestmark = pytest.mark.chain


def test_sandbox_with_dydx_clients(sandbox_factory):
    sb = sandbox_factory({
        "name": "dydx-world",
        "feeds": [{"asset": "BTC", "answer": "60000"}, {"asset": "USDC", "answer": "1"}],
        "clients": [{"id": "delta", "dydx": [{
            "subaccounts": [{"number": 0, "usdc": "-10000",
                             "perps": [{"market": "BTC-USD", "size": "0.5", "entry_price": "50000"}]}],
            "authenticators": [{"id": 1, "type": "SignatureVerification"}],
        }]}],
    })
    cfg = sb.config()
    [acct] = cfg.dydx_accounts
    assert acct.id == "delta-dydx" and acct.node_grpc
    obs, _ = asyncio.run(collect(cfg))
    snap = next(s for s in obs.snapshots if s.account.id == "delta-dydx")
    assert snap.ok and Decimal(snap.equity_usd) == Decimal(20000)
    assert any(q.source is PriceSourceKind.DYDX_ORACLE and q.asset == "BTC" for q in obs.prices)
    sb.set_price("BTC", Decimal(40000))
    obs, _ = asyncio.run(collect(cfg))
    snap = next(s for s in obs.snapshots if s.account.id == "delta-dydx")
    assert Decimal(snap.equity_usd) == Decimal(10000)
    sb.apply_event(EventScenario(at_s=0, kind="outage", venue="dydx"))
    obs, _ = asyncio.run(collect(cfg))
    snap = next(s for s in obs.snapshots if s.account.id == "delta-dydx")
    assert not snap.ok and FindingCode.VENUE_UNREACHABLE in {f.code for f in snap.findings}
