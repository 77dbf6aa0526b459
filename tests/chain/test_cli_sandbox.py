"""`primeguard sandbox up`, `sweep --json` and `sandbox down` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.json_schemas import check

pytestmark = pytest.mark.chain


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "primeguard.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=180)


def test_up_sweep_down(repo, tmp_path):
    workdir = tmp_path / "sb"
    up = run("sandbox", "up", "--scenario", str(repo / "infra/scenarios/basic.yaml"), "--dir", str(workdir), cwd=repo)
    assert up.returncode == 0, up.stderr
    state = json.loads((workdir / "state.json").read_text())
    try:
        out = run("sweep", "--config", state["config"], "--json", "--progress", cwd=repo)
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)  # progress goes to stderr only: stdout stays the JSON
        assert "] evm: " in out.stderr and "accounts read in" in out.stderr, out.stderr
        assert "evaluated " in out.stderr, out.stderr
        assert report["schema"] == "primeguard.sweep/1"
        check("sweep", report)
        clients = {c["client"]: c for c in report["clients"]}
        # firm-a: 10 ETH + 50 WETH at 3000 + 250000 USDC at 1, plus 10000 USDC in its Safe
        assert clients["firm-a"]["collateral_usd"] == "440000"
        eth = next(p for p in report["prices"] if p["asset"] == "ETH")
        assert eth["price"] == "3000" and eth["source"] == "oracle" and eth["age_s"] >= 0
        caps = run("capabilities", "--config", state["config"], "--json", "--progress", cwd=repo)
        assert caps.returncode == 0, caps.stderr
        cap = json.loads(caps.stdout)
        assert "] scan ethereum: blocks " in caps.stderr, caps.stderr
        assert cap["schema"] == "primeguard.capabilities/1"
        check("capabilities", cap)
        codes = [f["code"] for f in cap["findings"]]
        assert {"unlimited_approval", "safe_module_enabled", "safe_low_threshold"} <= set(codes)
        assert codes.index("unlimited_approval") < codes.index("unknown_spender")  # worst first
        kinds = {c["kind"] for c in cap["credentials"]}
        assert {"erc20_approval", "safe_module", "safe_owners", "evm_eoa"} <= kinds
    finally:
        down = run("sandbox", "down", "--dir", str(workdir), cwd=repo)
    assert down.returncode == 0, down.stderr
    for pid in [state["pid"], *state["anvil_pids"]]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_sweep_rejects_bad_config_without_traceback(repo, tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("chains: [{id: ethereum, chain_id: 1}]\n")
    out = run("sweep", "--config", str(bad), cwd=repo)
    assert out.returncode == 2
    assert "chains.0.rpc_url: Field required" in out.stderr and "Traceback" not in out.stderr
