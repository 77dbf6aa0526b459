"""Compliance from the command line: lint and test the shipped policies, propose a version, see a
self-approval refused, approve as a second user; the daemon then uses the active version."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.clitools import make_users, run_cli


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "primeguard.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=180)


def test_lint_and_test_shipped_policies(repo):
    lint = run("policy", "lint", "policies", "--json", cwd=repo)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    tests = run("policy", "test", "policies", "--json", cwd=repo)
    assert tests.returncode == 0, tests.stdout[-2000:]


def test_propose_self_approval_refused_then_approved(repo, tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"store": {"url": f"sqlite:///{tmp_path / 'p.db'}"}}))
    tokens = make_users(cfg, repo, {"carol": "compliance", "dave": "compliance"})
    prop = run_cli("policy", "propose", "policies", "--config", str(cfg), "--json", cwd=repo, token=tokens["carol"])
    assert prop.returncode == 0, prop.stderr
    version = json.loads(prop.stdout)
    assert version["state"] == "proposed" and version["proposed_by"] == "carol"
    selfish = run_cli("policy", "approve", version["hash"][:12], "--config", str(cfg), cwd=repo,
                      token=tokens["carol"])
    assert selfish.returncode == 2 and "self_approval" in selfish.stderr and "cannot approve" in selfish.stderr
    ok = run_cli("policy", "approve", version["hash"][:12], "--config", str(cfg), "--json", cwd=repo,
                 token=tokens["dave"])
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["state"] == "active"
    from primeguard.app.policy_source import active_policy
    from primeguard.config import load_config
    from primeguard.store.db import open_store

    loaded = active_policy(load_config(cfg), open_store(f"sqlite:///{tmp_path / 'p.db'}"), tmp_path)
    assert loaded is not None and loaded.hash == version["hash"]
