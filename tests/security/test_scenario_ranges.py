"""Scenario values the chain cannot hold are refused by `sandbox up` with file:line:field, and a
failed `sandbox up` leaves no anvil or simulator process behind (found by what they hold open
under the test's directory, never by a global process-name scan)."""

from __future__ import annotations

import contextlib
import copy
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from primeguard.domain.errors import ConfigError
from primeguard.sandbox.scenario import load_scenario
from tests.conftest import write_yaml
from tests.security.procs import processes_using

BASE: dict[str, Any] = {
    "name": "ranges",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": "firm-a", "wallets": [{"native": "1", "tokens": {"USDC": "5"}}]}],
}
WALLET = ("clients", 0, "wallets", 0)

Mutation = Callable[[dict[str, Any]], None]


def _set(path: tuple[Any, ...], value: Any) -> Mutation:
    def apply(d: dict[str, Any]) -> None:
        node: Any = d
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return apply


# (mutation, dotted field in the error, text in the error, the line's text in the file)
BAD: dict[str, tuple[Mutation, str, str]] = {
    "answer_1e400": (_set(("feeds", 0, "answer"), "1e400"), "feeds.0.answer", "int256"),
    "answer_int256_plus_one": (_set(("feeds", 0, "answer"), str(2**255 // 10**8 + 1)), "feeds.0.answer", "int256"),
    "answer_negative_huge": (_set(("feeds", 0, "answer"), "-1e80"), "feeds.0.answer", "int256"),
    "native_1e90": (_set((*WALLET, "native"), "1e90"), "clients.0.wallets.0.native", "uint256"),
    "token_1e90": (_set((*WALLET, "tokens", "USDC"), "1e90"), "clients.0.wallets.0.tokens.USDC", "uint256"),
    "native_negative": (_set((*WALLET, "native"), "-1"), "clients.0.wallets.0.native", "greater than or equal to 0"),
    "native_too_precise": (_set((*WALLET, "native"), "0.0000000000000000001"), "clients.0.wallets.0.native",
                           "decimal places"),
    "approval_1e90": (_set((*WALLET, "approvals"), [{"token": "USDC", "amount": "1e90",
                                                    "spender": "0x000000000000000000000000000000000000dEaD"}]),
                      "clients.0.wallets.0.approvals.0.amount", "uint256"),
    "vault_limit_1e90": (_set(("clients", 0, "vault"), {"limits": {"USDC": "1e90"}}),
                         "clients.0.vault.limits.USDC", "uint256"),
    "feed_decimals_78": (_set(("feeds", 0, "decimals"), 78), "feeds.0.decimals", "less than or equal"),
    "feed_age_inf": (_set(("feeds", 0, "age_s"), float("inf")), "feeds.0.age_s", ""),
    "block_time_inf": (_set(("chains",), [{"id": "ethereum", "chain_id": 1, "block_time_s": float("inf")}]),
                       "chains.0.block_time_s", ""),
    "event_at_inf": (_set(("events",), [{"at_s": float("inf"), "kind": "price", "asset": "ETH", "answer": "1"}]),
                     "events.0.at_s", ""),
    "event_answer_1e400": (_set(("events",), [{"at_s": 1, "kind": "price", "asset": "ETH", "answer": "1e400"}]),
                           "events.0.answer", "int256"),
}


def line_of_path(text: str, dotted: str) -> int:
    """1-based line of the key (or item) at ``dotted`` (``clients.0.wallets.0.native``) in ``text``."""
    node = yaml.compose(text)
    line = node.start_mark.line + 1
    for part in dotted.split("."):
        if isinstance(node, yaml.MappingNode):
            key, node = next((k, v) for k, v in node.value if k.value == part)
            line = key.start_mark.line + 1
        else:
            node = node.value[int(part)]
            line = node.start_mark.line + 1
    return line


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_out_of_range_value_is_refused_at_its_line(tmp_path: Path, case: str) -> None:
    mutate, field, text = BAD[case]
    data = copy.deepcopy(BASE)
    mutate(data)
    path = write_yaml(tmp_path / "scenario.yaml", data)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    msg = str(info.value)
    line = line_of_path(path.read_text(), field)
    assert msg.startswith(f"{path}:line {line}: {field}:"), msg
    assert text in msg


def test_mints_adding_up_past_uint256_are_refused(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["clients"][0]["wallets"] = [{"tokens": {"USDC": "1e71"}}, {"tokens": {"USDC": "1e71"}}]
    path = write_yaml(tmp_path / "scenario.yaml", data)
    with pytest.raises(ConfigError, match=r"clients\.0\.wallets\.1\.tokens\.USDC: .*total supply"):
        load_scenario(path)


def _up(scenario: Path, workdir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "primeguard.cli", "sandbox", "up", "--scenario", str(scenario),
                           "--dir", str(workdir)], cwd=cwd, capture_output=True, text=True, timeout=240)


def _down(workdir: Path, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "primeguard.cli", "sandbox", "down", "--dir", str(workdir)], cwd=cwd,
                   capture_output=True, text=True, timeout=60)


def _none_left(directory: Path, deadline_s: float = 30) -> dict[int, str]:
    """Poll until no process holds anything under ``directory`` (or the deadline); return what is left."""
    deadline = time.monotonic() + deadline_s
    left = processes_using(directory)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = processes_using(directory)
    return left


def _kill_all(pids: dict[int, str]) -> None:
    import os
    import signal

    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.chain
@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", ["answer_1e400", "native_1e90", "token_1e90", "native_negative"])
def test_sandbox_up_refuses_and_leaves_nothing_running(tmp_path: Path, case: str) -> None:
    mutate, field, text = BAD[case]
    data = copy.deepcopy(BASE)
    mutate(data)
    scenario = write_yaml(tmp_path / "scenario.yaml", data)
    workdir = tmp_path / "sb"
    try:
        up = _up(scenario, workdir, cwd=tmp_path)
        assert up.returncode != 0
        err = " ".join(up.stderr.split())  # the console wraps long lines
        line = line_of_path(scenario.read_text(), field)
        assert f"{scenario}:line {line}: {field}:" in err and text in err, up.stderr
        assert "Traceback" not in up.stderr
        left = _none_left(tmp_path)
        assert not left, f"processes left running: {left}"
    finally:
        _down(workdir, cwd=tmp_path)
        _kill_all(processes_using(tmp_path))


@pytest.mark.chain
@pytest.mark.timeout(300)
def test_failure_while_building_stops_the_anvil_it_started(tmp_path: Path) -> None:
    """A scenario that validates but fails on the chain (a Safe guard that is not a contract: the
    Safe refuses it) is reported in one line, and the anvil started for it is stopped."""
    data = copy.deepcopy(BASE)
    data["clients"][0]["wallets"].append(
        {"kind": "safe", "safe": {"guard": "0x000000000000000000000000000000000000dEaD"}})
    scenario = write_yaml(tmp_path / "scenario.yaml", data)
    load_scenario(scenario)  # valid input: the failure happens on the chain
    workdir = tmp_path / "sb"
    try:
        up = _up(scenario, workdir, cwd=tmp_path)
        assert up.returncode != 0
        assert "sandbox failed to start" in up.stderr and "Traceback" not in up.stderr, up.stderr
        assert (workdir / "logs").is_dir()  # an anvil was started for it...
        left = _none_left(tmp_path)
        assert not left, f"processes left running: {left}"  # ...and stopped
        assert not (workdir / "state.json").exists()
    finally:
        _down(workdir, cwd=tmp_path)
        _kill_all(processes_using(tmp_path))
