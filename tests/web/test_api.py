"""The JSON API against a seeded store: authentication, roles, four eyes, the read models."""

from __future__ import annotations

import re

import pytest

from primeguard.store import audit, repos

API_ROUTES = [
    ("GET", "/api/me"), ("GET", "/api/overview"), ("GET", "/api/clients/beta"), ("GET", "/api/capabilities"),
    ("GET", "/api/timeline"), ("POST", "/api/actions/x/approve"), ("GET", "/api/policy"),
    ("POST", "/api/policy/x/approve"), ("GET", "/api/withdrawals"), ("POST", "/api/withdrawals"),
    ("GET", "/api/withdrawals/x"), ("POST", "/api/withdrawals/x/approve"), ("POST", "/api/clients/beta/ack"),
    ("GET", "/openapi.json"),
    ("GET", "/api/destinations"), ("POST", "/api/destinations"), ("POST", "/api/destinations/x/approve"),
]


def test_route_list_is_complete(app):
    """Every API operation in the OpenAPI document is in API_ROUTES (so the auth tests cover new routes)."""
    declared = {(m.upper(), re.sub(r"\{[^}]+\}", "x", path)) for path, ops in app.openapi()["paths"].items()
                for m in ops}
    covered = {(m, p.replace("/api/clients/beta", "/api/clients/x")) for m, p in API_ROUTES}
    assert len(declared) == 16
    assert declared <= covered, declared - covered


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_every_api_route_needs_a_token(client, seeded, method, path):
    for headers in ({}, {"Authorization": "Bearer pgt_not-a-real-token-at-all-000000"},
                    {"Authorization": f"Basic {seeded.tokens['carol']}"}, {"Authorization": "Bearer "}):
        resp = client.request(method, path, headers=headers, json={"account_id": "a"})
        assert resp.status_code == 401, (method, path, headers, resp.text)
        assert resp.json()["error"] == "unauthenticated"
        assert resp.headers["www-authenticate"].startswith("Bearer")
    # a session cookie is not accepted on the API (no ambient credentials, so no CSRF surface)
    from tests.web.conftest import login

    login(client, seeded.tokens["carol"])
    assert client.request(method, path, json={}).status_code == 401


@pytest.mark.parametrize(("user", "method", "path"), [
    ("vera", "POST", "/api/actions/{action}/approve"),
    ("tom", "POST", "/api/actions/{action}/approve"),
    ("vera", "POST", "/api/withdrawals/{withdrawal}/approve"),
    ("vera", "POST", "/api/withdrawals"),
    ("carol", "POST", "/api/withdrawals"),
    ("adam", "POST", "/api/withdrawals"),
    ("adam", "POST", "/api/policy/{proposal}/approve"),
    ("tom", "POST", "/api/policy/{proposal}/approve"),
    ("vera", "POST", "/api/policy/{proposal}/approve"),
])
def test_wrong_role_is_forbidden_and_nothing_changes(client, seeded, user, method, path):
    path = path.format(action=seeded.action_id, withdrawal=seeded.pending_withdrawal, proposal=seeded.proposal_hash)
    body = {"account_id": "alpha-vault", "asset": "USDC", "amount": "10", "destination": "0x00"}
    before = _head(seeded)
    resp = client.request(method, path, headers=seeded.auth(user), json=body)
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"] == "forbidden_role"
    assert "roles allowed" in resp.json()["message"]
    assert _head(seeded) == before  # no audit entry: nothing was written


def _head(seeded):
    with seeded.store.session(readonly=True) as s:
        return audit.head(s)


def test_me_reports_role_and_permissions(client, seeded):
    body = client.get("/api/me", headers=seeded.auth("carol")).json()
    assert body == {"name": "carol", "role": "compliance",
                    "permissions": ["approve_action", "approve_policy", "approve_withdrawal", "change_destinations",
                                    "read", "record_ack"]}


def test_treasury_cannot_approve_own_withdrawal(client, seeded):
    wid = seeded.pending_withdrawal
    resp = client.post(f"/api/withdrawals/{wid}/approve", headers=seeded.auth("tom"))
    assert resp.status_code == 403
    assert resp.json()["error"] == "self_approval"
    assert client.get(f"/api/withdrawals/{wid}", headers=seeded.auth("vera")).json()["approvals"] == []
    ok = client.post(f"/api/withdrawals/{wid}/approve", headers=seeded.auth("tina"))
    assert ok.status_code == 200, ok.text
    assert ok.json()["state"] == "approved"
    assert ok.json()["decision"]["outcome"] == "allow"
    again = client.post(f"/api/withdrawals/{wid}/approve", headers=seeded.auth("carol"))
    assert again.status_code == 409 and again.json()["error"] == "not_pending"
    row = client.get(f"/api/withdrawals/{wid}", headers=seeded.auth("vera")).json()
    assert [a["approver"] for a in row["approvals"]] == ["tina"]


def test_treasury_requests_and_policy_decides(client, seeded):
    body = {"account_id": "alpha-vault", "asset": "USDC", "amount": "250000",
            "destination": "0x4b280EdCc946EAA52913262F098391Af6aA31751"}
    resp = client.post("/api/withdrawals", headers=seeded.auth("tom"), json=body)
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["state"] == "requested" and out["decision"]["outcome"] == "needs_approval"
    denied = client.post("/api/withdrawals", headers=seeded.auth("tom"),
                         json={**body, "destination": "0x000000000000000000000000000000000000bad0"})
    assert denied.status_code == 201 and denied.json()["state"] == "denied"
    assert "not_allowlisted" in denied.json()["decision"]["reasons"]
    bad = client.post("/api/withdrawals", headers=seeded.auth("tom"), json={**body, "account_id": "nope"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_input"
    listed = client.get("/api/withdrawals?state=requested", headers=seeded.auth("vera")).json()["items"]
    assert {w["id"] for w in listed} == {seeded.pending_withdrawal, out["id"]}


def test_validation_errors_are_json_and_do_not_echo_input(client, seeded):
    secret_like = "pgt_" + "s" * 40
    resp = client.post("/api/withdrawals", headers=seeded.auth("tom"), json={"account_id": secret_like, "x": 1})
    assert resp.status_code == 422
    assert resp.json()["error"] == "invalid_input"
    assert secret_like not in resp.text
    assert client.get("/api/timeline?limit=0", headers=seeded.auth("vera")).status_code == 422
    assert client.get("/api/withdrawals?state=bogus", headers=seeded.auth("vera")).status_code == 422
    nope = client.get("/api/nope", headers=seeded.auth("vera"))
    assert nope.status_code == 404 and nope.json()["error"] == "not_found"


def test_compliance_approves_pending_playbook_action(client, seeded):
    aid = seeded.action_id
    timeline = client.get("/api/timeline", headers=seeded.auth("vera")).json()
    assert [a["id"] for a in timeline["pending_actions"]] == [aid]
    resp = client.post(f"/api/actions/{aid}/approve", headers=seeded.auth("carol"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "approved" and resp.json()["approved_by"] == "carol"
    with seeded.store.session(readonly=True) as s:
        assert repos.get_action(s, aid).state == "approved"
        entry = audit.entries(s, kind="action.approved")[-1]
        assert (entry.actor, entry.subject) == ("carol", aid)
    assert audit.verify(seeded.store).ok
    again = client.post(f"/api/actions/{aid}/approve", headers=seeded.auth("adam"))
    assert again.status_code == 409 and again.json()["error"] == "not_pending"
    dry = client.post(f"/api/actions/{seeded.dry_run_action_id}/approve", headers=seeded.auth("carol"))
    assert dry.status_code == 409 and dry.json()["error"] == "illegal_transition"
    missing = client.post("/api/actions/nope/approve", headers=seeded.auth("carol"))
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert client.get("/api/timeline", headers=seeded.auth("vera")).json()["pending_actions"] == []


def test_policy_proposal_four_eyes_and_diff(client, seeded):
    view = client.get("/api/policy", headers=seeded.auth("vera")).json()
    assert view["active_source"] == "store" and view["active"]["hash"] == seeded.active_hash
    [pending] = view["pending"]
    assert pending["hash"] == seeded.proposal_hash and pending["proposed_by"] == "carol"
    changes = pending["diff"]["changes"]
    assert any(c["effect"] == "looser" and "3,000,000" in c["text"] for c in changes), changes
    own = client.post(f"/api/policy/{seeded.proposal_hash}/approve", headers=seeded.auth("carol"))
    assert own.status_code == 403 and own.json()["error"] == "self_approval"
    ok = client.post(f"/api/policy/{seeded.proposal_hash}/approve", headers=seeded.auth("dave"))
    assert ok.status_code == 200, ok.text
    assert ok.json()["state"] == "active" and ok.json()["approved_by"] == "dave"
    view = client.get("/api/policy", headers=seeded.auth("vera")).json()
    assert view["active"]["hash"] == seeded.proposal_hash and view["pending"] == []
    assert client.post(f"/api/policy/{seeded.proposal_hash}/approve",
                       headers=seeded.auth("carol")).json()["error"] == "not_pending"
    assert client.post("/api/policy/abc/approve", headers=seeded.auth("dave")).status_code == 404


def test_overview_blind_first_then_worst(client, seeded):
    data = client.get("/api/overview", headers=seeded.auth("vera")).json()
    order = [(c["client_id"], c["ladder_state"], c["blind"]) for c in data["clients"]]
    assert order == [("gamma", "normal", True), ("beta", "halt", False), ("alpha", "normal", False)]
    beta = data["clients"][1]
    assert beta["bands"] == {"warn": "0.75", "margin_call": "0.80", "halt": "0.85", "liquidate": "0.90"}
    assert beta["ltv"] == "0.8638" and beta["loan"] == "2000000" and beta["tier"] == "standard"
    assert {f["code"] for f in data["blind_spots"]} == {"venue_unreachable", "blind_spot"}
    assert data["counts"]["actions_awaiting_approval"] == 1
    assert data["counts"]["withdrawals_awaiting_approval"] == 1


def test_client_detail(client, seeded):
    d = client.get("/api/clients/beta", headers=seeded.auth("vera")).json()
    assert len(d["history"]) == 40 and d["history"][-1]["ltv"] == "0.8638"
    assert {a["account_id"] for a in d["accounts"]} == {"beta-bybit", "beta-dydx"}
    assert d["accounts"][0]["balances"] and d["stress"][0]["scenario"] == "crypto -10%"
    assert {f["code"] for f in d["findings"]} >= {"ltv_halt", "key_can_withdraw"}
    assert client.get("/api/clients/nobody", headers=seeded.auth("vera")).status_code == 404


def test_capabilities_violations_first(client, seeded):
    d = client.get("/api/capabilities", headers=seeded.auth("vera")).json()
    assert d["findings"][0]["code"] == "key_can_withdraw" and d["findings"][0]["violation"] is True
    assert d["findings"][-1]["violation"] is False  # the shadow finding comes last
    first = d["credentials"][0]
    assert first["credential_id"] == "beta-bybit-key" and first["fund_moving"] == ["withdraw"]
    assert d["counts"] == {"violations": 1, "findings": 2, "credentials": 5, "fund_moving": 2}


def test_timeline_newest_first_and_paged(client, seeded):
    first = client.get("/api/timeline?limit=5", headers=seeded.auth("vera")).json()
    times = [i["at"] for i in first["items"]]
    assert times == sorted(times, reverse=True) and len(times) == 5
    assert first["next_offset"] == 5
    second = client.get("/api/timeline?limit=5&offset=5", headers=seeded.auth("vera")).json()
    assert second["items"][0]["at"] <= times[-1]
    assert {i["type"] for i in first["items"] + second["items"]} <= {"alert", "action", "audit"}
    everything = client.get("/api/timeline?limit=200", headers=seeded.auth("vera")).json()
    assert {i["type"] for i in everything["items"]} == {"alert", "action", "audit"}


def test_revoked_or_rotated_token_stops_working_at_once(client, seeded):
    assert client.get("/api/me", headers=seeded.auth("tom")).status_code == 200
    with seeded.store.session() as s:
        repos.revoke_user(s, "tom", actor="adam")
    assert client.get("/api/me", headers=seeded.auth("tom")).status_code == 401
    with seeded.store.session() as s:
        new = repos.rotate_token(s, "carol", actor="adam")
    assert client.get("/api/me", headers=seeded.auth("carol")).status_code == 401
    assert client.get("/api/me", headers={"Authorization": f"Bearer {new}"}).status_code == 200


def test_tokens_never_appear_in_responses(client, seeded):
    texts = []
    for _, path in [r for r in API_ROUTES if r[0] == "GET"]:
        resp = client.get(path.replace("/x", f"/{seeded.pending_withdrawal}"), headers=seeded.auth("adam"))
        texts.append(resp.text + str(resp.headers))
    blob = "\n".join(texts)
    for token in seeded.tokens.values():
        assert token not in blob
    with seeded.store.session(readonly=True) as s:
        for user in repos.list_users(s):
            assert user.token_hash not in blob


def test_withdrawals_unavailable_without_service(seeded):
    from fastapi.testclient import TestClient

    from primeguard.web import create_app

    with TestClient(create_app(seeded.store)) as c:
        resp = c.post(f"/api/withdrawals/{seeded.pending_withdrawal}/approve", headers=seeded.auth("tina"))
        assert resp.status_code == 503 and resp.json()["error"] == "withdrawals_unavailable"
        assert c.get("/api/withdrawals", headers=seeded.auth("tina")).status_code == 200


def test_security_headers(client, seeded):
    resp = client.get("/api/overview", headers=seeded.auth("vera"))
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["cache-control"] == "no-store"
    assert client.get("/healthz").json() == {"ok": True}


def test_history_window_and_thinning():
    from primeguard.web.queries import thin

    rows = list(range(10_001))
    out = thin(rows, 1000)
    assert len(out) == 1000 and out[0] == 0 and out[-1] == 10_000 and out == sorted(out)
    assert thin(rows[:5], 1000) == rows[:5]
