"""The writes the web layer may perform, each through the module that owns it (playbook engine,
policy versions, withdrawal service), with four-eyes and role rules checked here *and* by the
store. Four eyes compare user ids (the same rule the CLI follows). Each function raises
:class:`WebError` with a stable code; nothing is written on refusal."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from primeguard.domain.errors import (
    ApprovalError,
    AuthorizationError,
    InputError,
    PolicyError,
    PolicyLoadError,
    SelfApprovalError,
)
from primeguard.domain.identity import canonical_name
from primeguard.store import repos
from primeguard.store.db import Store
from primeguard.store.errors import IllegalTransition, NotFound, StaleState
from primeguard.web.auth import Perm, Principal
from primeguard.web.errors import WebError, destinations_unavailable

if TYPE_CHECKING:
    from primeguard.custody.destinations import Destinations
    from primeguard.custody.withdrawals import WithdrawalService
    from primeguard.playbooks.engine import Playbook

log = logging.getLogger(__name__)


def _state_error(exc: Exception) -> WebError:
    if isinstance(exc, NotFound):
        return WebError("not_found", str(exc))
    if isinstance(exc, StaleState):
        return WebError("not_pending", f"{exc}; reload and decide again")
    if isinstance(exc, IllegalTransition):
        return WebError("illegal_transition", str(exc))
    if isinstance(exc, SelfApprovalError):
        return WebError("self_approval", str(exc))
    if isinstance(exc, ApprovalError):
        return WebError("approval_refused", str(exc))
    if isinstance(exc, AuthorizationError):
        return WebError("forbidden_role", str(exc))
    if isinstance(exc, InputError):
        return WebError("invalid_input", str(exc))
    return WebError("store_unavailable", "the store refused the change")


def _same_user(user_id: int | None, name: str, who: Principal) -> bool:
    """Four eyes: the same user id (rows written before ids were recorded: the same canonical name)."""
    if user_id is not None:
        return user_id == who.user_id
    try:
        return canonical_name(name) == canonical_name(who.name)
    except InputError:
        return True


# --- playbook actions ---------------------------------------------------------------------------------


def approve_action(playbook: Playbook, store: Store, who: Principal, action_id: str) -> dict[str, Any]:
    """Approve a proposed playbook action (compliance or admin). The daemon executes it."""
    who.require(Perm.APPROVE_ACTION)
    with store.session(readonly=True) as s:
        row = repos.get_action(s, action_id)
    if row is None:
        raise WebError("not_found", f"action {action_id} not found")
    if row.state != "proposed":
        raise WebError("not_pending", f"action {action_id} is {row.state}; only proposed actions can be approved")
    if row.mode in ("dry_run", "shadow"):
        raise WebError("illegal_transition", f"action {action_id} is a {row.mode.replace('_', ' ')}: it is "
                                             "recorded, never approved or executed")
    if row.proposed_by_id is not None and row.proposed_by_id == who.user_id:
        raise WebError("self_approval", f"{who.name} proposed action {action_id} and cannot approve it")
    try:
        approved = playbook.approve(action_id, approver=who.actor)
    except (NotFound, StaleState, IllegalTransition, ApprovalError, InputError, AuthorizationError) as exc:
        raise _state_error(exc) from exc
    log.info("action %s approved by %s", action_id, who.name)
    from primeguard.web.queries import action_json

    return action_json(approved)


def acknowledge_margin_call(store: Store, who: Principal, client_id: str, *, note: str = "",
                            now: datetime | None = None) -> dict[str, Any]:
    """Record that ``client_id`` acknowledged its margin call, entered by the caller (treasury,
    compliance or admin), audited as ``ladder.acknowledged``. The deadline stands: an
    acknowledgement never stops the clock."""
    who.require(Perm.RECORD_ACK)
    try:
        with store.session() as s:
            row = repos.acknowledge_margin_call(s, client_id, actor_id=who.user_id, note=note, now=now)
            out = {"client_id": row.client_id, "state": row.state, "deadline": _iso(row.deadline),
                   "acknowledged_at": _iso(row.ack_at), "acknowledged_by": row.ack_by, "note": row.ack_note}
    except (NotFound, InputError, ApprovalError) as exc:
        raise _state_error(exc) from exc
    log.info("margin call of %s acknowledged, recorded by %s", client_id, who.name)
    return out


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


# --- policy versions ----------------------------------------------------------------------------------


def approve_policy(store: Store, who: Principal, policy_hash: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Approve and activate a proposed policy version: a compliance user other than its proposer.

    The pure core (``policy.versions.approve``) re-validates and lints the version before it can
    decide anything; the store refuses self-approval again (``repos.approve_policy_version``).
    """
    from primeguard.app.policy_versions import DbVersionStore
    from primeguard.policy.versions import PolicyApprovalError, approve

    who.require(Perm.APPROVE_POLICY)
    with store.session(readonly=True) as s:
        row = repos.get_policy_version(s, policy_hash)
    if row is None:
        raise WebError("not_found", f"policy version {policy_hash} not found (give the full hash)")
    if row.state not in ("proposed", "approved"):
        raise WebError("not_pending", f"policy version {policy_hash[:12]} is {row.state}; only proposed versions "
                                      "can be approved")
    if _same_user(row.proposed_by_id, row.proposed_by, who):
        raise WebError("self_approval", f"{who.name} proposed policy version {policy_hash[:12]} and cannot approve "
                                        "it; a different compliance user must")
    try:
        version = approve(DbVersionStore(store), policy_hash, approver=who.name, role=who.role,
                          now=now or datetime.now(UTC), approver_id=who.user_id)
    except PolicyApprovalError as exc:
        raise WebError("self_approval" if isinstance(exc, SelfApprovalError) else "approval_refused", str(exc)) from exc
    except ApprovalError as exc:
        raise _state_error(exc) from exc
    except PolicyLoadError as exc:
        raise WebError("invalid_policy", f"the proposal does not load: {exc}") from exc
    except PolicyError as exc:
        text = str(exc)
        raise WebError("invalid_policy" if "lint" in text or "content" in text else "not_pending", text) from exc
    except (NotFound, StaleState, IllegalTransition) as exc:
        raise _state_error(exc) from exc
    log.info("policy version %s approved and activated by %s", policy_hash[:12], who.name)
    return version.meta()


# --- withdrawals --------------------------------------------------------------------------------------


def _service(service: WithdrawalService | None) -> WithdrawalService:
    if service is None:
        raise WebError("withdrawals_unavailable", "this server has no withdrawal service configured; "
                                                  "start it with a config that has vaults")
    return service


def request_withdrawal(service: WithdrawalService | None, who: Principal, *, account_id: str, asset: str,
                       amount: str, destination: str) -> dict[str, Any]:
    """A treasury user asks for a withdrawal; the policy decides at once (allow, deny, or wait
    for approvals). A denial is a result (state ``denied`` with the reason), not an error."""
    who.require(Perm.REQUEST_WITHDRAWAL)
    svc = _service(service)
    try:
        result = svc.request(account_id=account_id, asset=asset, amount=amount, destination=destination,
                             requested_by=who.actor)
    except InputError as exc:
        raise WebError("invalid_input", str(exc)) from exc
    except (NotFound, StaleState, IllegalTransition, ApprovalError, AuthorizationError) as exc:
        raise _state_error(exc) from exc
    log.info("withdrawal %s requested by %s: %s", result.withdrawal_id, who.name, result.state)
    return result.to_json()


def approve_withdrawal(service: WithdrawalService | None, store: Store, who: Principal,
                       withdrawal_id: str) -> dict[str, Any]:
    """Add the caller's approval (never the requester's own) and let the policy decide again."""
    who.require(Perm.APPROVE_WITHDRAWAL)
    svc = _service(service)
    with store.session(readonly=True) as s:
        row = repos.get_withdrawal(s, withdrawal_id)
        mine = row is not None and any(a.approver_id == who.user_id for a in repos.list_approvals(s, withdrawal_id))
    if row is None:
        raise WebError("not_found", f"withdrawal {withdrawal_id} not found")
    if _same_user(row.requested_by_id, row.requested_by, who):
        raise WebError("self_approval", f"{who.name} requested withdrawal {withdrawal_id} and cannot approve it; "
                                        "a different treasury, compliance or admin user must")
    if row.state != "requested":
        raise WebError("not_pending", f"withdrawal {withdrawal_id} is {row.state}; approvals are taken only while "
                                      "it is requested")
    if mine:
        raise WebError("approval_refused", f"{who.name} already approved withdrawal {withdrawal_id}",
                       status=409)
    try:
        result = svc.approve(withdrawal_id, approver=who.actor)
    except (NotFound, StaleState, IllegalTransition, InputError, ApprovalError, AuthorizationError) as exc:
        raise _state_error(exc) from exc
    log.info("withdrawal %s approved by %s: %s", withdrawal_id, who.name, result.state)
    return result.to_json()


# --- destinations -------------------------------------------------------------------------------------


def _destinations(service: Destinations | None) -> Destinations:
    if service is None:
        raise destinations_unavailable()
    return service


def propose_destination(service: Destinations | None, who: Principal, *, client: str, venue: str, chain: str,
                        assets: list[str], address: str, label: str, expires_at: datetime | None,
                        entry_id: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Screen a destination and propose a policy version adding it (compliance, admin). A second
    compliance user approves it (:func:`approve_destinations`). Refusals write nothing but the
    screening's own audit record: a bad field (422 ``invalid_input``), a sanctioned address (422
    ``sanctioned``), a screening source that cannot answer (503 ``screening_unavailable``)."""
    from primeguard.domain.errors import ScreeningError, ScreeningUnavailableError

    who.require(Perm.CHANGE_DESTINATIONS)
    svc = _destinations(service)
    now = now or datetime.now(UTC)
    try:
        version, screening = svc.propose(who.actor, client=client, venue=venue, chain=chain, assets=assets,
                                         address=address, label=label, entry_id=entry_id, now=now,
                                         expires_at=expires_at or now + timedelta(days=365))
    except ScreeningUnavailableError as exc:
        raise WebError("screening_unavailable", str(exc)) from exc
    except ScreeningError as exc:
        raise WebError("sanctioned", str(exc)) from exc
    except (InputError, AuthorizationError) as exc:
        raise _state_error(exc) from exc
    except PolicyError as exc:
        raise WebError("invalid_policy", f"the proposal does not load: {exc}") from exc
    log.info("destination %s proposed by %s as policy version %s", address, who.name, version.hash[:12])
    return {"version": version.meta(), "screening": screening.json(svc.screener.advisory)}


def approve_destinations(service: Destinations | None, store: Store, who: Principal, policy_hash: str, *,
                         now: datetime | None = None) -> dict[str, Any]:
    """Approve a proposed version (a compliance user other than its proposer: user ids compared,
    as :func:`approve_policy`), then propose its destinations to the vaults and follow them through
    their timelock. Returns the version and one step per (vault, asset, destination)."""
    from primeguard.domain.errors import PrimeguardError

    svc = _destinations(service)
    version = approve_policy(store, who, policy_hash, now=now)
    try:
        steps = [s.json() for s in svc.push(actor=who.name, now=now, dry_run=False, readd=True)]
    except PrimeguardError as exc:  # approved; the vaults follow with ``allowlist sync --apply``
        log.warning("policy version %s approved; vault allowlists not updated: %s", policy_hash[:12], exc)
        return {"version": version, "steps": [], "note": f"approved; the vaults could not be updated ({exc}): "
                                                          "run primeguard allowlist sync --apply"}
    return {"version": version, "steps": steps, "note": ""}
