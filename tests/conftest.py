"""Shared fixtures: sandbox worlds on real anvil nodes, started and stopped by the tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from primeguard.sandbox.scenario import Scenario

REPO = Path(__file__).resolve().parents[1]


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
