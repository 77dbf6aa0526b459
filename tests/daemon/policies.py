"""The shipped policies copied for a daemon test, with text edits (e.g. a shorter margin-call
deadline or a ladder plan in automatic mode). The shipped policy cases are dropped: they assume the
shipped thresholds."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import REPO


def policy_copy(target: Path, edits: Mapping[str, Mapping[str, str]] | None = None) -> Path:
    """Copy ``policies/`` to ``target`` and apply ``edits`` ({file: {old text: new text}}); each old
    text must be present (a test never silently runs on the unedited policy)."""
    shutil.copytree(REPO / "policies", target)
    for test_file in target.glob("*_test.yaml"):
        test_file.unlink()
    for name, pairs in (edits or {}).items():
        path = target / name
        text = path.read_text(encoding="utf-8")
        for old, new in pairs.items():
            assert old in text, f"{old!r} not in {name}"
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    return target


NEW_TIER_LADDER = ("ladder: {warn: 0.60, margin_call: 0.70, halt: 0.80, liquidate: 0.85, hysteresis: 0.02,\n"
                   "             cooldown_s: 600, margin_call_deadline_s: 14400}")


def new_tier_ladder(*, cooldown_s: int = 600, deadline_s: int = 14400) -> dict[str, dict[str, str]]:
    """An edit of the ``new`` tier's ladder clocks in risk.yaml (the tier of a client the policy does not list)."""
    return {"risk.yaml": {NEW_TIER_LADDER: NEW_TIER_LADDER.replace("cooldown_s: 600", f"cooldown_s: {cooldown_s}")
                          .replace("margin_call_deadline_s: 14400", f"margin_call_deadline_s: {deadline_s}")}}
