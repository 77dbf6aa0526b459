"""Destinations through the API and the dashboard.

Against the seeded store (no chain): every bad input is a 4xx and changes nothing (no audit entry,
no policy version); roles and four eyes by user id. On the sandbox (anvil, the sanctions oracle):
compliance proposes, the proposer cannot approve, a second compliance user approves and the agent
proposes the destination to the vault (pending in its timelock); a sanctioned address is refused;
the page lists the destination with its state and screening."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from primeguard.app.runtime import Runtime
from primeguard.store import audit, repos
from primeguard.web import create_app
from tests.clitools import make_users
from tests.json_schemas import check
from tests.security.world import allowlist_entry
from tests.web.conftest import csrf_of, login

NEW = "0x1111111111111111111111111111111111111111"
GOOD = {"client": "alpha", "address": NEW, "assets": ["USDC"], "label": "Alpha new settlement"}


@pytest.fixture
def dest_client(seeded, dest_service):
    app = create_app(seeded.store, withdrawals=seeded.service, playbook=seeded.playbook, policy_dir=seeded.policy_dir,
                     destinations=dest_service)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as c:
        yield c


def _state(seeded) -> tuple[object, int]:
    with seeded.store.session(readonly=True) as s:
        return audit.head(s), len(repos.list_policy_versions(s))


@pytest.mark.parametrize(("change", "code"), [
    ({"address": "0x1234"}, "invalid_input"),
    ({"address": NEW.lower().replace("0x1", "0xZ")}, "invalid_input"),
    ({"venue": "kraken"}, "invalid_input"),
    ({"client": "nobody"}, "invalid_input"),
    ({"chain": "solana"}, "invalid_input"),
    ({"assets": []}, "invalid_input"),
    ({"assets": ["usdc!"]}, "invalid_input"),
    ({"label": ""}, "invalid_input"),
    ({"entry_id": "alpha-vault-usdc"}, "invalid_input"),  # already in the allowlist
    ({"entry_id": "has space"}, "invalid_input"),
    ({"expires_at": "2020-01-01T00:00:00Z"}, "invalid_input"),
    ({"expires_at": "2030-01-01T00:00:00"}, "invalid_input"),  # no time zone
    ({"surprise": 1}, "invalid_input"),
])
def test_bad_proposals_are_4xx_and_change_nothing(dest_client, seeded, change, code):
    before = _state(seeded)
    resp = dest_client.post("/api/destinations", headers=seeded.auth("carol"), json={**GOOD, **change})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"] == code
    assert _state(seeded) == before


@pytest.mark.parametrize("user", ["vera", "tom"])
def test_only_compliance_or_admin_propose(dest_client, seeded, user):
    before = _state(seeded)
    resp = dest_client.post("/api/destinations", headers=seeded.auth(user), json=GOOD)
    assert resp.status_code == 403 and resp.json()["error"] == "forbidden_role"
    assert _state(seeded) == before


def test_unscreenable_destination_is_refused_without_a_proposal(dest_client, seeded):
    """The seeded config has no screening source: fail closed (503), no policy version."""
    _, versions = _state(seeded)
    resp = dest_client.post("/api/destinations", headers=seeded.auth("carol"), json=GOOD)
    assert resp.status_code == 503 and resp.json()["error"] == "screening_unavailable"
    assert _state(seeded)[1] == versions


def test_approval_refusals_change_nothing(dest_client, seeded):
    before = _state(seeded)
    own = dest_client.post(f"/api/destinations/{seeded.proposal_hash}/approve", headers=seeded.auth("carol"))
    assert own.status_code == 403 and own.json()["error"] == "self_approval"
    for user in ("tom", "adam", "vera"):
        resp = dest_client.post(f"/api/destinations/{seeded.proposal_hash}/approve", headers=seeded.auth(user))
        assert resp.status_code == 403 and resp.json()["error"] == "forbidden_role", user
    missing = dest_client.post("/api/destinations/nope/approve", headers=seeded.auth("dave"))
    assert missing.status_code == 404
    assert _state(seeded) == before


def test_without_a_destination_service_503(client, seeded):
    resp = client.get("/api/destinations", headers=seeded.auth("vera"))
    assert resp.status_code == 503 and resp.json()["error"] == "destinations_unavailable"


SANC = "0x8589427373D6D84E98730D7795D8f6f8731FDA16"
DEST = "0x4b280EdCc946EAA52913262F098391Af6aA31751"
WORLD = {
    "name": "web-destinations",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "sanctioned": [SANC],
    "clients": [{"id": "gamma", "vault": {"timelock_s": 3600, "limits": {"USDC": "1000"}, "tokens": {"USDC": "100"},
                                          "allowlist": [{"asset": "USDC", "address": DEST}]}}],
}


@pytest.mark.chain
def test_propose_four_eyes_approve_pushes_to_the_vault(sandbox_factory, repo, tmp_path):
    sb = sandbox_factory(WORLD)
    pdir = tmp_path / "policies"
    shutil.copytree(repo / "policies", pdir)
    with (pdir / "allowlist.yaml").open("a") as fh:
        fh.write(allowlist_entry("gamma-dest", "gamma", "USDC", DEST, "Gamma settlement"))
    sb.policy_dir = str(pdir)
    sb.config_path = sb._write_config()
    tokens = make_users(sb.config_path, tmp_path, {"carol": "compliance", "dave": "compliance", "vera": "viewer"})
    rt = Runtime.from_config(sb.config_path)
    app = create_app(rt.store, policy_dir=rt.policy_dir, destinations=rt.destinations())

    def auth(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[user]}"}

    with TestClient(app, base_url="http://testserver", follow_redirects=False) as c:
        expires = (datetime.now(UTC) + timedelta(days=90)).isoformat()
        made = c.post("/api/destinations", headers=auth("carol"),
                      json={"client": "gamma", "address": NEW, "assets": ["USDC"], "label": "Gamma new",
                            "expires_at": expires})
        assert made.status_code == 201, made.text
        assert made.json()["screening"]["verdict"] == "clear"
        version = made.json()["version"]["hash"]
        listed = c.get("/api/destinations", headers=auth("vera")).json()
        check("allowlist", listed)
        assert [p["version"] for p in listed["proposals"]] == [version]
        assert [a["address"] for a in listed["proposals"][0]["adds"]] == [NEW]

        own = c.post(f"/api/destinations/{version}/approve", headers=auth("carol"))
        assert own.status_code == 403 and own.json()["error"] == "self_approval"
        ok = c.post(f"/api/destinations/{version}/approve", headers=auth("dave"))
        assert ok.status_code == 200, ok.text
        step = next(s for s in ok.json()["steps"] if s["address"] == NEW)
        assert step["action"] == "proposed" and step["onchain"] == "pending" and step["tx_hash"]

        after = c.get("/api/destinations", headers=auth("vera")).json()
        assert after["proposals"] == []
        row = next(d for d in after["destinations"] if d["address"] == NEW)
        assert row["screening"] == "clear" and row["policy"][0]["entry"].startswith("gamma-evm-")
        assert row["vaults"][0]["state"] == "pending" and row["vaults"][0]["eta"]

        with rt.store.session(readonly=True) as s:
            versions = len(repos.list_policy_versions(s))
        bad = c.post("/api/destinations", headers=auth("carol"),
                     json={"client": "gamma", "address": SANC, "assets": ["USDC"], "label": "nope"})
        assert bad.status_code == 422 and bad.json()["error"] == "sanctioned"
        with rt.store.session(readonly=True) as s:
            assert len(repos.list_policy_versions(s)) == versions

        login(c, tokens["vera"])
        page = c.get("/destinations").text
        assert NEW in page and "Screen and propose" not in page  # a viewer sees, cannot propose
        c.post("/logout", data={"csrf": csrf_of(c)})
        login(c, tokens["carol"])
        form = c.post("/destinations", data={"csrf": csrf_of(c, "/destinations"), "client": "gamma",
                                             "address": "0x2222222222222222222222222222222222222222",
                                             "assets": "USDC", "label": "Gamma third"})
        assert form.status_code == 303, form.text
        page = c.get("/destinations").text
        assert "0x2222222222222222222222222222222222222222" in page and "a different compliance user" in page
    rt.close()
