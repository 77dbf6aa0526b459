"""``primeguard drill`` end to end through the CLI: the planned ladder on infra/scenarios/drill.yaml
(one client on Binance, OKX, Bybit, dYdX and a vault; ETH falling step by step, OKX down for a step),
the timeline and each venue's end state as the venues report it, validated against its schema.
A bad scenario file is refused with file:line before anything starts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.clitools import run_cli
from tests.json_schemas import check

REPO = Path(__file__).resolve().parents[2]
DRILL = REPO / "infra" / "scenarios" / "drill.yaml"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    out = run_cli("drill", "--scenario", str(DRILL), "--json", cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    data: dict[str, Any] = json.loads(out.stdout)
    check("drill", data)
    return data


def _levers(report: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [e for e in report["timeline"] if e["kind"] == "lever" and e["action"] == action]


def _venue(report: dict[str, Any], account: str) -> dict[str, Any]:
    return next(v for v in report["end_state"]["venues"] if v["account"] == account)


@pytest.mark.chain
def test_drill_climbs_the_ladder_and_halts_every_venue(report: dict[str, Any]) -> None:
    rungs = [(e["from"], e["to"], e["ltv"]) for e in report["timeline"] if e["kind"] == "rung"]
    assert [r[:2] for r in rungs][:3] == [("normal", "warn"), ("warn", "margin_call"), ("margin_call", "halt")]
    assert all(re.fullmatch(r"\d+\.\d\d %", ltv) for _, _, ltv in rungs), rungs
    blind = [e for e in report["timeline"] if e["kind"] == "blind" and e["step"] == "okx down"]
    assert blind and "kestrel-okx" in blind[0]["accounts"]
    assert [e["outcome"] for e in _levers(report, "margin_call")] == ["done"]
    # the client's own webhook got the margin-call notice, with its deadline, before the halt
    notices = [i for i, e in enumerate(report["timeline"]) if e["kind"] == "notice"]
    halted = next(i for i, e in enumerate(report["timeline"]) if e["kind"] == "rung" and e["to"] == "halt")
    assert notices and notices[0] < halted, report["timeline"]
    first = report["timeline"][notices[0]]
    assert first["client"] == "kestrel" and first["deadline"] and re.fullmatch(r"\d+\.\d\d %", first["ltv"])
    # the halt levers, per venue and account, in words
    halt_cex = {(e["venue"], e["lever"]): e for e in reversed(_levers(report, "halt_cex"))}  # the first run
    for venue in ("binance", "okx", "bybit"):
        assert halt_cex[(venue, "disable_client_keys")]["outcome"] == "done", halt_cex
        assert halt_cex[(venue, "cancel_all_orders")]["outcome"] in ("done", "already_done")
    assert any("cancelled" in d for d in halt_cex[("binance", "cancel_all_orders")]["did"])
    dydx = {e["lever"]: e for e in reversed(_levers(report, "halt_dydx"))}
    assert dydx["remove_authenticators"]["did"] == ["authenticator:1: done"]
    assert next(e["did"] for e in _levers(report, "halt_vault")) == ["vault: paused"]
    # the venues, read after the episode: every client key refused (Binance pinned, OKX and Bybit deleted)
    for account in ("kestrel-binance", "kestrel-okx", "kestrel-bybit"):
        keys = _venue(report, account)["client_keys"]
        assert keys and not any(k["usable"] for k in keys), keys
    assert [a["holder"] for a in _venue(report, "kestrel-dydx")["authenticators"]] == ["operator"]
    assert _venue(report, "kestrel-vault-ethereum")["paused"] is True
    assert all(not v["open_orders"] for v in report["end_state"]["venues"])


@pytest.mark.chain
def test_drill_goes_on_to_liquidate_and_ends_flat_with_every_key_refused(report: dict[str, Any]) -> None:
    rungs = [(e["from"], e["to"]) for e in report["timeline"] if e["kind"] == "rung"]
    assert ("halt", "liquidate") in rungs, rungs
    # after the halt the refused keys are facts, not blind spots: no blind step once OKX is back
    assert not [e for e in report["timeline"] if e["kind"] == "blind" and e["step"] != "okx down"], report["timeline"]
    assert report["flatten_s"] is not None
    venues = report["end_state"]["venues"]
    assert all(not v["positions"] for v in venues)
    assert not any(k["usable"] for v in venues for k in v.get("client_keys", []))
    liquidate = {(e["venue"], e["lever"]): e for e in _levers(report, "liquidate_cex")}
    for venue in ("binance", "okx", "bybit"):
        sold = liquidate[(venue, "sell_spot")]
        assert sold["outcome"] == "done" and all("limit 1470" in d for d in sold["did"]), sold  # 2 % under 1500
        assert liquidate[(venue, "sweep_to_master")]["outcome"] == "done"
        client = _venue(report, f"kestrel-{venue}")
        assert not any(q for side in client["balances"].values() for q in side.values() if q != "0"), client
        master = next(v for v in venues if v["venue"] == venue and v["role"] == "broker")
        assert master["balances"]["spot"]["USDT"] != "0", master
    broker = next(v for v in venues if v["venue"] == "dydx" and v["role"] == "broker")
    assert broker["balances"], broker


def test_bad_drill_file_is_refused_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = DRILL.read_text().replace("outage: [okx]", "outage: [kraken]")
    bad.write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), start=1) if "kraken" in t)
    out = run_cli("drill", "--scenario", str(bad), "--json", cwd=tmp_path, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout == ""
    assert "bad.yaml" in out.stderr and f"line {line}" in out.stderr and "kraken" in out.stderr, out.stderr
    events = tmp_path / "events.yaml"
    events.write_text(DRILL.read_text() + "events: [{at_s: 1, kind: outage, venue: okx}]\n")
    out = run_cli("drill", "--scenario", str(events), cwd=tmp_path, timeout=60)
    assert out.returncode == 2 and "drill.steps" in out.stderr, out.stderr
