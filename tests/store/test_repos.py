"""Repositories: snapshots, metrics, findings, alerts, decisions, policy versions, scan cursors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from primeguard.domain.decision import Decision, Outcome, ReasonCode
from primeguard.domain.errors import ApprovalError, InputError, StoreError
from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.store import IllegalTransition, StaleState, Store, audit, repos
from tests.store.util import T0, at, user

BIG = Decimal("123456789012345678901234567890.123456789012345678901234567890")


def test_snapshots_are_exact_and_unique(store: Store) -> None:
    payload = {"balances": {"BTC": Decimal("1.00000001"), "USDT": Decimal("0.000000000000000001")},
               "positions": [{"symbol": "BTC-PERP", "size": Decimal("-2.5")}]}
    with store.session() as s:
        repos.save_snapshots(s, [
            {"sweep_id": "sw1", "account_id": "a1", "venue": "binance", "ok": True, "observed_at": T0,
             "payload": payload},
            {"sweep_id": "sw1", "account_id": "a2", "venue": "okx", "ok": False, "observed_at": T0, "payload": {},
             "error": "venue_unreachable"},
        ])
        repos.save_snapshot(s, sweep_id="sw2", account_id="a1", venue="binance", ok=True, observed_at=at(60),
                            payload={"balances": {"BTC": "2"}})
    with store.session(readonly=True) as s:
        first = repos.sweep_snapshots(s, "sw1")
        assert [(r.account_id, r.ok, r.error) for r in first] == [
            ("a1", True, None), ("a2", False, "venue_unreachable")]
        assert first[0].payload["balances"] == {"BTC": "1.00000001", "USDT": "0.000000000000000001"}
        assert first[0].payload["positions"][0]["size"] == "-2.5"
        assert first[0].observed_at == T0
        latest = repos.latest_snapshot(s, "a1")
        assert latest is not None and latest.sweep_id == "sw2"
    with pytest.raises(StoreError), store.session() as s:  # one snapshot per account per sweep
        repos.save_snapshot(s, sweep_id="sw1", account_id="a1", venue="binance", ok=True, observed_at=T0,
                            payload={})
    with pytest.raises(StoreError, match="float"), store.session() as s:
        repos.save_snapshot(s, sweep_id="sw3", account_id="a1", venue="x", ok=True, observed_at=T0,
                            payload={"BTC": 0.1})


def test_metrics_keep_full_precision(store: Store) -> None:
    ltv = Decimal(2) / Decimal(3)  # 80 significant digits under the money context
    with store.session() as s:
        repos.record_metric(s, client_id="c1", at=T0, equity=BIG, loan=Decimal("1000000.00"), ltv=ltv,
                            ladder_state="normal", sweep_id="sw1", extra={"net_delta": Decimal("-0.5")})
        repos.record_metric(s, client_id="c1", at=at(60), equity="10", loan=0, ltv=None, ladder_state="warning")
        repos.record_metric(s, client_id="c2", at=at(30), equity="1", loan="1", ltv="1", ladder_state="halt")
    with store.session(readonly=True) as s:
        hist = repos.metric_history(s, "c1")
        assert [m.at for m in hist] == [T0, at(60)]
        assert hist[0].equity == BIG and hist[0].ltv == ltv and hist[0].loan == Decimal("1000000.00")
        assert hist[0].extra == {"net_delta": "-0.5"}
        assert hist[1].ltv is None and hist[1].loan == 0
        assert repos.latest_metric(s, "c1").ladder_state == "warning"
        assert [m.at for m in repos.metric_history(s, "c1", since=at(1))] == [at(60)]
    for bad in (1.25, Decimal("NaN"), "abc"):
        with pytest.raises(StoreError), store.session() as s:
            repos.record_metric(s, client_id="c1", at=T0, equity=bad, loan=0, ltv=None, ladder_state="x")
    with pytest.raises(StoreError, match="naive"), store.session() as s:
        repos.record_metric(s, client_id="c1", at=T0.replace(tzinfo=None), equity=1, loan=0, ltv=None,
                            ladder_state="x")


def _finding(subject: str = "acct-1", sev: Severity = Severity.HIGH) -> Finding:
    return Finding(FindingCode.KEY_CAN_WITHDRAW, sev, subject, "monitoring key can withdraw", venue="binance",
                   client_id="c1", details={"permission": "withdraw", "limit": Decimal("1000")})


def test_findings_open_update_close_reopen(store: Store) -> None:
    f1, f2 = _finding("acct-1"), _finding("acct-2")
    with store.session() as s:
        assert repos.upsert_findings(s, [f1, f2], now=T0) == [f1.key, f2.key]
    with store.session() as s:
        row, opened = repos.upsert_finding(s, _finding("acct-1", Severity.CRITICAL), now=at(60))
        assert not opened and row.occurrences == 2 and row.first_seen == T0 and row.last_seen == at(60)
        assert row.severity == Severity.CRITICAL and row.details == {"permission": "withdraw", "limit": "1000"}
        assert repos.close_findings(s, now=at(120), except_keys=[f1.key]) == [f2.key]
        assert [r.key for r in repos.open_findings(s, client_id="c1")] == [f1.key]
    with store.session() as s:
        row, opened = repos.upsert_finding(s, f2, now=at(180))
        assert opened and row.first_seen == at(180) and row.closed_at is None and row.occurrences == 1
        assert repos.close_findings(s, now=at(200), keys=[f1.key, "unknown"]) == [f1.key]
        assert repos.close_findings(s, now=at(200), except_keys=[], subjects=["other"]) == []
        closed = repos.get_finding(s, f1.key)
        assert closed is not None and closed.state == "closed" and closed.closed_at == at(200)
    with pytest.raises(InputError), store.session() as s:
        repos.close_findings(s, now=T0)


def test_alert_state_machine(store: Store) -> None:
    with store.session() as s:
        alert, created = repos.ensure_alert(s, finding_key="k1", channel="slack", level="high", now=T0)
        assert created and alert.state == "pending" and alert.attempts == 0
        again, created = repos.ensure_alert(s, finding_key="k1", channel="slack", level="high", now=at(1))
        assert not created and again.id == alert.id
        failed = repos.transition_alert(s, alert.id, "failed", now=at(2), error="HTTP 500")
        assert (failed.attempts, failed.last_error) == (1, "HTTP 500")
        sent = repos.transition_alert(s, alert.id, "sent", expected="failed", now=at(3), cooldown_until=at(903))
        assert (sent.attempts, sent.sent_at, sent.cooldown_until, sent.last_error) == (2, at(3), at(903), None)
        assert [a.id for a in repos.alerts_in_state(s, "sent")] == [alert.id]
    with pytest.raises(StaleState), store.session() as s:
        repos.transition_alert(s, alert.id, "resolved", expected="pending")
    with pytest.raises(IllegalTransition), store.session() as s:
        repos.transition_alert(s, alert.id, "failed")
    with store.session() as s:
        assert repos.transition_alert(s, alert.id, "pending", level="critical").level == "critical"
        assert repos.transition_alert(s, alert.id, "resolved").state == "resolved"


def test_decision_record_masking_and_listing(store: Store) -> None:
    dec = Decision(Outcome.NEEDS_APPROVAL, (ReasonCode.APPROVAL_REQUIRED,), ("approvals.large",),
                   "2 approvals needed above $1,000,000", "f" * 64, shadow=("velocity.v2",), approvals_required=2)
    with store.session() as s:
        row = repos.record_decision(
            s, dec, kind="withdrawal", subject="w9", decision_id="d-1", now=T0, mask_paths=["client.ssn"],
            input={"amount": Decimal("1500000.00"), "client": {"id": "c1", "ssn": "123"}, "at": T0},
        )
    assert row.audit_seq == 1
    with store.session(readonly=True) as s:
        got = repos.get_decision(s, "d-1")
        entry = audit.entries(s)[0]
    assert got is not None
    assert (got.outcome, got.reasons, got.rule_ids, got.shadow, got.approvals_required) == (
        "needs_approval", ["approval_required"], ["approvals.large"], ["velocity.v2"], 2)
    assert got.input == {"amount": "1500000.00", "client": {"id": "c1", "ssn": "***"},
                         "at": "2026-01-01T12:00:00.000000Z"}
    assert got.masked_fields == ["$.client.ssn"] and got.decided_at == T0
    assert entry.kind == "decision.recorded" and entry.payload["decision_id"] == "d-1"
    assert entry.payload["digest"] == audit.decision_digest(got)
    with store.session(readonly=True) as s:
        assert [d.id for d in repos.list_decisions(s, subject="w9", kind="withdrawal")] == ["d-1"]


def test_policy_versions(store: Store) -> None:
    pat, quinn = user(store, "pat", "compliance"), user(store, "quinn", "compliance")
    with store.session() as s:
        v1, created = repos.put_policy_version(s, "rules: [a]\n", proposed_by="pat", proposed_by_id=pat, now=T0)
        assert created and v1.state == "proposed" and v1.hash == repos.policy_content_hash("rules: [a]\n")
        assert repos.put_policy_version(s, "rules: [a]\n", proposed_by="pat", now=at(1)) == (v1, False)
        repos.put_policy_version(s, "rules: [b]\n", proposed_by="pat", policy_hash="h2", now=at(2))
        assert repos.get_active_policy(s) is None
    with pytest.raises(IllegalTransition, match="approve it"), store.session() as s:
        repos.activate_policy_version(s, v1.hash, actor="ops")
    with pytest.raises(ApprovalError, match="cannot approve"), store.session() as s:
        repos.approve_policy_version(s, v1.hash, approver_id=pat)
    with store.session() as s:
        repos.approve_policy_version(s, v1.hash, approver_id=quinn, now=at(3))
        assert repos.activate_policy_version(s, v1.hash, actor="ops", now=at(4)).state == "active"
        repos.approve_policy_version(s, "h2", approver_id=quinn, now=at(5))
        active = repos.activate_policy_version(s, "h2", actor="ops", now=at(6))
        assert active.activated_at == at(6)
        assert repos.get_policy_version(s, v1.hash).state == "retired"
        assert repos.get_active_policy(s).hash == "h2"
        # Rolling back to an earlier approved version is an activation too.
        assert repos.activate_policy_version(s, v1.hash, actor="ops", now=at(7)).state == "active"
        assert repos.get_policy_version(s, "h2").state == "retired"
        v3, _ = repos.put_policy_version(s, "rules: [c]\n", proposed_by="pat", now=at(8))
        assert repos.reject_policy_version(s, v3.hash, actor="quinn", reason="too loose").state == "rejected"
        assert len(repos.list_policy_versions(s)) == 3
    with pytest.raises(StoreError), store.session() as s:  # the database itself allows one active version
        from sqlalchemy import text
        s.execute(text("UPDATE policy_versions SET state = 'active'"))
    kinds = []
    with store.session(readonly=True) as s:
        kinds = [e.kind for e in audit.entries(s)]
    assert kinds.count("policy.activated") == 3 and "policy.rejected" in kinds
    assert audit.verify(store).ok


def test_scan_cursors(store: Store) -> None:
    with store.session() as s:
        assert repos.get_cursor(s, "ethereum", "approvals") is None
        repos.set_cursor(s, "ethereum", "approvals", 100, "0xaa", now=T0)
        c = repos.set_cursor(s, "ethereum", "approvals", 110, "0xbb", expected_block=100, now=at(1))
        assert (c.last_block, c.block_hash, c.updated_at) == (110, "0xbb", at(1))
        repos.set_cursor(s, "ethereum", "transfers", 2**40, "0xcc", now=at(2))
    with pytest.raises(StaleState), store.session() as s:
        repos.set_cursor(s, "ethereum", "approvals", 120, "0xdd", expected_block=100)
    with store.session(readonly=True) as s:
        assert repos.get_cursor(s, "ethereum", "approvals").last_block == 110
        assert repos.get_cursor(s, "ethereum", "transfers").last_block == 2**40
