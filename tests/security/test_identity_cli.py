"""Defect N.1: four eyes at the command line compared free text. Every attack goes through the real
CLI (a subprocess) against a sandbox: identities come from tokens, roles from the store, four eyes
compare user ids, and a refused write writes nothing."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from primeguard.playbooks.engine import ActionSpec, Playbook
from primeguard.store import repos
from primeguard.store.db import open_store
from primeguard.store.identity import actor_of
from tests.clitools import run_cli, token_in
from tests.conftest import REPO
from tests.security.world import DEST, SecurityWorld, build_world

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecurityWorld]:
    yield from build_world(tmp_path_factory.mktemp("identity"))


def cli(w: SecurityWorld, *args: str, who: str | None = None, token: str | None = None):
    if args[:2] in (("withdraw", "request"), ("withdraw", "approve")):
        # the module's world lives minutes on a loaded machine, and an approval re-decides: keep the
        # feeds inside their age limit
        w.sb.refresh_prices()
    return run_cli(*args, "--config", str(w.config), cwd=REPO, token=w.tokens[who] if who else token)


def request(w: SecurityWorld, amount: str, who: str = "tom") -> dict:
    out = cli(w, "withdraw", "request", "--account", "gamma-vault-ethereum", "--asset", "USDC", "--amount", amount,
              "--to", DEST, "--json", who=who)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def withdrawal(w: SecurityWorld, wid: str) -> tuple[str, list[tuple[str, int | None]]]:
    store = open_store(w.store_url)
    try:
        with store.session(readonly=True) as s:
            row = repos.get_withdrawal(s, wid)
            assert row is not None
            return row.state, [(a.approver, a.approver_id) for a in repos.list_approvals(s, wid)]
    finally:
        store.close()


def count_withdrawals(w: SecurityWorld) -> int:
    store = open_store(w.store_url)
    try:
        with store.session(readonly=True) as s:
            return len(repos.list_withdrawals(s, limit=10_000))
    finally:
        store.close()


def refused(out, *words: str) -> None:
    assert out.returncode == 2, out.stdout + out.stderr
    text = " ".join(out.stderr.split())
    for word in words:
        assert word in text, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr  # one clear line


def gone(out, flag: str) -> None:
    """The option no longer exists: a usage error, nothing run."""
    assert out.returncode == 2 and "No such option" in out.stderr and flag in out.stderr, out.stderr


def test_requester_cannot_approve_under_any_spelling(world):
    r = request(world, "150000")
    assert r["state"] == "requested"
    # The old attack: the requester claims a capitalised name and a role. Those flags are gone.
    old = cli(world, "withdraw", "approve", r["id"], "--as", "TOM", "--role", "treasury", who="tom")
    gone(old, "--as")
    # With their own token they are refused exactly as the web refuses them.
    refused(cli(world, "withdraw", "approve", r["id"], who="tom"), "self_approval", "cannot approve")
    # A user named TOM cannot be created next to tom (names are unique after NFKC casefolding).
    refused(cli(world, "users", "add", "TOM", "--role", "treasury", who="root"), "exists already")
    refused(cli(world, "users", "add", "ｔｏｍ", "--role", "compliance", who="root"), "exists already")
    assert withdrawal(world, r["id"]) == ("requested", [])
    ok = cli(world, "withdraw", "approve", r["id"], "--json", who="Tina")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["state"] == "approved"


def test_nobody_cannot_write(world):
    before = count_withdrawals(world)
    args = ("withdraw", "request", "--account", "gamma-vault-ethereum", "--asset", "USDC", "--amount", "10",
            "--to", DEST)
    refused(cli(world, *args), "unauthenticated", "PRIMEGUARD_TOKEN")
    refused(cli(world, *args, token="pgt_" + secrets.token_urlsafe(32)), "unauthenticated", "unknown or revoked")
    gone(cli(world, *args, "--as", "ghost"), "--as")  # naming yourself is not an option any more
    assert count_withdrawals(world) == before


def test_role_comes_from_the_store_not_a_flag(world):
    r = request(world, "150000")
    before = count_withdrawals(world)
    refused(cli(world, "withdraw", "request", "--account", "gamma-vault-ethereum", "--asset", "USDC", "--amount",
                "10", "--to", DEST, who="vic"), "forbidden_role", "vic (viewer)")
    gone(cli(world, "withdraw", "approve", r["id"], "--role", "compliance", who="vic"), "--role")
    refused(cli(world, "withdraw", "approve", r["id"], who="vic"), "forbidden_role")
    refused(cli(world, "users", "add", "mallory", "--role", "admin", who="tom"), "forbidden_role")
    assert count_withdrawals(world) == before
    assert withdrawal(world, r["id"]) == ("requested", [])


def test_one_operator_cannot_fill_two_of_three(world):
    r = request(world, "210000")  # above $200k: two of carol, dave, erin
    assert r["state"] == "requested", r["decision"]
    first = cli(world, "withdraw", "approve", r["id"], "--json", who="carol")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["state"] == "requested"
    refused(cli(world, "withdraw", "approve", r["id"], who="carol"), "already approved")
    state, approvals = withdrawal(world, r["id"])
    assert state == "requested" and [a for a, _ in approvals] == ["carol"]
    second = cli(world, "withdraw", "approve", r["id"], "--json", who="dave")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["state"] == "approved"
    state, approvals = withdrawal(world, r["id"])
    assert len({uid for _, uid in approvals}) == 2


def test_policy_proposer_cannot_approve(world):
    prop = cli(world, "policy", "propose", str(world.policy_dir), "--note", "x", "--json", who="carol")
    assert prop.returncode == 0, prop.stderr
    version = json.loads(prop.stdout)
    gone(cli(world, "policy", "approve", version["hash"][:12], "--as", "Carol"), "--as")
    refused(cli(world, "policy", "approve", version["hash"][:12], who="carol"), "self_approval")
    refused(cli(world, "policy", "approve", version["hash"][:12], who="tom"), "tom (treasury)")
    store = open_store(world.store_url)
    try:
        with store.session(readonly=True) as s:
            assert repos.get_policy_version(s, version["hash"]).state == "proposed"
    finally:
        store.close()


def test_action_proposer_cannot_approve(world):
    store = open_store(world.store_url)
    try:
        with store.session() as s:
            carol = actor_of(repos.get_user(s, "carol"))
        spec = ActionSpec("halt_vault", "gamma", episode=f"manual:{datetime.now(UTC).isoformat()}",
                          mode="needs_approval")
        assert Playbook(store, {}).propose([spec], proposed_by=carol) == [spec.id]
        refused(cli(world, "actions", "approve", spec.id, who="carol"), "self_approval")
        refused(cli(world, "actions", "approve", spec.id, who="tom"), "forbidden_role")
        with store.session(readonly=True) as s:
            assert repos.get_action(s, spec.id).state == "proposed"
        ok = cli(world, "actions", "approve", spec.id, "--json", who="dave")
        assert ok.returncode == 0, ok.stderr
        with store.session(readonly=True) as s:
            row = repos.get_action(s, spec.id)
            assert (row.state, row.approved_by) == ("approved", "dave")
    finally:
        store.close()


def test_revoked_token_stops_working(world, tmp_path: Path):
    token = token_in(cli(world, "users", "add", "temp", "--role", "treasury", who="root"))
    path = tmp_path / "token"
    path.write_text(token + "\n")
    path.chmod(0o644)
    args = ("withdraw", "request", "--account", "gamma-vault-ethereum", "--asset", "USDC", "--amount", "10",
            "--to", DEST, "--token-file", str(path))
    refused(cli(world, *args), "readable by group or others")
    os.chmod(path, 0o600)
    assert cli(world, *args).returncode == 0
    assert cli(world, "users", "revoke", "TEMP", who="root").returncode == 0  # names compare casefolded
    before = count_withdrawals(world)
    refused(cli(world, *args), "unknown or revoked")
    assert count_withdrawals(world) == before


def test_bootstrap_only_once(world):
    refused(cli(world, "users", "bootstrap", "second-admin"), "users exist already")
