"""`primeguard demo --once --json`: one sweep over the demo world, as the README promises."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.json_schemas import check


def test_demo_once_json(repo):
    out = subprocess.run([sys.executable, "-m", "primeguard.cli", "demo", "--once", "--json"], cwd=repo,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["schema"] == "primeguard.demo/1"
    check("demo", report)
    clients = {c["client"]: c for c in report["clients"]}
    assert len(clients) >= 20
    states = {c["ladder"]["state"] for c in clients.values()}
    assert {"normal", "warn", "margin_call", "halt"} <= states  # some unhealthy from the start
    assert clients["alpha"]["tier"] == "proven" and clients["gamma"]["tier"] == "new"
    codes = {f["code"] for f in report["findings"]}
    assert {"unlimited_approval", "safe_module_enabled", "safe_low_threshold"} <= codes
    assert all(c["blind"] is False for c in clients.values())
