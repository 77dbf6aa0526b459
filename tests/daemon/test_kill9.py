"""kill -9 the daemon while it halts a client, restart it: the vault is paused exactly once, the
action ends done, and the audit chain verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
import yaml
from web3 import Web3

from primeguard.custody.vault import vault_abi
from primeguard.store import audit, repos
from primeguard.store.db import open_store
from tests.daemon.policies import policy_copy

pytestmark = pytest.mark.chain

WORLD = {
    "name": "kill9",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": "firm-a", "loan": {"principal": "150000"},
                 "wallets": [{"tokens": {"WETH": "100"}}],
                 "vault": {"limits": {"USDC": "1000"}, "tokens": {"USDC": "100000"}}}],
}


def _daemon(cfg_path, log):
    return subprocess.Popen([sys.executable, "-m", "primeguard.cli", "run", "--config", str(cfg_path),
                             "--sweep-every", "0.5"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.002)
    raise AssertionError("condition not met in time")


def test_kill9_mid_halt_then_restart(sandbox_factory, tmp_path):
    sb = sandbox_factory(WORLD)
    cfg = yaml.safe_load(sb.config_path.read_text())
    step = "{{id: {}, lever: halt_vault, mode: {}}}"  # the vault pause runs on its own
    cfg["policy_dir"] = str(policy_copy(tmp_path / "policies", {"plan.yaml": {
        step.format(s, "needs_approval"): step.format(s, "automatic") for s in ("halt-pause-vaults", "liq-pause-vaults")
    }}))
    cfg["store"] = {"url": f"sqlite:///{tmp_path / 'k.db'}"}
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    store = open_store(f"sqlite:///{tmp_path / 'k.db'}", migrate=True)
    log = (tmp_path / "daemon.log").open("ab")
    proc = _daemon(cfg_path, log)
    try:
        def swept():
            with store.session(readonly=True) as s:
                return repos.latest_metric(s, "firm-a")
        _wait(swept)
        sb.set_price("ETH", Decimal("100"))

        def action_started():
            with store.session(readonly=True) as s:
                rows = [a for a in repos.list_actions(s, client_id="firm-a") if a.kind == "halt_vault"]
                return rows[0] if rows and rows[0].state in ("executing", "done") else None
        killed_in = _wait(action_started).state
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc = _daemon(cfg_path, log)

        def done():
            with store.session(readonly=True) as s:
                rows = [a for a in repos.list_actions(s, client_id="firm-a") if a.kind == "halt_vault"]
                return rows if rows and all(a.state == "done" for a in rows) else None
        rows = _wait(done)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    w3 = Web3(Web3.HTTPProvider(sb.chains["ethereum"].node.rpc_url))
    vault = w3.eth.contract(address=cfg["vaults"][0]["address"], abi=vault_abi())
    assert vault.functions.paused().call()
    assert len(vault.events.Paused().get_logs(from_block=0)) == 1, f"killed while {killed_in}"
    assert len(rows) == 1
    assert audit.verify(store).ok
