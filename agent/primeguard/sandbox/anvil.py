"""Start and stop anvil nodes on loopback free ports.

We call the real anvil binary (see :mod:`primeguard.sandbox.toolchain`) and own its process: a node
started here is stopped here, and ``stop`` kills exactly that process (its own process group).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from primeguard.domain.errors import SandboxError

# anvil's default mnemonic: deterministic accounts, documented as test-only everywhere.
SANDBOX_MNEMONIC = "test test test test test test test test test test test junk"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc(url: str, method: str, params: list[Any] | None = None, timeout: float = 10.0) -> Any:
    """One JSON-RPC call with the standard library (used before web3 is wired, and by tests)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    if not url.startswith(("http://", "https://")):
        raise SandboxError(f"not an HTTP JSON-RPC URL: {url[:40]}")
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback URL we built
        answer = json.loads(resp.read())
    if "error" in answer:
        raise SandboxError(f"{method} failed: {answer['error'].get('message', answer['error'])}")
    return answer["result"]


@dataclass
class AnvilNode:
    """A running anvil process."""

    port: int
    chain_id: int
    process: subprocess.Popen[bytes]
    fork_url: str | None = None
    log_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        return rpc(self.rpc_url, method, params)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop this node and only this node."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_anvil(*, port: int | None = None, **options: Any) -> AnvilNode:
    """Start anvil and wait until it answers ``eth_chainId`` (options as :func:`_start_anvil_once`).
    Without a ``port``, a free one is picked; when another process takes it between the pick and
    anvil's bind (parallel test workers do), anvil exits at once and a new port is tried (three
    attempts)."""
    if port is not None:
        return _start_anvil_once(port=port, **options)
    for attempt in range(3):
        try:
            return _start_anvil_once(port=free_port(), **options)
        except _PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class _PortTaken(SandboxError):
    """anvil exited while starting: its port was most likely taken by another process."""


def _start_anvil_once(
    *,
    chain_id: int | None = None,
    port: int,
    fork_url: str | None = None,
    block_time: float | None = None,
    accounts: int = 10,
    balance_eth: int = 10_000,
    log_dir: Path | None = None,
    code_size_limit: int | None = None,
    startup_timeout: float = 20.0,
    extra_args: tuple[str, ...] = (),
    hardfork: str | None = None,
    on_spawn: Callable[[int], None] | None = None,
) -> AnvilNode:
    """Start anvil and wait until it answers ``eth_chainId``. ``on_spawn`` is told the process id
    as soon as it exists. ``hardfork`` (e.g. ``"prague"`` for EIP-7702 delegations) overrides
    anvil's default for this node only. If anvil does not come up, the process is stopped before
    raising."""
    from primeguard.sandbox.toolchain import find_tool

    binary = find_tool("anvil")
    args = [
        str(binary), "--host", "127.0.0.1", "--port", str(port),
        "--accounts", str(accounts), "--balance", str(balance_eth), "--mnemonic", SANDBOX_MNEMONIC,
        "--silent", "--gas-limit", "300000000", "--disable-code-size-limit",
    ]
    if chain_id is None and not fork_url:
        chain_id = 31337
    if chain_id is not None:
        args += ["--chain-id", str(chain_id)]  # a fork keeps its upstream's id unless told otherwise
    if fork_url:
        args += ["--fork-url", fork_url, "--no-storage-caching"]
    if block_time:
        args += ["--block-time", str(block_time)]
    if code_size_limit:
        args += ["--code-size-limit", str(code_size_limit)]
    if hardfork:
        args += ["--hardfork", hardfork]
    args += list(extra_args)
    log_path = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"anvil-{port}.log"
        out = log_path.open("ab")
    else:
        out = subprocess.DEVNULL  # type: ignore[assignment]
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    node = AnvilNode(port=port, chain_id=chain_id or 0, process=proc, fork_url=fork_url, log_path=log_path)
    try:
        if on_spawn is not None:
            on_spawn(proc.pid)
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise _PortTaken(f"anvil exited with code {proc.returncode} while starting on port {port}")
            try:
                got = int(node.rpc("eth_chainId"), 16)
            except (OSError, urllib.error.URLError, SandboxError):
                time.sleep(0.05)
                continue
            if proc.poll() is not None:  # the answer came from another process holding the port
                raise _PortTaken(f"anvil exited with code {proc.returncode} while starting on port {port}")
            if chain_id is not None and got != chain_id:
                raise SandboxError(f"anvil answered chain id {got}, expected {chain_id}")
            node.chain_id = got
            return node
        raise SandboxError(f"anvil did not answer on port {port} within {startup_timeout:.0f} s")
    except BaseException:
        node.stop()
        raise
