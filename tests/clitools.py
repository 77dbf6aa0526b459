"""Driving the real ``primeguard`` CLI as a subprocess, with identities from tokens."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

_TOKEN = re.compile(r"token \(shown once\): (\S+)")


def run_cli(*args: str, cwd: Path, token: str | None = None, timeout: float = 180
            ) -> subprocess.CompletedProcess[str]:
    """``python -m primeguard.cli ARGS``; ``token`` goes in ``PRIMEGUARD_TOKEN`` (never inherited)."""
    env = {k: v for k, v in os.environ.items() if k != "PRIMEGUARD_TOKEN"}
    if token is not None:
        env["PRIMEGUARD_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "primeguard.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def token_in(out: subprocess.CompletedProcess[str]) -> str:
    """The token a ``users bootstrap/add/rotate`` run printed."""
    assert out.returncode == 0, out.stdout + out.stderr
    m = _TOKEN.search(out.stdout)
    assert m, out.stdout
    return m.group(1)


def make_users(config: Path, cwd: Path, users: dict[str, str], *, admin: str = "root") -> dict[str, str]:
    """Bootstrap an admin and add ``users`` (name -> role) through the CLI; returns name -> token."""
    tokens = {admin: token_in(run_cli("users", "bootstrap", admin, "--config", str(config), cwd=cwd))}
    for name, role in users.items():
        tokens[name] = token_in(run_cli("users", "add", name, "--role", role, "--config", str(config), cwd=cwd,
                                        token=tokens[admin]))
    return tokens
