"""Start and stop the detached sandbox host (``primeguard sandbox up|down``).

``up`` validates the scenario before starting anything. If the host then fails, dies or does not
come up in time, ``up`` stops the host and every child it recorded in ``children.json`` before
raising: a failed ``up`` leaves no process behind. ``down`` stops the pids of ``state.json`` (and
of ``children.json`` when a start was interrupted)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from primeguard.domain.errors import SandboxError
from primeguard.sandbox.host import CHILDREN_FILE, STATE_FILE
from primeguard.sandbox.scenario import load_scenario


def sandbox_up(
    scenario: Path, workdir: Path, *, policy_dir: Path | None = None, timeout: float = 120
) -> dict[str, Any]:
    """Validate the scenario, start the host, wait for its state file and return it."""
    load_scenario(scenario)  # bad input: fail before anything starts
    state_path = workdir / STATE_FILE
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if _alive(state["pid"]):
            raise SandboxError(f"a sandbox is already running from {workdir} (pid {state['pid']}); "
                               "run `primeguard sandbox down` first")
        state_path.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "host.log").open("ab")
    cmd = [sys.executable, "-m", "primeguard.sandbox.host", "--scenario", str(scenario), "--dir", str(workdir)]
    if policy_dir is not None:
        cmd += ["--policy-dir", str(policy_dir)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state_path.exists():
            return dict(json.loads(state_path.read_text()))
        if proc.poll() is not None:
            _stop_children(workdir)  # the host stops its own; this covers a host that crashed
            lines = (workdir / "host.log").read_text(errors="replace").strip().splitlines()
            errors = [ln.removeprefix("error: ") for ln in lines if ln.startswith("error: ")]
            raise SandboxError("sandbox failed to start: " + (errors[-1] if errors else " | ".join(lines[-5:])))
        time.sleep(0.1)
    _stop_host(proc.pid, grace=15)
    _stop_children(workdir)
    raise SandboxError(f"sandbox did not come up within {timeout:.0f} s (see {workdir / 'host.log'})")


def _stop_host(pid: int, grace: float) -> None:
    """SIGTERM the host's process group, SIGKILL it after ``grace`` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _stop_children(workdir: Path) -> list[int]:
    """Kill the recorded children (own process groups) still alive and still what we started."""
    path = workdir / CHILDREN_FILE
    try:
        pids = [int(p) for p in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return []
    stopped = []
    for pid in pids:
        if _alive(pid) and _is_ours(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
                stopped.append(pid)
            except ProcessLookupError:
                pass
    path.unlink(missing_ok=True)
    return stopped


def _is_ours(pid: int) -> bool:
    """Guard against a recycled pid: on Linux the process must still be an anvil; elsewhere trust it."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not Path("/proc/self").exists():
        return True
    try:
        return b"anvil" in cmdline.read_bytes()
    except OSError:
        return False


def sandbox_down(workdir: Path, timeout: float = 15) -> list[int]:
    """Stop the host recorded in ``workdir`` and any anvil it left behind. Returns stopped pids."""
    state_path = workdir / STATE_FILE
    if not state_path.exists():
        return _stop_children(workdir)  # an interrupted start may have left children
    state = json.loads(state_path.read_text())
    stopped: list[int] = []
    host = int(state["pid"])
    if _alive(host):
        os.kill(host, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(host) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(host):
            os.kill(host, signal.SIGKILL)
        stopped.append(host)
    for pid in state.get("anvil_pids", []):
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
            stopped.append(pid)
    state_path.unlink(missing_ok=True)
    return stopped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists"; reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True
