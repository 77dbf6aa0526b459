"""Withdrawals: exact amounts, allowed transitions only, approvals unique and four-eyes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from primeguard.domain.errors import ApprovalError, InputError, SelfApprovalError, StoreError
from primeguard.store import IllegalTransition, StaleState, Store, audit, repos
from tests.store.util import T0, at, deny, user

TX = "0x" + "ab" * 32
DIGEST = "d1" * 32


def _request(store: Store, wid: str = "w1", amount: object = "1250.000000000000000001", **kw: object) -> str:
    alice = user(store, "alice")
    with store.session() as s:
        return repos.create_withdrawal(
            s, withdrawal_id=wid, client_id="c1", account_id="acct-eoa-1", venue="evm", chain="ethereum",
            asset="USDC", amount=amount, destination="0x" + "11" * 20, requested_by_id=alice, approval_digest=DIGEST,
            now=T0, **kw,
        ).id


def _move(store: Store, wid: str, to: str, **kw: object):
    with store.session() as s:
        return repos.transition_withdrawal(s, wid, to, actor="treasury-bot", now=at(10), **kw)


def test_happy_path_and_exact_amount(store: Store) -> None:
    _request(store, amount=Decimal("1250.000000000000000001"))
    with store.session(readonly=True) as s:
        w = repos.get_withdrawal(s, "w1")
        assert w is not None and w.state == "requested" and Decimal(w.amount) == Decimal("1250.000000000000000001")
    _move(store, "w1", "approved")
    _move(store, "w1", "signed", signed_tx_hash=TX, nonce=7)
    _move(store, "w1", "broadcast", tx_hash=TX)
    w = _move(store, "w1", "confirmed")
    assert (w.state, w.tx_hash, w.nonce, w.signed_tx_hash, w.version) == ("confirmed", TX, 7, TX, 5)
    with store.session(readonly=True) as s:
        kinds = [e.kind for e in audit.entries(s, subject="w1")]
    assert kinds == ["withdrawal.requested", "withdrawal.approved", "withdrawal.signed", "withdrawal.broadcast",
                     "withdrawal.confirmed"]
    assert audit.verify(store).ok


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], "signed"),  # requested → signed skips approval
        ([], "broadcast"),
        ([], "confirmed"),
        (["approved"], "requested"),
        (["denied"], "approved"),  # a denial is final
        (["failed"], "approved"),
        (["approved", "broadcast", "confirmed"], "failed"),
    ],
)
def test_illegal_transitions_are_rejected(store: Store, path: list[str], illegal: str) -> None:
    _request(store)
    extra = {"broadcast": {"tx_hash": TX}, "denied": {"error": "no"}, "failed": {"error": "x"}}
    for step in path:
        _move(store, "w1", step, **extra.get(step, {}))
    with pytest.raises(IllegalTransition, match="is not allowed"):
        _move(store, "w1", illegal, **extra.get(illegal, {}), signed_tx_hash=TX)
    with store.session(readonly=True) as s:
        w = repos.get_withdrawal(s, "w1")
        assert w is not None and w.state == (path[-1] if path else "requested")
    assert isinstance(IllegalTransition("x"), StoreError)


def test_transition_requirements(store: Store) -> None:
    _request(store)
    with pytest.raises(StaleState):
        _move(store, "w1", "approved", expected="approved")
    with pytest.raises(InputError, match="decision_id or error"):
        _move(store, "w1", "denied")
    with store.session() as s:
        d = repos.record_decision(s, deny(), kind="withdrawal", subject="w1", input={"amount": "1"}, now=T0)
    w = _move(store, "w1", "denied", decision_id=d.id)
    assert w.decision_ids == [d.id]

    _request(store, "w2")
    _move(store, "w2", "approved")
    with pytest.raises(InputError, match="signed_tx_hash"):
        _move(store, "w2", "signed")
    with pytest.raises(InputError, match="32-byte"):
        _move(store, "w2", "signed", signed_tx_hash="0x02f8b1" + "00" * 100)  # a raw tx is refused
    with pytest.raises(InputError, match="tx_hash or external_id"):
        _move(store, "w2", "broadcast")
    assert _move(store, "w2", "broadcast", external_id="binance-wd-991").state == "broadcast"
    with pytest.raises(InputError, match="error"):
        _move(store, "w2", "failed")


def test_amounts_are_validated(store: Store) -> None:
    for bad in (1.5, "NaN", "Infinity", "abc"):
        with pytest.raises(StoreError):
            _request(store, "wx", amount=bad)
    for bad in ("0", "-1"):
        with pytest.raises(InputError, match="positive"):
            _request(store, "wx", amount=bad)
    huge = Decimal("123456789012345678901234567890.123456789012345678901234567890")
    _request(store, "w-huge", amount=huge)
    with store.session(readonly=True) as s:
        w = repos.get_withdrawal(s, "w-huge")
        assert w is not None and Decimal(w.amount) == huge


def test_nonce_is_used_once_per_account_and_chain(store: Store) -> None:
    for wid in ("w1", "w2"):
        _request(store, wid)
        _move(store, wid, "approved")
    _move(store, "w1", "signed", signed_tx_hash=TX, nonce=3)
    with pytest.raises(StoreError, match=r"(?i)unique"):
        _move(store, "w2", "signed", signed_tx_hash="0x" + "cd" * 32, nonce=3)


def test_approvals(store: Store) -> None:
    _request(store)
    bob, alice, vic = user(store, "bob"), user(store, "alice"), user(store, "vic", "viewer")
    carol, dave = user(store, "carol", "compliance"), user(store, "dave", "admin")
    with store.session() as s:
        repos.add_approval(s, "w1", approver_id=bob, digest=DIGEST, now=at(1))
    with pytest.raises(ApprovalError, match="already approved"), store.session() as s:
        repos.add_approval(s, "w1", approver_id=bob, digest=DIGEST, now=at(2))
    with pytest.raises(SelfApprovalError, match="cannot approve"), store.session() as s:
        repos.add_approval(s, "w1", approver_id=alice, digest=DIGEST, now=at(2))  # the requester
    with pytest.raises(ApprovalError, match="viewer"), store.session() as s:
        repos.add_approval(s, "w1", approver_id=vic, digest=DIGEST, now=at(2))
    with pytest.raises(ApprovalError, match="does not match"), store.session() as s:
        repos.add_approval(s, "w1", approver_id=carol, digest="ee" * 32, now=at(2))
    with pytest.raises(ApprovalError, match="does not exist"), store.session() as s:
        repos.add_approval(s, "w1", approver_id=9999, digest=DIGEST, now=at(2))
    with store.session() as s:
        repos.add_approval(s, "w1", approver_id=carol, digest=DIGEST, now=at(3))
        approvals = repos.list_approvals(s, "w1")
        payloads = [e.payload for e in audit.entries(s, subject="w1", kind="withdrawal.approval_added")]
    assert [(a.approver, a.approver_id, a.role, a.digest, a.approved_at) for a in approvals] == [
        ("bob", bob, "treasury", DIGEST, at(1)), ("carol", carol, "compliance", DIGEST, at(3))]
    assert [(p["approver_id"], p["role"], p["digest"]) for p in payloads] == [
        (bob, "treasury", DIGEST), (carol, "compliance", DIGEST)]
    _move(store, "w1", "approved")
    with pytest.raises(ApprovalError, match="only while requested"), store.session() as s:
        repos.add_approval(s, "w1", approver_id=dave, digest=DIGEST)


def test_velocity_total(store: Store) -> None:
    _request(store, "w1", amount="100.10")
    _request(store, "w2", amount="0.000000000000000001")
    _request(store, "w3", amount="50")
    _move(store, "w3", "denied", error="limit")
    with store.session(readonly=True) as s:
        total = repos.withdrawn_total(s, client_id="c1", asset="USDC", since=T0)
        assert total == Decimal("100.100000000000000001")
        assert repos.withdrawn_total(s, client_id="c1", asset="USDC", since=at(1)) == 0
        assert [w.id for w in repos.list_withdrawals(s, state="denied")] == ["w3"]
