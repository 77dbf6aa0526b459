"""A small book written through the repositories: one row of every kind that records an audit
entry, with the seq of each entry, for the tamper and anchor tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from primeguard.domain.decision import Decision, Outcome, ReasonCode
from primeguard.store import Store, audit, repos
from primeguard.store.tables import ActionRow
from tests.store.util import at

DEST = "0x4b280EdCc946EAA52913262F098391Af6aA31751"


@dataclass
class Book:
    seq: dict[str, int] = field(default_factory=dict)  # what → seq of its audit entry
    ids: dict[str, str] = field(default_factory=dict)  # what → row id


def _last(s) -> int:
    return audit.head(s)[0]


def write_book(store: Store) -> Book:
    b = Book()
    with store.session() as s:
        repos.create_user(s, "carol", "compliance", now=at(0))
        repos.create_user(s, "dave", "compliance", now=at(0))
        tom = repos.create_user(s, "tom", "treasury", now=at(0))[0].id
        b.seq["user"], b.ids["user"] = _last(s), "tom"
        carol, dave = repos.get_user(s, "carol").id, repos.get_user(s, "dave").id
        row, _ = repos.put_policy_version(s, "rules: []\n", proposed_by="carol", proposed_by_id=carol,
                                         now=at(1))
        b.seq["policy"], b.ids["policy"] = _last(s), row.hash
        repos.approve_policy_version(s, row.hash, approver_id=dave, now=at(2))
        b.seq["policy_approved"] = _last(s)
        repos.activate_policy_version(s, row.hash, actor="dave", now=at(3))
        b.seq["policy_activated"] = _last(s)
    with store.session() as s:
        w = repos.create_withdrawal(s, client_id="alpha", account_id="alpha-vault", venue="evm", chain="ethereum",
                                    asset="USDC", amount="150000", destination=DEST, requested_by_id=tom,
                                    approval_digest="d" * 64, withdrawal_id="w1", now=at(10))
        b.seq["withdrawal"], b.ids["withdrawal"] = _last(s), w.id
        d = repos.record_decision(s, Decision(Outcome.NEEDS_APPROVAL, (ReasonCode.APPROVAL_REQUIRED,), ("ap.big",),
                                              "needs a second person", "p" * 64, approvals_required=1),
                                  kind="withdrawal", subject=w.id, input={"amount": "150000"}, now=at(11))
        b.seq["decision"], b.ids["decision"] = d.audit_seq, d.id
        a = repos.add_approval(s, w.id, approver_id=carol, digest="d" * 64, now=at(12))
        b.seq["approval"], b.ids["approval"] = _last(s), str(a.id)
        repos.transition_withdrawal(s, w.id, "approved", actor="carol", now=at(13))
        b.seq["withdrawal_approved"] = _last(s)
    with store.session() as s:
        action = ActionRow(id="act-1", client_id="beta", kind="reduce_only", mode="needs_approval",
                           params={"ltv": "0.9"}, created_at=at(20), updated_at=at(20))
        repos.insert_action_once(s, action, now=at(20))
        b.seq["action"], b.ids["action"] = _last(s), "act-1"
        repos.transition_action(s, "act-1", "approved", expected="proposed", actor="carol", actor_id=carol,
                                now=at(21))
        b.seq["action_approved"] = _last(s)
    with store.session() as s:
        audit.append(s, actor="ops", kind="note", subject="tail", payload={"n": 1}, now=at(30))
        b.seq["tail"] = _last(s)
    return b
