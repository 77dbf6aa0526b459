"""Every ``--json`` output has a JSON Schema in docs/schemas, and real outputs validate against it.

The outputs that need a chain or a store are validated where they are produced (tests/chain/test_demo.py,
tests/chain/test_cli_sandbox.py, tests/security/test_amounts.py, tests/security/test_audit_tamper.py,
tests/custody/test_destinations.py); here: the policy commands on the example policies, the finding
form, the alert body, and that every schema name in the code has its file.
"""

from __future__ import annotations

import json
import re
import shutil
from decimal import Decimal
from pathlib import Path

import jsonschema_rs
import pytest
import yaml

from primeguard.alerts.model import Action, AlertItem, Send
from primeguard.alerts.render import payload
from primeguard.domain.findings import FINDING_SCHEMA, Finding, FindingCode, Severity
from primeguard.policy import commands
from tests.json_schemas import SCHEMA_DIR, check, schema_file
from tests.unit.policy.helpers import ALPHA_COLD, NOW, POLICIES
from tests.unit.policy.version_stores import FileVersionStore

AGENT = Path(__file__).resolve().parents[1] / "agent" / "primeguard"


def test_every_schema_name_in_the_code_has_a_schema_file() -> None:
    names = {m for p in AGENT.rglob("*.py") for m in re.findall(r'"primeguard\.([a-z_]+)/1"', p.read_text())}
    assert {"sweep", "capabilities", "demo", "withdrawals", "allowlist", "finding"} <= names
    missing = sorted(n for n in names if not schema_file(n).is_file())
    assert not missing, f"no docs/schemas/<name>.json for: {missing}"


def test_schema_files_are_valid_and_named() -> None:
    files = sorted(SCHEMA_DIR.glob("*.json"))
    assert files
    for path in files:
        doc = json.loads(path.read_text())
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema", path.name
        assert doc["$id"] == f"urn:primeguard.{path.stem}/1", path.name
        jsonschema_rs.meta.validate(doc)


def test_finding_form_validates_and_refuses_the_old_keys() -> None:
    f = Finding(FindingCode.LTV_HALT, Severity.HIGH, "alpha", "LTV 0.9", venue="binance", client_id="alpha",
                rule_id="r1", details={"ltv": Decimal("0.90"), "inf": Decimal("Infinity"), "at": NOW, "xs": (1, 2)})
    body = f.to_json()
    assert FINDING_SCHEMA == "primeguard.finding/1"
    assert body["client"] == "alpha" and body["rule"] == "r1" and body["details"]["ltv"] == "0.9"
    assert body["details"]["inf"] == "inf" and body["details"]["at"] == NOW.isoformat()
    json.dumps(body)
    check("finding", body)
    with pytest.raises(AssertionError):
        check("finding", {**{k: v for k, v in body.items() if k != "client"}, "client_id": "alpha"})


def test_policy_command_outputs_validate(tmp_path: Path) -> None:
    check("policy_lint", commands.lint_command(POLICIES, now=NOW).data)
    check("policy_test", commands.run_tests_command(POLICIES).data)
    new = tmp_path / "new"
    shutil.copytree(POLICIES, new)
    (new / "withdrawals.yaml").write_text((new / "withdrawals.yaml").read_text().replace(
        "per_tx_usd: 250000", "per_tx_usd: 500000"))
    diff = commands.diff_command(POLICIES, new).data
    assert diff["changes"]
    check("policy_diff", diff)
    inp = tmp_path / "w.yaml"
    inp.write_text(yaml.safe_dump({"withdrawal": {
        "request": {"id": "w9", "client": "alpha", "venue": "binance", "chain": "ethereum", "asset": "USDC",
                    "amount": "250000", "destination": ALPHA_COLD, "requested_by": "bob",
                    "requested_at": NOW.isoformat()},
        "context": {"usd_price": "1", "price_age_s": 3, "ltv": "0.5", "post_ltv": "0.52", "ladder_state": "normal",
                    "venue_whitelisted": True, "post_loan_to_collateral": "0.5", "post_stress_shortfall": "0"}}}))
    explained = commands.explain_command(POLICIES, inp)
    assert explained.exit_code == 0
    check("policy_explain", explained.data)
    bad = tmp_path / "bad.yaml"
    bad.write_text("withdrawal: {request: {client: alpha}}\n")
    check("policy_explain", commands.explain_command(POLICIES, bad).data)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "withdrawals.yaml").write_text("rules: [\n")
    check("policy_lint", commands.lint_command(broken, now=NOW).data)
    store = FileVersionStore(tmp_path / "store")
    proposed = commands.propose_command(POLICIES, store, proposer="carol", role="compliance", now=NOW)
    check("policy_version", proposed.data)
    refused = commands.approve_command(store, proposed.data["hash"][:12], approver="carol", role="compliance", now=NOW)
    check("policy_version", refused.data)
    check("policy_versions", commands.versions_command(store).data)


def test_alert_payload_validates() -> None:
    f = Finding(FindingCode.KEY_CAN_WITHDRAW, Severity.HIGH, "acct-1", "the key can withdraw", venue="binance",
                client_id="firm-a")
    check("alert", payload(Send("ch", Action.OPENED, AlertItem.from_finding(f)), NOW))
