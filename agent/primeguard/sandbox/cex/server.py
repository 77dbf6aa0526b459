"""Run the Binance, OKX and Bybit simulators on loopback, one aiohttp server per venue.

The servers run in one background thread with its own event loop, so both synchronous and
asynchronous ccxt clients (in any thread or loop) can talk to them::

    with CexSimulators(scenario) as sims:
        urls = sims.start()                       # {"binance": "http://127.0.0.1:PORT", ...}
        accounts = sims.config_accounts(tmp / "secrets")
        sims.set_faults("okx", FaultConfig(down=True))
        sims.state("binance").accounts            # direct state access for tests
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from aiohttp import web

from primeguard.config.schema import CexAccountConfig, CredentialConfig, SecretRef
from primeguard.domain.errors import SandboxError
from primeguard.domain.model import Holder
from primeguard.sandbox.cex import binance, bybit, okx
from primeguard.sandbox.cex.http import VenueApp
from primeguard.sandbox.cex.state import VENUES, SubAccountRef, VenueState, build_states
from primeguard.sandbox.faults import FaultConfig
from primeguard.sandbox.scenario import Scenario

_RULES: dict[str, ModuleType] = {"binance": binance, "okx": okx, "bybit": bybit}


class CexSimulators:
    """The three CEX simulators for one scenario. ``start()`` is idempotent; ``stop()`` too."""

    def __init__(self, scenario: Scenario, *, host: str = "127.0.0.1") -> None:
        self.scenario = scenario
        self.host = host
        try:
            self._states, self._refs = build_states(scenario)
        except ValueError as exc:
            raise SandboxError(f"CEX scenario: {exc}") from exc
        self._urls: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        self._lock = threading.Lock()

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> dict[str, str]:
        """Start one server per venue on a free port; returns venue → base URL."""
        with self._lock:
            if self._thread is not None:
                return dict(self._urls)
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            failure: list[BaseException] = []

            def run() -> None:
                asyncio.set_event_loop(loop)
                try:
                    loop.run_until_complete(self._serve())
                except BaseException as exc:  # reported to the starting thread
                    failure.append(exc)
                    ready.set()
                    return
                ready.set()
                loop.run_forever()
                loop.run_until_complete(self._cleanup())
                loop.close()

            thread = threading.Thread(target=run, name="cex-simulators", daemon=True)
            thread.start()
            if not ready.wait(30) or failure:
                loop.call_soon_threadsafe(loop.stop)
                raise SandboxError(f"CEX simulators failed to start: {failure[0] if failure else 'timeout'}")
            self._loop, self._thread = loop, thread
            return dict(self._urls)

    async def _serve(self) -> None:
        for venue in VENUES:
            runner = web.AppRunner(VenueApp(self._states[venue], _RULES[venue]).app(), access_log=None,
                                   shutdown_timeout=0.5)
            await runner.setup()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, 0))
            site = web.SockSite(runner, sock)
            await site.start()
            self._runners.append(runner)
            self._urls[venue] = f"http://{self.host}:{sock.getsockname()[1]}"

    async def _cleanup(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    def stop(self) -> None:
        with self._lock:
            if self._thread is None or self._loop is None:
                return
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = None
            self._loop = None
            self._urls.clear()

    def __enter__(self) -> CexSimulators:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- runtime control --------------------------------------------------------------------------

    @property
    def urls(self) -> dict[str, str]:
        return dict(self._urls)

    def state(self, venue: str) -> VenueState:
        """The live state of ``venue`` (hold ``state.lock`` while changing it)."""
        try:
            return self._states[venue]
        except KeyError:
            raise KeyError(f"unknown CEX venue {venue!r}; known: {', '.join(VENUES)}") from None

    def set_faults(self, venue: str, faults: FaultConfig) -> None:
        """Change ``venue``'s fault injection at runtime (KeyError for a non-CEX venue)."""
        import random

        st = self.state(venue)
        with st.lock:
            st.faults = faults
            st.fault_rng = random.Random(faults.seed)
            st.fault_counter = 0

    def settle_withdrawal(self, venue: str, withdrawal_id: str, outcome: str, **kw: str) -> dict[str, Any]:
        """Move one withdrawal on ``venue`` to ``outcome`` ("confirmed", "failed" or a raw venue
        status): see :func:`primeguard.sandbox.cex.withdrawals.settle`. KeyError when unknown."""
        from primeguard.sandbox.cex.withdrawals import settle

        return settle(self.state(venue), withdrawal_id, outcome, **kw)

    def sub_accounts(self) -> list[SubAccountRef]:
        return list(self._refs)

    def request_count(self, venue: str | None = None) -> int:
        venues = [venue] if venue else list(VENUES)
        return sum(self._states[v].requests for v in venues)

    # --- config -----------------------------------------------------------------------------------

    def config_accounts(self, secrets_dir: Path) -> list[CexAccountConfig]:
        """Write each key's secrets under ``secrets_dir`` (0600) and return the accounts' config."""
        if not self._urls:
            raise SandboxError("start the CEX simulators before asking for their config")
        secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        out: list[CexAccountConfig] = []
        for ref in self._refs:
            st = self._states[ref.venue]
            creds: list[CredentialConfig] = []
            monitor = operator = None
            for api_key in ref.keys:
                k = st.keys[api_key]
                refs: dict[str, Any] = {
                    "api_key": SecretRef(file=_write_secret(secrets_dir, f"{ref.config_id}.{k.id}.api_key", k.api_key)),
                    "secret": SecretRef(file=_write_secret(secrets_dir, f"{ref.config_id}.{k.id}.secret", k.secret)),
                }
                if k.passphrase is not None:
                    refs["passphrase"] = SecretRef(file=_write_secret(
                        secrets_dir, f"{ref.config_id}.{k.id}.passphrase", k.passphrase))
                creds.append(CredentialConfig(id=k.id, holder=Holder(k.holder), **refs))
                if k.holder == "monitor" and monitor is None:
                    monitor = k.id
                if k.holder == "operator" and operator is None:
                    operator = k.id
            assert monitor is not None  # build_states adds one when the scenario lists none
            out.append(CexAccountConfig(id=ref.config_id, client=ref.client, venue=ref.venue,  # type: ignore[arg-type]
                                        base_url=self._urls[ref.venue], sub_account=ref.name, monitor=monitor,
                                        operator=operator, credentials=tuple(creds)))
        return out


def _write_secret(directory: Path, name: str, value: str) -> str:
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
    os.chmod(path, 0o600)
    return str(path)
