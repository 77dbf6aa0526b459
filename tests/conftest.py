"""Shared fixtures: sandbox worlds on real anvil nodes, started and stopped by the tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from primeguard.sandbox.scenario import Scenario

REPO = Path(__file__).resolve().parents[1]

# The longest test files, longest first (summed test durations of one `make test` run on a loaded
# 2-core machine). `make test` runs pytest-xdist with `--dist loadfile --no-loadscope-reorder`, so
# files are handed to workers in collection order: these start first and no long file starts last
# (xdist's default order, by number of tests, left the few-test CLI and daemon files to the end).
# Refresh from `--durations` when the slowest list drifts; a name here that no longer exists fails
# tests/security/test_suite_hygiene.py.
SLOWEST_FIRST = (
    "tests/custody/test_destinations.py",
    "tests/security/test_identity_cli.py",
    "tests/security/test_amounts.py",
    "tests/security/test_anchors.py",
    "tests/chain/test_wheel.py",
    "tests/store/test_tiers_review.py",
    "tests/security/test_scenario_ranges.py",
    "tests/chain/test_cli_policy.py",
    "tests/web/test_destinations.py",
    "tests/security/test_audit_tamper.py",
    "tests/chain/test_drill.py",
    "tests/chain/test_cli_sandbox.py",
    "tests/daemon/test_drill_kill9.py",
    "tests/security/test_cli_escape.py",
    "tests/custody/test_cex_withdrawals.py",
    "tests/custody/test_withdrawals.py",
    "tests/web/test_api.py",
    "tests/chain/test_draw_check.py",
    "tests/venues/dydx/test_collect.py",
    "tests/venues/dydx/test_analysis.py",
    "tests/daemon/test_oracle_fastpath.py",
    "tests/security/test_web_bounds.py",
    "tests/security/test_config_bounds.py",
    "tests/daemon/test_client_told.py",
    "tests/chain/test_evm_collateral.py",
    "tests/web/test_pages.py",
    "tests/security/test_approval_digest.py",
    "tests/unit/policy/test_properties.py",
    "tests/security/test_fail_closed.py",
    "tests/chain/test_capability_scan.py",
    "tests/store/test_withdrawals.py",
    "tests/chain/test_defi_inventory.py",
    "tests/chain/test_batch_modes.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest files first (:data:`SLOWEST_FIRST`), the rest in collection order; tests keep their
    order inside a file. Deterministic, so every xdist worker collects the same list."""
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


def scenario_from(data: dict) -> Scenario:
    return Scenario.model_validate(data)


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator:
    """Build sandboxes from scenario dicts; every one is stopped at teardown."""
    from primeguard.sandbox.world import Sandbox

    started: list[Sandbox] = []

    def make(data: dict, name: str = "world") -> Sandbox:
        sb = Sandbox(scenario_from(data), tmp_path / name)
        started.append(sb)
        sb.start()
        return sb

    yield make
    for sb in started:
        sb.stop()
