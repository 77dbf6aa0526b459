"""Pure policy: schema, bundle compiler, engine, lint, diff, explain and the policy-test runner.

Only :mod:`primeguard.policy.loader` reads files (directories into ``{relative path: text}``
bundles, and the directory forms ``load``, ``lint_dir``, ``run_tests``); every other module takes data.

    from primeguard.policy import load, evaluate_withdrawal
    policy = load("policies")                        # PolicyLoadError names file:line
    ev = evaluate_withdrawal(policy, request, context)
    ev.decision.outcome, ev.decision.reasons, ev.decision.explanation, ev.decision.policy_hash
    policy.risk_parameters("standard")               # -> primeguard.risk.params.RiskParameters

See docs/policy.md for the language, the decision semantics and every reason code.
"""

from primeguard.policy.bundle import (
    PolicyLoadErrors,
    canonical_content,
    check_bundle,
    content_hash,
    load_bundle,
)
from primeguard.policy.diff import Change, diff, diff_text
from primeguard.policy.engine import (
    CapabilityResult,
    Check,
    Evaluation,
    deny_without_policy,
    evaluate_capabilities,
    evaluate_risk,
    evaluate_withdrawal,
)
from primeguard.policy.explain import REASON_DOCS, decision_json, explain_decision, explain_evaluation
from primeguard.policy.inputs import (
    ApprovalGiven,
    CapabilityInput,
    RiskSnapshot,
    WithdrawalContext,
    WithdrawalRequest,
)
from primeguard.policy.lint import LintIssue, lint_bundle, lint_files, lint_policy
from primeguard.policy.loader import lint_dir, load, read_policy_dir, run_tests
from primeguard.policy.policyset import PolicySet
from primeguard.policy.versions import (
    PolicyApprovalError,
    PolicyVersion,
    VersionState,
    VersionStore,
    approve,
    load_active,
    propose,
)

__all__ = [
    "REASON_DOCS",
    "ApprovalGiven",
    "CapabilityInput",
    "CapabilityResult",
    "Change",
    "Check",
    "Evaluation",
    "LintIssue",
    "PolicyApprovalError",
    "PolicyLoadErrors",
    "PolicySet",
    "PolicyVersion",
    "RiskSnapshot",
    "VersionState",
    "VersionStore",
    "WithdrawalContext",
    "WithdrawalRequest",
    "approve",
    "canonical_content",
    "check_bundle",
    "content_hash",
    "decision_json",
    "deny_without_policy",
    "diff",
    "diff_text",
    "evaluate_capabilities",
    "evaluate_risk",
    "evaluate_withdrawal",
    "explain_decision",
    "explain_evaluation",
    "lint_bundle",
    "lint_dir",
    "lint_files",
    "lint_policy",
    "load",
    "load_active",
    "load_bundle",
    "propose",
    "read_policy_dir",
    "run_tests",
]
