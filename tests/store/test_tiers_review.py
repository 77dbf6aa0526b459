"""``primeguard tiers review`` over a real store: the track record comes from the stored metric
history; a promotion is proposed, and applies only once a second compliance user approves the
policy change (real users through the real CLI)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import yaml

from primeguard.store import open_store, repos
from tests.clitools import make_users, run_cli
from tests.conftest import REPO
from tests.json_schemas import check


def _world(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    url = f"sqlite:///{tmp_path / 'tiers.db'}"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"policy_dir": "policies", "store": {"url": url}, "clients": [{"id": "delta"}]}))
    now = datetime.now(UTC)
    store = open_store(url, migrate=True)
    try:
        with store.session() as s:
            for d in range(40, -1, -1):  # gamma: 40 clean days, slowly profitable
                _point(s, "gamma", now - timedelta(days=d, minutes=5), 2_000_000 + 500 * (40 - d), "normal")
            for d in range(60, -1, -1):  # beta: a margin call 10 days ago
                _point(s, "beta", now - timedelta(days=d, minutes=5), 3_000_000, "margin_call" if d == 10 else "normal")
            _point(s, "delta", now - timedelta(days=5), 1_000_000, "normal", blind=True)  # only a blind sweep
    finally:
        store.close()
    return config


def _point(s, client: str, at: datetime, equity: int, state: str, *, blind: bool = False) -> None:
    repos.record_metric(s, client_id=client, at=at, equity=Decimal(equity), loan=Decimal(1_000_000), ltv=Decimal("0.5"),
                        ladder_state=state, extra={"valuation": {"blind": blind}})


def _review(config: Path) -> dict:
    out = run_cli("tiers", "review", "--config", str(config), "--json", cwd=config.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout)
    check("tiers_review", data)
    return {c["client"]: c for c in data["clients"]} | {"_proposals": data["proposals"]}


def test_review_proposes_from_the_stored_history_and_fails_closed(tmp_path: Path) -> None:
    config = _world(tmp_path)
    got = _review(config)
    assert got["gamma"]["action"] == "promote" and got["gamma"]["proposed_tier"] == "standard"
    assert [t["eligible"] for t in got["gamma"]["tiers"]] == [True, True, False]
    assert got["gamma"]["record"]["realised_pnl_usd"] == "20000"
    assert got["beta"]["action"] == "demote" and got["beta"]["proposed_tier"] == "new"
    assert got["beta"]["why"][0].startswith("margin call at ")
    for cid in ("alpha", "delta"):  # no history / only a blind sweep: eligible for nothing, never demoted
        assert got[cid]["action"] == "hold" and got[cid]["record"]["problem"] == "no stored history"
        assert not any(t["eligible"] for t in got[cid]["tiers"])
    assert {(p["client"], p["action"], p["to"]) for p in got["_proposals"]} == {
        ("gamma", "promote", "standard"), ("beta", "demote", "new")}
    human = run_cli("tiers", "review", "--config", str(config), cwd=tmp_path)
    assert human.returncode == 0 and "promote to standard" in human.stdout and "no stored history" in human.stdout


def test_a_promotion_applies_only_after_a_second_compliance_approval(tmp_path: Path) -> None:
    config = _world(tmp_path)
    tokens = make_users(config, tmp_path, {"carol": "compliance", "dave": "compliance"})
    proposed = tmp_path / "proposed"
    shutil.copytree(tmp_path / "policies", proposed)
    risk = proposed / "risk.yaml"
    text = risk.read_text()
    old = "tier: new, since: 2026-09-01T00:00:00Z"
    assert old in text
    risk.write_text(text.replace(old, f"tier: standard, since: {datetime.now(UTC).isoformat()}"))
    out = run_cli("policy", "propose", str(proposed), "--config", str(config), "--json", cwd=tmp_path,
                  token=tokens["carol"])
    assert out.returncode == 0, out.stderr
    ref = json.loads(out.stdout)["hash"]
    assert _review(config)["gamma"]["tier"] == "new"  # proposed, not in force
    denied = run_cli("policy", "approve", ref, "--config", str(config), cwd=tmp_path, token=tokens["carol"])
    assert denied.returncode == 2  # four eyes: the proposer cannot approve
    assert _review(config)["gamma"]["tier"] == "new"
    ok = run_cli("policy", "approve", ref, "--config", str(config), cwd=tmp_path, token=tokens["dave"])
    assert ok.returncode == 0, ok.stderr
    after = _review(config)["gamma"]
    # in standard since just now: no new promotion, and a short record is no reason to demote
    assert after["tier"] == "standard" and after["action"] == "hold"
