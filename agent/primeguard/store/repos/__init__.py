"""Repositories: the operations the rest of primeguard performs on the store, one module per aggregate.

The contract every function here keeps:

- **Session first.** Every function takes an open :class:`sqlmodel.Session` (from
  :meth:`~primeguard.store.db.Store.session`) as its first argument and works inside the caller's
  transaction.
- **Nothing commits on its own.** The caller's ``with store.session()`` block commits or rolls back.
- **Audit in the same transaction.** A state change and its audit entry (appended by the same
  function) commit together or not at all.
- **Time is passed in.** Every function that needs the time takes an optional aware ``now``
  (default: the current UTC time); tests pass it explicitly instead of sleeping.

Money: ``Decimal`` (or numeric strings), never ``float``.

Errors: :class:`~primeguard.store.errors.NotFound`, :class:`~primeguard.store.errors.IllegalTransition`,
:class:`~primeguard.store.errors.StaleState` (all ``StoreError``);
:class:`~primeguard.domain.errors.ApprovalError` for four-eyes violations
(:class:`~primeguard.domain.errors.SelfApprovalError` when someone approves their own request);
:class:`~primeguard.domain.errors.InputError` for malformed arguments.

Callers use the package: ``from primeguard.store import repos; repos.create_withdrawal(s, ...)``.
Modules: :mod:`.snapshots`, :mod:`.metrics`, :mod:`.findings`, :mod:`.alerts`, :mod:`.actions`,
:mod:`.decisions`, :mod:`.policy_versions`, :mod:`.withdrawals` (with approvals), :mod:`.users`,
:mod:`.leases`, :mod:`.scan_cursors`, :mod:`.ladder`; shared helpers in :mod:`._helpers`.
"""

from primeguard.store.repos.actions import (
    ACTION_TRANSITIONS,
    get_action,
    insert_action_once,
    list_actions,
    transition_action,
)
from primeguard.store.repos.alerts import (
    ALERT_TRANSITIONS,
    alerts_for,
    alerts_in_state,
    ensure_alert,
    get_alert,
    insert_alerts,
    transition_alert,
    transition_loaded_alert,
)
from primeguard.store.repos.decisions import (
    get_decision,
    list_decisions,
    record_decision,
)
from primeguard.store.repos.findings import (
    close_findings,
    get_finding,
    open_findings,
    open_findings_of,
    upsert_finding,
    upsert_findings,
)
from primeguard.store.repos.ladder import (
    LadderSave,
    acknowledge_margin_call,
    get_ladder_state,
    ladder_states,
    save_ladder_state,
    save_ladder_states,
)
from primeguard.store.repos.leases import (
    acquire_lease,
    check_lease,
    get_lease,
    release_lease,
    renew_lease,
)
from primeguard.store.repos.metrics import (
    insert_metric_values,
    latest_metric,
    metric_history,
    metric_values,
    record_metric,
    record_price_closes,
)
from primeguard.store.repos.policy_versions import (
    activate_policy_version,
    approve_policy_version,
    get_active_policy,
    get_active_policy_hash,
    get_policy_version,
    list_policy_versions,
    policy_content_hash,
    put_policy_version,
    reject_policy_version,
)
from primeguard.store.repos.scan_cursors import (
    get_cursor,
    set_cursor,
)
from primeguard.store.repos.snapshots import (
    insert_snapshot_values,
    latest_snapshot,
    save_snapshot,
    save_snapshots,
    snapshot_values,
    sweep_snapshots,
)
from primeguard.store.repos.users import (
    MIN_TOKEN_LENGTH,
    TOKEN_PREFIX,
    authenticate,
    create_user,
    get_user,
    hash_token,
    list_users,
    revoke_user,
    rotate_token,
)
from primeguard.store.repos.withdrawals import (
    ACTIVE_WITHDRAWAL_STATES,
    WITHDRAWAL_TRANSITIONS,
    add_approval,
    create_withdrawal,
    get_withdrawal,
    list_approvals,
    list_withdrawals,
    transition_withdrawal,
    withdrawn_total,
)

__all__ = [
    "ACTION_TRANSITIONS",
    "ACTIVE_WITHDRAWAL_STATES",
    "ALERT_TRANSITIONS",
    "MIN_TOKEN_LENGTH",
    "TOKEN_PREFIX",
    "WITHDRAWAL_TRANSITIONS",
    "LadderSave",
    "acknowledge_margin_call",
    "acquire_lease",
    "activate_policy_version",
    "add_approval",
    "alerts_for",
    "alerts_in_state",
    "approve_policy_version",
    "authenticate",
    "check_lease",
    "close_findings",
    "create_user",
    "create_withdrawal",
    "ensure_alert",
    "get_action",
    "get_active_policy",
    "get_active_policy_hash",
    "get_alert",
    "get_cursor",
    "get_decision",
    "get_finding",
    "get_ladder_state",
    "get_lease",
    "get_policy_version",
    "get_user",
    "get_withdrawal",
    "hash_token",
    "insert_action_once",
    "insert_alerts",
    "insert_metric_values",
    "insert_snapshot_values",
    "ladder_states",
    "latest_metric",
    "latest_snapshot",
    "list_actions",
    "list_approvals",
    "list_decisions",
    "list_policy_versions",
    "list_users",
    "list_withdrawals",
    "metric_history",
    "metric_values",
    "open_findings",
    "open_findings_of",
    "policy_content_hash",
    "put_policy_version",
    "record_decision",
    "record_metric",
    "record_price_closes",
    "reject_policy_version",
    "release_lease",
    "renew_lease",
    "revoke_user",
    "rotate_token",
    "save_ladder_state",
    "save_ladder_states",
    "save_snapshot",
    "save_snapshots",
    "set_cursor",
    "snapshot_values",
    "sweep_snapshots",
    "transition_action",
    "transition_alert",
    "transition_loaded_alert",
    "transition_withdrawal",
    "upsert_finding",
    "upsert_findings",
    "withdrawn_total",
]
