"""Run playbook actions exactly once, in the mode policy gives them.

- An action's id is a hash of (kind, client, ladder episode, params): proposing the same action
  twice (every sweep, every replica) inserts it once.
- Modes (the policy's ``ladder_plan`` gives them): ``dry_run`` (recorded, never executed),
  ``needs_approval`` (a person approves first), ``automatic``, ``shadow`` (run as if automatic, but
  only recorded as done with what it would have done: the lever is never called).
- ``executing`` is committed before the lever runs; after a crash, actions found ``executing``
  are run again. Levers are idempotent (client order ids derived from the action id, "already
  paused" counts as done), so a resumed action never acts twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from primeguard.domain.identity import Actor, Perm
from primeguard.store import repos
from primeguard.store.db import Store
from primeguard.store.tables import ActionRow
from primeguard.venues.checkpoints import checkpoint, step_name

log = logging.getLogger(__name__)
Lever = Callable[[ActionRow], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True)
class ActionSpec:
    kind: str
    client_id: str
    episode: str  # e.g. "firm-a:halt:2026-11-23T07:00:00+00:00": one action per ladder episode
    mode: str = "dry_run"
    params: Mapping[str, Any] = field(default_factory=dict)
    # Stored with the params but not part of the id: values of the moment (the LTV, a plan step id)
    # that must not make a second action of the same episode.
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """One id per (kind, client, episode): proposing the same action again in the same episode
        (with a newer LTV in ``params``, say) finds the action already there. ``params`` record what
        the first proposal saw; they are not part of the identity."""
        body = json.dumps([self.kind, self.client_id, self.episode], sort_keys=True, default=str)
        return f"{self.kind}-{hashlib.sha256(body.encode()).hexdigest()[:24]}"


def _partial(exc: Exception) -> dict[str, Any] | None:
    """What a failed lever did before it failed, item by item, when its error carries the reports
    (``CexLeverFailed.reports``, ``DydxLeverFailed.results``): recorded with the failure."""
    reports = getattr(exc, "reports", None) or getattr(exc, "results", None)
    if not isinstance(reports, list):
        return None
    return {"reports": [r.to_json() for r in reports if hasattr(r, "to_json")]}


# What each lever kind does, in words (shadow results and the dashboard say it this way).
LEVER_WORDS: Mapping[str, str] = {
    "margin_call": "send the client the margin-call notice",
    "halt_vault": "pause the client's collateral vaults",
    "halt_cex": "unplug the client's exchange keys and cancel its orders",
    "liquidate_cex": "close the client's exchange positions, sell its spot collateral into the loan currency, "
                     "move it to the broker and unplug its keys",
    "sell_spot_cex": "sell the client's spot collateral into the loan currency",
    "sweep_to_master_cex": "move the client's freed collateral to the broker's master account",
    "halt_dydx": "cancel the client's dYdX orders and remove its authenticators",
    "liquidate_dydx": "close the client's dYdX positions",
    "revoke_approval": "revoke the token approval",
    "revoke_grant": "revoke the grant",
}


def would_do(action: ActionRow) -> str:
    """What running ``action`` would have done, in words (for shadow mode)."""
    what = LEVER_WORDS.get(action.kind, f"pull lever {action.kind}")
    return f"would {what} for {action.client_id}"


class Playbook:
    def __init__(self, store: Store, levers: Mapping[str, Lever]) -> None:
        self.store = store
        self.levers = dict(levers)

    def propose(self, specs: list[ActionSpec], *, now: datetime | None = None,
                proposed_by: Actor | None = None) -> list[str]:
        """Insert new actions; returns the ids that were new. ``proposed_by``: the user proposing them
        (None: the daemon); that user can never approve them."""
        now = now or datetime.now(UTC)
        new: list[str] = []
        with self.store.session() as s:
            for spec in specs:
                row = ActionRow(id=spec.id, client_id=spec.client_id, kind=spec.kind, mode=spec.mode,
                                params={**spec.details, **spec.params, "episode": spec.episode})
                if repos.insert_action_once(s, row, now=now,
                                            actor=proposed_by.name if proposed_by else "playbook",
                                            proposed_by_id=proposed_by.user_id if proposed_by else None):
                    new.append(spec.id)
        return new

    def approve(self, action_id: str, *, approver: Actor, now: datetime | None = None) -> ActionRow:
        """Approve a proposed action as ``approver`` (compliance or admin; never its proposer).

        Raises:
            AuthorizationError, SelfApprovalError, ApprovalError, NotFound, StaleState, IllegalTransition.
        """
        approver.require(Perm.APPROVE_ACTION)
        with self.store.session() as s:
            return repos.transition_action(s, action_id, "approved", expected="proposed", actor=approver.name,
                                           actor_id=approver.user_id, now=now)

    async def run_ready(self, *, now: datetime | None = None, actor: str = "daemon") -> list[ActionRow]:
        """Execute automatic proposals, approved actions, and resume ones left executing.

        Order: actions left executing first (a restart finishes what it started), then the oldest
        first; among actions proposed together, ``liquidate_*`` before the others, because a halt
        lever may freeze an account (a Bybit sub-member) that the close could then no longer trade,
        while each liquidate lever halts the account itself once it is flat.
        Shadow proposals are recorded as done with what they would have done (their lever is never
        called)."""
        now = now or datetime.now(UTC)
        with self.store.session() as s:
            ready = [a for a in repos.list_actions(s, state="executing", limit=500)]
            ready += [a for a in repos.list_actions(s, state="approved", limit=500)]
            proposed = repos.list_actions(s, state="proposed", limit=500)
            ready += [a for a in proposed if a.mode == "automatic"]
        ready.sort(key=lambda a: (a.state != "executing", a.created_at, not a.kind.startswith("liquidate_"), a.id))
        done: list[ActionRow] = []
        for action in (a for a in proposed if a.mode == "shadow"):
            with self.store.session() as s:
                done.append(repos.transition_action(s, action.id, "done", expected="proposed", actor=actor, now=now,
                                                    result={"shadow": True, "would": would_do(action)}))
        for action in ready:
            done.append(await self._run(action, now=now, actor=actor))
        return done

    async def _run(self, action: ActionRow, *, now: datetime, actor: str) -> ActionRow:
        lever = self.levers.get(action.kind)
        if action.state != "executing":
            with self.store.session() as s:
                action = repos.transition_action(s, action.id, "executing", expected=action.state, actor=actor,
                                                 now=now)
        if lever is None:
            with self.store.session() as s:
                return repos.transition_action(s, action.id, "failed", expected="executing", actor=actor, now=now,
                                               error=f"no lever for action kind {action.kind!r}")
        checkpoint(step_name(action, "start"))
        try:
            result = await lever(action)
        except Exception as exc:  # a lever failing must not stop the others; its reason is recorded
            log.warning("action %s (%s) failed: %s", action.id, action.kind, type(exc).__name__)
            findings = getattr(exc, "findings", None)  # e.g. a credential that lacks a lever's power
            with self.store.session() as s:
                if callable(findings):
                    repos.upsert_findings(s, findings(), now=now)
                return repos.transition_action(s, action.id, "failed", expected="executing", actor=actor, now=now,
                                               error=f"{type(exc).__name__}: {exc}"[:500], result=_partial(exc))
        checkpoint(step_name(action, "recording"))  # done on the venues, not yet in the store
        with self.store.session() as s:
            return repos.transition_action(s, action.id, "done", expected="executing", actor=actor, now=now,
                                           result=dict(result))
