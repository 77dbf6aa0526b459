"""``serve`` runs uvicorn over a store URL (the entry ``primeguard web`` uses); the page falls back to
the policy directory when the store has no approved version."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from primeguard.store import open_store, repos

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_runs_uvicorn_over_a_store_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'served.db'}"
    store = open_store(url, migrate=True)
    with store.session() as s:
        _, token = repos.create_user(s, "vera", "viewer")
    store.close()
    port = _free_port()
    code = (f"from pathlib import Path; from primeguard.web import serve; "
            f"serve({url!r}, port={port}, log_level='warning', policy_dir=Path({str(REPO / 'policies')!r}))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        assert httpx.get(f"{base}/api/overview").status_code == 401
        policy = httpx.get(f"{base}/api/policy", headers={"Authorization": f"Bearer {token}"}).json()
        assert policy["active_source"] == "directory" and policy["active"]["load_error"] is None
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert token not in out.decode()  # the token never reaches the log
