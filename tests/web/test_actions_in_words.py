"""The dashboard says what each lever did, per venue account, in words, with ratios as people read
them (LTV 96.34 %), never raw JSON; and records a client's margin-call acknowledgement (API) without
moving its deadline."""

from __future__ import annotations

import re
from datetime import timedelta

from primeguard.playbooks.engine import ActionSpec
from primeguard.store import audit, repos
from tests.web.conftest import login

CEX = {"reports": [
    {"lever": "cancel_all_orders", "action_id": "a", "account": "sub-a", "venue": "binance", "ok": True,
     "changed": True, "items": [{"target": f"BTC/USDT:{i}", "status": "done", "detail": "", "order_id": None}
                                for i in range(3)]},
    {"lever": "disable_client_keys", "action_id": "a", "account": "sub-a", "venue": "binance", "ok": True,
     "changed": True, "items": [{"target": "key-1", "status": "done", "detail": "disabled", "order_id": None}]},
    {"lever": "cancel_all_orders", "action_id": "a", "account": "okx-1", "venue": "okx", "ok": False,
     "changed": False, "items": [{"target": "orders", "status": "failed", "detail": "rate limited (50011)",
                                  "order_id": None}]},
]}
DYDX = {"reports": [
    {"lever": "cancel_orders", "account": "dydx-gamma", "status": "done", "why": "", "reason": "",
     "done": ["0:BTC-USD:1:64", "0:ETH-USD:2:64"], "not_done": [], "tx_hashes": ["AB"]},
    {"lever": "remove_authenticators", "account": "dydx-gamma", "status": "refused", "why": "no_power",
     "reason": "the broker key lacks MsgRemoveAuthenticator", "done": [], "not_done": ["authenticator:7"],
     "tx_hashes": []},
]}
LTV = "0.963421987654321987654321987654321987654"  # a 40-digit Decimal, as the store keeps it


def _done(seeded, kind: str, result: dict, params: dict | None = None) -> str:
    spec = ActionSpec(kind, "beta", f"beta:halt:{kind}", "automatic", details=params or {"ltv": LTV})
    seeded.playbook.propose([spec], now=seeded.now)
    with seeded.store.session() as s:
        repos.transition_action(s, spec.id, "executing", expected="proposed", actor="daemon", now=seeded.now)
        repos.transition_action(s, spec.id, "done", expected="executing", actor="daemon", now=seeded.now,
                                result=result)
    return spec.id


def test_timeline_says_what_each_lever_did_per_venue(client, seeded):
    _done(seeded, "halt_cex", CEX)
    _done(seeded, "halt_dydx", DYDX)
    _done(seeded, "halt_vault", {"vaults": {"beta-vault": "already_paused"}})
    _done(seeded, "margin_call", {"notice": "margin call", "ltv": LTV, "deliveries": [
        {"route": "webhook", "to": "https://hooks.example.net", "ok": True, "attempts": 1, "error": None}]},
        {"ltv": LTV, "post_usd": "1250.00", "repay_usd": "1180.50", "cure_below": "0.68",
         "deadline": "2026-12-03T16:00:00+00:00"})
    login(client, seeded.tokens["vera"])
    html = client.get("/timeline").text
    for words in ("binance sub-a: cancelled 3 orders; disabled 1 client key",
                  "okx okx-1: cancel all orders failed on orders: rate limited (50011)",
                  "dydx dydx-gamma: cancelled 2 orders; remove authenticators refused (1 left undone): the broker "
                  "key lacks MsgRemoveAuthenticator",
                  "vault beta-vault: already paused",
                  "notice sent by webhook to https://hooks.example.net (1 attempt)",
                  "LTV 96.34 %", "cure: post $1,250.00 or repay $1,180.50 to get under 68.00 %"):
        assert words in html, words
    assert LTV not in html and "0.9634" not in html  # never the raw ratio
    assert not re.search(r"\{&#34;|\{&quot;|\{\"", html)  # no JSON object anywhere on the page
    api = client.get("/api/timeline", headers=seeded.auth("vera")).json()
    action = next(i for i in api["items"] if i["type"] == "action" and i["action"]["kind"] == "halt_cex")
    assert action["action"]["did"][0] == "binance sub-a: cancelled 3 orders; disabled 1 client key"


def test_client_page_and_pending_list_show_ltv_as_a_percentage(client, seeded):
    login(client, seeded.tokens["vera"])
    page = client.get("/clients/beta").text
    assert "LTV 86.38 %" in page and "What it did" in page
    pending = client.get("/timeline").text
    assert "LTV 86.38 %" in pending and "{&#34;ltv" not in pending and '{"ltv' not in pending


def test_ack_is_recorded_and_audited_and_the_deadline_stands(client, seeded):
    deadline = seeded.now + timedelta(hours=4)
    with seeded.store.session() as s:
        repos.save_ladder_state(s, "beta", state="margin_call", entered_at=seeded.now, deadline=deadline, below=[],
                                now=seeded.now)
        repos.save_ladder_state(s, "alpha", state="normal", entered_at=seeded.now, deadline=None, below=[],
                                now=seeded.now)
    with seeded.store.session(readonly=True) as s:
        before = audit.head(s)
    viewer = client.post("/api/clients/beta/ack", headers=seeded.auth("vera"), json={"note": "x"})
    assert viewer.status_code == 403 and viewer.json()["error"] == "forbidden_role"
    with seeded.store.session(readonly=True) as s:
        assert audit.head(s) == before  # nothing written
    resp = client.post("/api/clients/beta/ack", headers=seeded.auth("tom"), json={"note": "by phone"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["acknowledged_by"] == "tom" and resp.json()["deadline"] == deadline.isoformat()
    with seeded.store.session(readonly=True) as s:
        (entry,) = audit.entries(s, kind="ladder.acknowledged")
        assert (entry.actor, entry.subject, entry.payload["note"]) == ("tom", "beta", "by phone")
        row = repos.get_ladder_state(s, "beta")
        assert row.state == "margin_call" and row.deadline == deadline
    assert client.post("/api/clients/nobody/ack", headers=seeded.auth("tom"), json={}).status_code == 404
    normal = client.post("/api/clients/alpha/ack", headers=seeded.auth("carol"), json={})
    assert normal.status_code == 422 and "no margin call" in normal.json()["message"]
    long_note = client.post("/api/clients/beta/ack", headers=seeded.auth("tom"), json={"note": "x" * 2001})
    assert long_note.status_code == 422
    assert client.post("/api/clients/beta/ack", headers=seeded.auth("tom"), json={"evil": 1}).status_code == 422
