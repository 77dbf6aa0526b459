"""``primeguard demo`` gives every client a webhook contact on a local inbox, so the shipped
plan's automatic margin-call notice reaches the client instead of failing with "no contacts"."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from primeguard.cli.demo import demo_config
from primeguard.cli.drill import ClientInbox
from primeguard.daemon.guardian import Guardian
from primeguard.store import repos

pytestmark = pytest.mark.chain

WORLD = {
    "name": "demo-contacts",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [
        {"id": "firm-a", "loan": {"principal": "15000"}, "wallets": [{"tokens": {"WETH": "10"}}]},
        {"id": "firm-b", "loan": {"principal": "10000"}, "wallets": [{"tokens": {"USDC": "100000"}}]},
    ],
}


def test_margin_call_notice_reaches_the_demo_inbox(sandbox_factory):
    sb = sandbox_factory(WORLD)
    inbox = ClientInbox()
    try:
        cfg = demo_config(sb, inbox)
        assert {c.id: c.contacts is not None and c.contacts.webhook is not None for c in cfg.clients} == \
            {"firm-a": True, "firm-b": True}
        g = Guardian(cfg, config_dir=sb.workdir)
        sb.set_price("ETH", Decimal("2200"))  # firm-a: 74 % LTV, a margin call under the shipped tier
        asyncio.run(g.sweep("test"))
        with g.store.session(readonly=True) as s:
            notices = [a for a in repos.list_actions(s, client_id="firm-a") if a.kind == "margin_call"]
        assert notices and notices[0].state == "done", [(a.kind, a.state, a.error) for a in notices]
        got = [(path, doc.get("client_id")) for _, path, doc in inbox.received]
        assert ("firm-a", "firm-a") in got
        assert all(path != "firm-b" for path, _ in got)
    finally:
        inbox.close()
