"""Named points between the steps of a lever, where a crash test can freeze the process to kill it.

A lever step is one thing done on one venue account (cancel the orders, close the positions,
disable the keys, pause a vault...). The playbook engine and the venue levers call :func:`checkpoint`
after each step and around each action; in production this does nothing (one environment lookup).

Test hook: with ``PRIMEGUARD_PAUSE_DIR`` set to a folder, every checkpoint name reached is appended
to ``reached`` there, and the first time the process reaches a checkpoint whose name is not yet in
``paused``, the name is appended to ``paused`` and the process freezes (the whole event loop
blocks) until it is killed. A test reads ``paused``, sends SIGKILL, restarts the daemon with the
same folder, and so kills it once at every step in turn (``tests/daemon/test_drill_kill9.py``).
``PRIMEGUARD_PAUSE_MATCH`` (a regular expression) limits the pauses to the names it finds.
It lives with the venues so that every lever (venue or playbook) may call it.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

PAUSE_DIR_ENV = "PRIMEGUARD_PAUSE_DIR"
PAUSE_MATCH_ENV = "PRIMEGUARD_PAUSE_MATCH"


def step_name(action: Any, *parts: object) -> str:
    """A stable checkpoint name for a step of ``action``: the ladder rung of its episode, its kind,
    then ``parts`` (e.g. account id and lever). Stable across restarts (no action id, no time)."""
    params = getattr(action, "params", None) or {}
    episode = str(params.get("episode", ""))
    rung = episode.split(":")[1] if episode.count(":") >= 2 else "-"
    return "/".join([rung, str(getattr(action, "kind", "?")), *map(str, parts)])


def checkpoint(name: str) -> None:
    """Mark that the process reached ``name`` (see the module docstring). Returns at once unless
    ``PRIMEGUARD_PAUSE_DIR`` is set; then it may never return (the test kills the process)."""
    folder = os.environ.get(PAUSE_DIR_ENV)
    if not folder:
        return
    base = Path(folder)
    _append(base / "reached", name)
    match = os.environ.get(PAUSE_MATCH_ENV)
    if match and re.search(match, name) is None:
        return
    paused = base / "paused"
    done = set(paused.read_text().splitlines()) if paused.exists() else set()
    if name in done:
        return
    _append(paused, name)
    while True:  # frozen here until SIGKILL
        time.sleep(3600)


def _append(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
