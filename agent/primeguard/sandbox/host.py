"""Detached host process for ``primeguard sandbox up``: runs a :class:`Sandbox` until SIGTERM.

It writes ``state.json`` (its pid, the anvil pids, endpoints, the config path) once everything is
up, and removes it after stopping. ``sandbox down`` signals exactly the pids recorded there.
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
    try:
        scenario = load_scenario(args.scenario)
        sandbox = Sandbox(scenario, workdir, policy_dir=args.policy_dir)
        config = sandbox.start(run_events=True)
    except PrimeguardError as exc:
        print(f"error: {exc}", file=sys.stderr)
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
