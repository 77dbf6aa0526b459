"""A custody world on anvil shared by the security tests: gamma's collateral vault, our policies
with gamma's destinations allowlisted and a 2-of-3 compliance rule above $200k, a config file the
CLI reads, and users created through the CLI (tokens, never names)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from primeguard.sandbox.world import Sandbox
from tests.clitools import make_users
from tests.conftest import REPO, scenario_from

DEST = "0x4b280EdCc946EAA52913262F098391Af6aA31751"
OTHER = "0x506fEDd589E0BB429f2b312Dae2eDdd0a7c2F794"
WORLD = {
    "name": "security",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": "gamma", "vault": {
        "limits": {"USDC": "10000000"}, "tokens": {"USDC": "2000000"},
        "allowlist": [{"asset": "USDC", "address": DEST}, {"asset": "USDC", "address": OTHER}]}}],
}
def allowlist_entry(entry_id: str, client: str, asset: str, address: str, label: str) -> str:
    """One EVM withdrawal-allowlist entry, as appended to a copy of policies/allowlist.yaml."""
    return f"""
  - id: {entry_id}
    client: {client}
    venue: evm
    chain: ethereum
    asset: {asset}
    address: "{address}"
    label: {label}
    added_by: carol
    added_at: 2026-01-01T00:00:00Z
    expires_at: 2099-01-01T00:00:00Z
"""


ENTRIES = "".join(allowlist_entry(f"gamma-{i}-usdc", "gamma", asset, addr, f"Gamma wallet {i}")
                  for i, (asset, addr) in enumerate([("USDC", DEST), ("USDC", OTHER), ("ETH", DEST)]))
USERS = {"tom": "treasury", "Tina": "treasury", "carol": "compliance", "dave": "compliance", "erin": "compliance",
         "vic": "viewer"}


@dataclass
class SecurityWorld:
    sb: Sandbox
    config: Path
    store_url: str
    policy_dir: Path
    tokens: dict[str, str]


def policies_into(target: Path) -> Path:
    """Our shipped policies, gamma's destinations allowlisted, the 2-of-3 rule from $200k."""
    shutil.copytree(REPO / "policies", target)
    with (target / "allowlist.yaml").open("a", encoding="utf-8") as fh:
        fh.write(ENTRIES)
    approvals = target / "approvals.yaml"
    text = approvals.read_text(encoding="utf-8")
    assert "above_usd: 1000000" in text
    approvals.write_text(text.replace("above_usd: 1000000", "above_usd: 200000"), encoding="utf-8")
    for test_file in target.glob("*_test.yaml"):  # the shipped cases assume the shipped thresholds
        test_file.unlink()
    return target


def build_world(base: Path, *, with_users: bool = True) -> Iterator[SecurityWorld]:
    """Start the sandbox and write ``security.yaml`` beside its config (keystore paths stay valid)."""
    sb = Sandbox(scenario_from(WORLD), base / "world")
    sb.start()
    try:
        pdir = policies_into(base / "policies")
        assert sb.config_path is not None
        data = yaml.safe_load(sb.config_path.read_text(encoding="utf-8"))
        url = f"sqlite:///{base / 'security.db'}"
        data["policy_dir"] = str(pdir)
        data["store"] = {"url": url}
        for chain in data.get("chains", []):  # a loaded CI box must not turn a slow read into a blind chain
            chain["timeout_s"] = 60
        config = sb.config_path.parent / "security.yaml"
        config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        tokens = make_users(config, REPO, USERS) if with_users else {}
        yield SecurityWorld(sb, config, url, pdir, tokens)
    finally:
        sb.stop()
