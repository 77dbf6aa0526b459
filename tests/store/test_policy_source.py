"""The policy in force is parsed once per content hash: the daemon asks on every sweep, but an
unchanged version is never parsed again, and a newly activated one is picked up at once."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

from primeguard.app.policy_source import PolicySource
from primeguard.config.schema import PrimeguardConfig
from primeguard.policy.loader import read_policy_dir
from primeguard.store.db import open_store
from tests.conftest import REPO
from tests.store.util import activate_policy


def _source(tmp_path: Path) -> tuple[PolicySource, Path]:
    pdir = tmp_path / "policies"
    shutil.copytree(REPO / "policies", pdir)
    cfg = PrimeguardConfig.model_validate({"version": 1, "policy_dir": str(pdir),
                                           "store": {"url": f"sqlite:///{tmp_path / 'p.db'}"}})
    return PolicySource(cfg, open_store(cfg.store.url, migrate=True), tmp_path), pdir


def _activate(source: PolicySource, files: dict[str, str]) -> str:
    return activate_policy(source.store, files)


def test_unchanged_policy_is_parsed_once_and_a_new_active_version_is_picked_up(tmp_path: Path) -> None:
    source, pdir = _source(tmp_path)
    first = source.current()
    assert first is not None
    for _ in range(5):  # five sweeps: the directory is read and hashed, never parsed again
        assert source.current() is first
    assert source.parses == 1

    allow = pdir / "allowlist.yaml"
    allow.write_text(allow.read_text().replace("destinations compliance has verified", "verified destinations"))
    changed = source.current()
    assert changed is not None and changed.hash != first.hash
    assert source.parses == 2

    files = read_policy_dir(pdir)
    files["allowlist.yaml"] = files["allowlist.yaml"].replace("verified destinations", "approved destinations")
    active_hash = _activate(source, files)
    active = source.current()
    assert active is not None and active.hash == active_hash  # the approved version wins over the directory
    assert source.parses == 3
    for _ in range(5):
        assert source.current() is active
    assert source.parses == 3


def test_a_broken_active_version_fails_closed_and_is_not_parsed_every_sweep(tmp_path: Path) -> None:
    source, pdir = _source(tmp_path)
    files = read_policy_dir(pdir)
    files["risk.yaml"] = files["risk.yaml"].replace("default_tier: new", "default_tier: [not, a, tier]")
    _activate(source, files)
    assert source.current() is None
    assert source.current() is None
    assert source.parses == 1


def test_each_parse_is_followed_by_throw_away_decisions_that_change_nothing(tmp_path: Path) -> None:
    """After a parse the source makes three throw-away decisions (``warm_up``) and none while the
    version is unchanged; decisions under the warmed policy equal those under a fresh load."""
    from primeguard.policy.engine import evaluate_withdrawal
    from primeguard.policy.loader import load_bundle
    from tests.unit.policy.helpers import context, request

    source, pdir = _source(tmp_path)
    warmed = source.current()
    assert warmed is not None and source.warm_ups == 3
    for _ in range(3):
        assert source.current() is warmed
    assert source.warm_ups == 3
    fresh = load_bundle(read_policy_dir(pdir))
    for amount in (Decimal(1000), Decimal(150_000), Decimal(10**9)):
        for dest in (None, "0x" + "ab" * 20):
            req = request(amount=amount) if dest is None else request(amount=amount, destination=dest)
            a, b = evaluate_withdrawal(warmed, req, context()), evaluate_withdrawal(fresh, req, context())
            assert (a.decision, a.findings, a.checks, a.usd_amount) == (b.decision, b.findings, b.checks, b.usd_amount)


def test_a_policy_that_fails_to_load_is_not_warmed_up(tmp_path: Path) -> None:
    source, pdir = _source(tmp_path)
    files = read_policy_dir(pdir)
    files["risk.yaml"] = files["risk.yaml"].replace("default_tier: new", "default_tier: [not, a, tier]")
    _activate(source, files)
    assert source.current() is None and source.warm_ups == 0
