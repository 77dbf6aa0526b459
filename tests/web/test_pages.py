"""The dashboard pages: login, session cookie, CSRF, four eyes through forms, escaping."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from primeguard.store import repos
from tests.web.conftest import _hidden, login
from tests.web.seed import DEST

PAGES = ["/", "/clients/beta", "/clients/gamma", "/clients/alpha", "/capabilities", "/timeline", "/timeline?page=2",
         "/policy", "/withdrawals", "/destinations"]
FORM_POSTS = ["/logout", "/actions/x/approve", "/policy/x/approve", "/withdrawals", "/withdrawals/x/approve",
              "/destinations", "/destinations/x/approve"]


def test_page_routes_are_all_listed():
    """Every form POST of the dashboard is in FORM_POSTS (so the auth tests cover new forms)."""
    from primeguard.web.pages import router

    posts = {re.sub(r"\{[^}]+\}", "x", r.path) for r in router.routes
             if isinstance(r, APIRoute) and "POST" in r.methods and r.path != "/login"}
    assert posts == set(FORM_POSTS)


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_a_session(client, path):
    resp = client.get(path)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("path", FORM_POSTS)
def test_form_posts_without_a_session_are_401(client, seeded, path):
    resp = client.post(path, data={"csrf": "x"})
    assert resp.status_code == 401
    # a bearer token does not open the pages either
    assert client.post(path, data={"csrf": "x"}, headers=seeded.auth("carol")).status_code == 401


def test_login_sets_a_strict_httponly_session_cookie_and_never_echoes_the_token(client, seeded):
    form = client.get("/login")
    assert form.status_code == 200 and 'type="password"' in form.text
    csrf = _hidden(form.text, "csrf")
    assert client.post("/login", data={"token": seeded.tokens["vera"]}).status_code == 403  # no login CSRF token
    wrong = client.post("/login", data={"token": "pgt_wrong-token-wrong-token-000", "csrf": _hidden(
        client.get("/login").text, "csrf")})
    assert wrong.status_code == 401 and "pgt_wrong-token" not in wrong.text
    csrf = _hidden(client.get("/login").text, "csrf")
    ok = client.post("/login", data={"token": seeded.tokens["vera"], "csrf": csrf, "next": "/capabilities"})
    assert ok.status_code == 303 and ok.headers["location"] == "/capabilities"
    cookie = next(h for h in ok.headers.get_list("set-cookie") if h.startswith("pg_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert seeded.tokens["vera"] not in cookie
    page = client.get("/capabilities")
    assert page.status_code == 200 and "vera" in page.text
    assert seeded.tokens["vera"] not in page.text


def test_login_redirect_stays_on_this_site(client, seeded):
    csrf = _hidden(client.get("/login").text, "csrf")
    resp = client.post("/login", data={"token": seeded.tokens["vera"], "csrf": csrf, "next": "//evil.example/x"})
    assert resp.headers["location"] == "/"


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_a_viewer(client, seeded, path):
    login(client, seeded.tokens["vera"])
    resp = client.get(path)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    assert "<script" not in resp.text  # no JavaScript anywhere, and nothing injected
    for tag in ("div", "span", "a", "form", "svg", "table", "p", "input", "h3", "code", "time", "abbr", "button"):
        assert f"&lt;{tag} " not in resp.text and f"&lt;{tag}&gt;" not in resp.text  # our markup never double-escaped


def test_store_text_is_escaped(client, seeded):
    login(client, seeded.tokens["vera"])
    page = client.get("/clients/beta").text
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert "<script>" not in page


def test_csrf_missing_or_wrong_is_rejected(client, seeded):
    login(client, seeded.tokens["carol"])
    path = f"/actions/{seeded.action_id}/approve"
    assert client.post(path, data={}).status_code == 403
    resp = client.post(path, data={"csrf": "forged"})
    assert resp.status_code == 403 and "CSRF" in resp.text
    other = client.post(path, content=b'{"csrf": "x"}', headers={"content-type": "application/json"})
    assert other.status_code == 403
    with seeded.store.session(readonly=True) as s:
        assert repos.get_action(s, seeded.action_id).state == "proposed"


def test_csrf_token_is_per_session(app, seeded):
    from fastapi.testclient import TestClient

    with TestClient(app, follow_redirects=False) as a, TestClient(app, follow_redirects=False) as b:
        token_a = login(a, seeded.tokens["carol"])
        login(b, seeded.tokens["dave"])
        resp = b.post(f"/actions/{seeded.action_id}/approve", data={"csrf": token_a})
        assert resp.status_code == 403


def test_compliance_approves_action_through_the_form(client, seeded):
    csrf = login(client, seeded.tokens["carol"])
    page = client.get("/timeline").text
    assert f'action="/actions/{seeded.action_id}/approve"' in page
    resp = client.post(f"/actions/{seeded.action_id}/approve", data={"csrf": csrf, "back": "/clients/beta"})
    assert resp.status_code == 303 and resp.headers["location"] == "/clients/beta"
    after = client.get("/clients/beta").text
    assert "Approved reduce_only for beta" in after and "approved by carol" in after
    with seeded.store.session(readonly=True) as s:
        row = repos.get_action(s, seeded.action_id)
        assert (row.state, row.approved_by) == ("approved", "carol")


def test_viewer_sees_no_approve_buttons_and_cannot_post(client, seeded):
    csrf = login(client, seeded.tokens["vera"])
    assert "/approve" not in client.get("/timeline").text
    resp = client.post(f"/actions/{seeded.action_id}/approve", data={"csrf": csrf})
    assert resp.status_code == 403 and "forbidden_role" in resp.text


def test_treasury_cannot_approve_own_withdrawal_through_the_form(client, seeded):
    csrf = login(client, seeded.tokens["tom"])
    page = client.get("/withdrawals").text
    assert "requested by you: another person must approve" in page
    assert f"/withdrawals/{seeded.pending_withdrawal}/approve" not in page
    resp = client.post(f"/withdrawals/{seeded.pending_withdrawal}/approve", data={"csrf": csrf})
    assert resp.status_code == 403 and "self_approval" in resp.text
    with seeded.store.session(readonly=True) as s:
        assert repos.list_approvals(s, seeded.pending_withdrawal) == []


def test_treasury_requests_a_withdrawal_through_the_form(client, seeded):
    csrf = login(client, seeded.tokens["tom"])
    fields = {"csrf": csrf, "account_id": "alpha-vault", "asset": "USDC", "destination": DEST}
    resp = client.post("/withdrawals", data={**fields, "amount": "1000"})
    assert resp.status_code == 303
    assert "is approved" in client.get("/withdrawals").text
    bad = client.post("/withdrawals", data={**fields, "amount": "-5"})
    assert bad.status_code == 422 and "invalid_input" in bad.text


def test_policy_page_four_eyes(client, seeded):
    csrf = login(client, seeded.tokens["carol"])
    page = client.get("/policy").text
    assert "You proposed this version" in page and "looser" in page
    assert client.post(f"/policy/{seeded.proposal_hash}/approve", data={"csrf": csrf}).status_code == 403
    client.cookies.clear()
    csrf = login(client, seeded.tokens["dave"])
    assert "Approve and activate" in client.get("/policy").text
    resp = client.post(f"/policy/{seeded.proposal_hash}/approve", data={"csrf": csrf})
    assert resp.status_code == 303
    assert "is now active" in client.get("/policy").text


def test_session_ends_when_the_user_is_revoked(client, seeded):
    login(client, seeded.tokens["tom"])
    assert client.get("/").status_code == 200
    with seeded.store.session() as s:
        repos.revoke_user(s, "tom", actor="adam")
    assert client.get("/").status_code == 303


def test_logout_needs_csrf_and_ends_the_session(client, seeded):
    csrf = login(client, seeded.tokens["vera"])
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/").status_code == 200
    resp = client.post("/logout", data={"csrf": csrf})
    assert resp.status_code == 303 and resp.headers["location"] == "/login"
    assert client.get("/").status_code == 303


def test_old_session_cookie_is_useless_after_logout(app, seeded):
    from fastapi.testclient import TestClient

    with TestClient(app, follow_redirects=False) as c:
        csrf = login(c, seeded.tokens["vera"])
        sid = c.cookies.get("pg_session")
        c.post("/logout", data={"csrf": csrf})
        c.cookies.set("pg_session", sid)
        assert c.get("/").status_code == 303
