"""Detached host process for ``primeguard sandbox up``: runs a :class:`Sandbox` until SIGTERM.

It writes ``state.json`` (its pid, the anvil pids, endpoints, the config path) once everything is
up, and removes it after stopping. ``sandbox down`` signals exactly the pids recorded there.

While starting, every child process id is recorded in ``children.json`` the moment it exists, so
that ``sandbox up`` can stop what a host that died or hung mid-start left behind. Any failure while
starting (bad input, a revert, a node error) stops everything started so far, prints one
``error:`` line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from primeguard.domain.errors import PrimeguardError
from primeguard.sandbox.scenario import load_scenario
from primeguard.sandbox.world import Sandbox

STATE_FILE = "state.json"
CHILDREN_FILE = "children.json"


def record_child(workdir: Path, pid: int) -> None:
    """Add ``pid`` to ``workdir/children.json`` (atomically replaced)."""
    path = workdir / CHILDREN_FILE
    try:
        pids = [int(p) for p in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        pids = []
    tmp = workdir / (CHILDREN_FILE + ".tmp")
    tmp.write_text(json.dumps([*pids, pid]))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="primeguard-sandbox-host")
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--policy-dir", default=None)
    args = parser.parse_args(argv)
    workdir = Path(args.dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / CHILDREN_FILE).unlink(missing_ok=True)
    try:
        scenario = load_scenario(args.scenario)
        sandbox = Sandbox(scenario, workdir, policy_dir=args.policy_dir,
                          on_spawn=lambda pid: record_child(workdir, pid))
        config = sandbox.start(run_events=True)  # stops what it started if it fails
    except Exception as exc:
        if isinstance(exc, PrimeguardError):
            print(f"error: {exc}", file=sys.stderr)
        else:
            print(f"error: sandbox could not be built: {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
        (workdir / CHILDREN_FILE).unlink(missing_ok=True)  # Sandbox.start stopped them all
        return 2
    state = {
        "pid": os.getpid(),
        "anvil_pids": [d.node.pid for d in sandbox.chains.values()],
        "endpoints": sandbox.endpoints(),
        "config": str(config),
        "scenario": str(Path(args.scenario).resolve()),
    }
    tmp = workdir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(workdir / STATE_FILE)
    try:
        stop.wait()
    finally:
        sandbox.stop()
        (workdir / STATE_FILE).unlink(missing_ok=True)
        (workdir / CHILDREN_FILE).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
