"""Issue N, defect 11: the web layer's input bounds.

- every POST route (found in the app's route table, API and pages) refuses an oversized body with
  413 ``payload_too_large`` before the route runs: nothing is written;
- a chunked body with no Content-Length is counted as it streams (a real uvicorn server);
- a credential in the query string is refused (400 ``token_in_query``) and never authenticates;
- a real ``serve`` process's logs (uvicorn's access log and ours) never contain a token sent in a URL;
- oversized URLs and header sets are refused (414 / 431).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, text

from primeguard.store import open_store, repos
from primeguard.web import app as web_app
from primeguard.web.pages import MAX_FORM_BYTES
from primeguard.web.server import running
from tests.web.conftest import app, client, login, seed_template, seeded  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[2]
MAX_JSON_BYTES: int = getattr(web_app, "MAX_JSON_BYTES", 64 * 1024)
# who may run each POST route (so that, were the body accepted, the route would really write)
ROUTE_USER = {"/api/withdrawals": "tom", "/api/withdrawals/{withdrawal_id}/approve": "tina",
              "/api/actions/{action_id}/approve": "carol", "/api/policy/{policy_hash}/approve": "dave",
              "/api/clients/{client_id}/ack": "tom", "/api/destinations": "carol",
              "/api/destinations/{policy_hash}/approve": "dave"}


def _walk(routes: Any, prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    for r in routes:
        inner = getattr(r, "original_router", None)  # an included router (this FastAPI keeps it lazily)
        if inner is not None:
            ctx = getattr(r, "include_context", None)
            yield from _walk(inner.routes, prefix + (getattr(ctx, "prefix", "") or ""))
        elif hasattr(r, "path"):
            yield prefix + r.path, set(getattr(r, "methods", None) or ())


def post_routes(application: Any) -> list[str]:
    """Every path of the app that accepts POST (API and pages), from its route table."""
    return sorted({path for path, methods in _walk(application.routes) if "POST" in methods})


def fill(path: str, s: Any) -> str:
    return path.format(action_id=s.action_id, policy_hash=s.proposal_hash, withdrawal_id=s.pending_withdrawal,
                       client_id="alpha")


def row_counts(s: Any) -> dict[str, int]:
    engine = s.store.engine
    with engine.connect() as conn:
        return {t: int(conn.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one())
                for t in inspect(engine).get_table_names()}


def big_json(size: int) -> bytes:
    pad = "x" * size
    return (f'{{"account_id": "alpha-vault", "asset": "USDC", "amount": "10", '
            f'"destination": "0x4b280EdCc946EAA52913262F098391Af6aA31751", "pad": "{pad}"}}').encode()


def test_route_table_has_the_post_routes_we_expect(app):  # noqa: F811
    routes = post_routes(app)
    assert set(ROUTE_USER) <= set(routes) and "/login" in routes and "/withdrawals" in routes


@pytest.mark.parametrize("size", [MAX_JSON_BYTES + 1, 2 * 1024 * 1024])
def test_oversized_json_on_every_api_post_route_is_413_and_writes_nothing(client, seeded, app, size):  # noqa: F811
    api = [p for p in post_routes(app) if p.startswith("/api/")]
    assert len(api) == len(ROUTE_USER)  # a new POST route needs a user here
    for path in api:
        before = row_counts(seeded)
        resp = client.post(fill(path, seeded), content=big_json(size),
                           headers={**seeded.auth(ROUTE_USER[path]), "Content-Type": "application/json"})
        assert resp.status_code == 413, (path, resp.status_code, resp.text[:300])
        assert resp.json()["error"] == "payload_too_large" and "message" in resp.json()
        assert resp.headers["content-type"].startswith("application/json")
        assert row_counts(seeded) == before, path


def test_a_body_just_under_the_limit_is_still_read(client, seeded):  # noqa: F811
    body = big_json(MAX_JSON_BYTES - 300)
    assert len(body) <= MAX_JSON_BYTES
    resp = client.post("/api/withdrawals", content=body,
                       headers={**seeded.auth("tom"), "Content-Type": "application/json"})
    assert resp.status_code == 422 and resp.json()["error"] == "invalid_input"  # the extra field, not the size


def test_oversized_form_on_every_page_post_route_is_413_and_writes_nothing(client, seeded, app):  # noqa: F811
    pages = [p for p in post_routes(app) if not p.startswith("/api/")]
    login(client, seeded.tokens["dave"])
    sessions = app.state.ctx.sessions
    form = ("csrf=x&token=" + "y" * (MAX_FORM_BYTES + 1)).encode()
    for path in pages:
        before, n_sessions = row_counts(seeded), len(sessions)
        resp = client.post(fill(path, seeded), content=form,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert resp.status_code == 413, (path, resp.status_code)
        assert "payload_too_large" in resp.text
        assert row_counts(seeded) == before and len(sessions) == n_sessions, path


def _chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    head = b'{"account_id": "alpha-vault", "asset": "USDC", "amount": "10", "destination": "0x00", "pad": "'
    yield head
    sent = len(head)
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}'


def test_chunked_oversize_is_counted_as_it_streams(seeded, app):  # noqa: F811
    before = row_counts(seeded)
    with running(app) as srv:
        resp = httpx.post(f"{srv.url}/api/withdrawals", content=_chunks(1024 * 1024), timeout=30,
                          headers={**seeded.auth("tom"), "Content-Type": "application/json"})
        assert resp.request.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in resp.request.headers
        assert resp.status_code == 413, resp.text[:300]
        assert resp.json()["error"] == "payload_too_large"
        # the same on a page form (no session: the login form, which is public)
        form = httpx.post(f"{srv.url}/login", content=(b"t=" + b"y" * 4096 for _ in range(8)), timeout=30,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 413 and "payload_too_large" in form.text
        # a small chunked body is read normally
        ok = httpx.post(f"{srv.url}/api/withdrawals", content=iter([b'{"account_id": "alpha-vault", ', b'"x": 1}']),
                        headers={**seeded.auth("tom"), "Content-Type": "application/json"}, timeout=30)
        assert ok.status_code == 422 and ok.json()["error"] == "invalid_input"
    assert row_counts(seeded) == before


@pytest.mark.parametrize("param", ["token", "access_token", "ACCESS_TOKEN", "api_key", "acc%65ss_token"])
def test_token_in_query_string_never_authenticates_on_the_api(client, seeded, param):  # noqa: F811
    token = seeded.tokens["carol"]
    alone = client.get(f"/api/me?{param}={token}")
    assert alone.status_code in (400, 401) and alone.json()["error"] in ("token_in_query", "unauthenticated")
    with_header = client.get(f"/api/me?{param}={token}", headers=seeded.auth("carol"))
    assert with_header.status_code == 400, with_header.text
    assert with_header.json()["error"] == "token_in_query" and token not in with_header.text
    posted = client.post(f"/api/actions/{seeded.action_id}/approve?{param}={token}", headers=seeded.auth("carol"))
    assert posted.status_code == 400


@pytest.mark.parametrize("path", ["/", "/timeline", "/login", "/withdrawals"])
def test_token_in_query_string_never_authenticates_on_pages(client, seeded, path):  # noqa: F811
    token = seeded.tokens["carol"]
    resp = client.get(f"{path}?token={token}")
    assert resp.status_code == 400 and "token_in_query" in resp.text and token not in resp.text
    assert "set-cookie" not in {k.lower() for k in resp.headers}
    login(client, token)  # even with a valid session the URL's credential is refused
    assert client.get(f"{path}?access_token={token}").status_code == 400
    signed_in = client.post(f"/login?token={token}", data={"csrf": "x"})
    assert signed_in.status_code == 400


def test_ordinary_query_parameters_still_work(client, seeded):  # noqa: F811
    assert client.get("/api/timeline?limit=5&offset=0", headers=seeded.auth("vera")).status_code == 200
    assert client.get("/login?next=%2Ftimeline").status_code == 200


def test_url_and_header_bounds(client, seeded):  # noqa: F811
    long_url = client.get("/api/me?limit=" + "1" * 10_000, headers=seeded.auth("vera"))
    assert long_url.status_code == 414 and long_url.json()["error"] == "uri_too_long"
    many = {f"x-h{i}": "v" for i in range(150)}
    resp = client.get("/api/me", headers={**many, **seeded.auth("vera")})
    assert resp.status_code == 431 and resp.json()["error"] == "headers_too_large"
    huge = client.get("/api/me", headers={"x-big": "v" * 20_000, **seeded.auth("vera")})
    assert huge.status_code == 431


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_canary_token_never_reaches_the_access_log_of_a_real_server(tmp_path):
    url = f"sqlite:///{tmp_path / 'canary.db'}"
    store = open_store(url, migrate=True)
    with store.session() as s:
        _, canary = repos.create_user(s, "cora", "compliance")
    store.close()
    fake = "pgt_CANARY-not-a-user-0123456789abcdef"
    port = _free_port()
    code = (f"from pathlib import Path; from primeguard.web import serve; "
            f"serve({url!r}, port={port}, log_level='info', policy_dir=Path({str(REPO / 'policies')!r}))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "server did not start"  # wallclock-ok: start-up deadline
            time.sleep(0.1)
        statuses = []
        for secret in (canary, fake):
            for target in (f"/api/me?token={secret}", f"/api/me?access_token={secret}",
                           f"/api/overview?limit=5&token={secret}", f"/?token={secret}",
                           f"/login?access_token={secret}", f"/timeline?next=%2F&token={secret}"):
                statuses.append(httpx.get(base + target, timeout=10).status_code)
                statuses.append(httpx.get(base + target, headers={"Authorization": f"Bearer {canary}"},
                                          timeout=10).status_code)
            statuses.append(httpx.post(f"{base}/login?token={secret}", data={"token": secret}, timeout=10).status_code)
        assert set(statuses) <= {400, 401}, statuses
        assert httpx.get(f"{base}/api/me", headers={"Authorization": f"Bearer {canary}"}, timeout=10).status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    log = out.decode()
    assert '"GET /api/me?token=' in log and '"GET /api/overview?limit=' in log, log[-2000:]  # the access log ran
    assert canary not in log and fake not in log and "CANARY" not in log
