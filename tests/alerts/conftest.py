"""Alert test fixtures: a SQLite store, finding factories, a real local webhook receiver and a real
local SMTP server, all on 127.0.0.1 with ports the OS picks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.store import Store, open_store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CANARY_TOKEN = "CANARY-hook-token-7f3a9c"
CANARY_PASSWORD = "CANARY-smtp-pass-51e0d2"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def finding(
    code: FindingCode = FindingCode.KEY_CAN_WITHDRAW, severity: Severity = Severity.HIGH, subject: str = "acct-1",
    *, venue: str = "binance", client_id: str | None = "firm-a", message: str = "the monitoring key can withdraw",
) -> Finding:
    return Finding(code=code, severity=severity, subject=subject, message=message, venue=venue, client_id=client_id)


def stale(subject: str = "okx-1") -> Finding:
    """A blind spot: a venue's data older than its budget (severity low on purpose)."""
    return Finding(code=FindingCode.DATA_STALE, severity=Severity.INFO, subject=subject,
                   message="balances are 400 s old (budget 120 s)", venue="okx", client_id="firm-b")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'alerts.db'}", migrate=True)
    yield s
    s.close()


# --- webhook receiver ---------------------------------------------------------------------------


@dataclass
class Receiver:
    """Records every POST; ``fail_with`` makes it answer that status (``fail_times`` times, then 200)."""

    base: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    fail_with: int | None = None
    fail_times: int = 10**9
    hits: int = 0
    hang: asyncio.Event | None = None  # set: requests wait for it (a receiver that never answers)

    def url(self, path: str = f"/hooks/{CANARY_TOKEN}") -> str:
        return self.base + path

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.hang is not None:
            await self.hang.wait()
        if self.fail_with is not None and self.fail_times > 0:
            self.fail_times -= 1
            return web.Response(status=self.fail_with, text="receiver says no")
        self.paths.append(request.path)
        self.received.append(await request.json())
        return web.Response(text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)  # its access log would print the canary path
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    rec.base = f"http://{host}:{port}"
    yield rec
    if rec.hang is not None:
        rec.hang.set()
    await runner.cleanup()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL nobody listens on (bound then closed, so connecting is refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/{CANARY_TOKEN}"


# --- SMTP server --------------------------------------------------------------------------------


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 OK"


class _Controller(Controller):
    """aiosmtpd Controller on port 0: learn the OS-chosen port before the readiness probe."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class SmtpServer:
    host: str
    port: int
    inbox: _Inbox
    logins: list[str]


def _authenticator(logins: list[str]) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"alerts" and \
            auth_data.password == CANARY_PASSWORD.encode()
        if ok:
            logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # not handled: the server answers 535 itself

    return check


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    inbox, logins = _Inbox(), []
    ctl = _Controller(inbox, hostname="127.0.0.1", port=0, auth_required=True, auth_require_tls=False,
                      authenticator=_authenticator(logins), ready_timeout=10)
    ctl.start()
    try:
        yield SmtpServer("127.0.0.1", ctl.port, inbox, logins)
    finally:
        ctl.stop()
