"""Channel senders: the only code here that talks to the outside world.

Each sender is built from its config with secrets already resolved, and registers those secrets
with a :class:`Redactor`. ``deliver`` either returns the number of attempts it made or raises
:class:`DeliveryError` whose message is already redacted; it retries within its own bounded budget
(``1 + retries`` attempts of at most ``timeout_s``, backoff capped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.message import EmailMessage
from email.policy import default as _default_policy
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

import aiohttp

from primeguard.alerts import render
from primeguard.alerts.model import Action, Send
from primeguard.alerts.redact import Redactor, redact_url
from primeguard.config.alerts import EmailChannelConfig, LogChannelConfig, WebhookChannelConfig
from primeguard.config.loader import resolve_secret
from primeguard.domain.errors import ConfigError, PrimeguardError
from primeguard.domain.findings import Severity

ALERT_LOG = logging.getLogger("primeguard.alerts")
USER_AGENT = "primeguard-alerts/1"
# Subjects are at most 200 characters: keep them on one line (RFC 5322 allows 998).
_MAIL_POLICY = _default_policy.clone(max_line_length=250)


class AlertError(PrimeguardError):
    """An alert could not be delivered or a channel cannot be built."""


class DeliveryError(AlertError):
    """A delivery failed. ``retryable``: worth another attempt; ``attempts``: how many were made."""

    def __init__(self, message: str, *, retryable: bool, attempts: int = 1) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.attempts = attempts


class Sender(Protocol):
    name: str

    async def deliver(self, send: Send, now: datetime, http: aiohttp.ClientSession) -> int:
        """Deliver one notice; returns attempts made. Raises DeliveryError (redacted)."""
        ...


async def _with_retries(
    attempt: Callable[[], Awaitable[None]], *, retries: int, backoff_s: float, max_backoff_s: float,
) -> int:
    """Run ``attempt`` until it succeeds, a non-retryable DeliveryError, or ``retries`` are used up."""
    delay = backoff_s
    for n in range(1, retries + 2):
        try:
            await attempt()
            return n
        except DeliveryError as exc:
            exc.attempts = n
            if not exc.retryable or n > retries:
                raise
        await asyncio.sleep(min(delay, max_backoff_s))
        delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


# --- log ----------------------------------------------------------------------------------------


def _log_level(send: Send) -> int:
    if send.action is Action.RESOLVED:
        return logging.INFO
    level = {Severity.INFO: logging.INFO, Severity.WARNING: logging.WARNING, Severity.HIGH: logging.ERROR,
             Severity.CRITICAL: logging.CRITICAL}[send.item.severity]
    return max(level, logging.ERROR) if send.item.blind_spot else level


class LogSender:
    """Writes one structured line on the ``primeguard.alerts`` logger; the full generic payload is in
    the record's ``alert`` attribute for JSON formatters."""

    def __init__(self, config: LogChannelConfig) -> None:
        self.name = config.name
        self.config = config

    async def deliver(self, send: Send, now: datetime, http: aiohttp.ClientSession) -> int:
        del http
        ALERT_LOG.log(_log_level(send), render.log_line(send), extra={"alert": render.payload(send, now)})
        return 1


# --- webhook / slack ----------------------------------------------------------------------------


class WebhookSender:
    """POSTs JSON to a webhook. Only ``scheme://host`` of the URL ever appears in messages.

    Notices go through one HTTP session per channel that stays open between notices (its
    connections are kept alive and reused: no TCP or TLS handshake per alert); :meth:`close`
    closes it. A session belongs to one event loop: a sender used from another loop opens a new one.
    """

    def __init__(self, config: WebhookChannelConfig, url: str, redactor: Redactor) -> None:
        self.name = config.name
        self.config = config
        self._http: aiohttp.ClientSession | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._url = url
        self.safe_url = redact_url(url)
        self._redactor = redactor
        redactor.add_url(url)
        if not url.startswith(("http://", "https://")) or self.safe_url == "<invalid url>":
            raise ConfigError(f"alerts channel {config.name}: url must be an http(s) URL (got {self.safe_url})")

    def __repr__(self) -> str:
        return f"WebhookSender({self.name!r}, {self.safe_url})"

    def body(self, send: Send, now: datetime) -> dict[str, object]:
        if self.config.kind == "slack":
            return render.slack_payload(send, now)
        return render.payload(send, now)

    async def deliver(self, send: Send, now: datetime, http: aiohttp.ClientSession) -> int:
        del http  # the channel's own kept-open session, not the per-dispatch one
        return await self.post(self.body(send, now), self.session())

    def session(self) -> aiohttp.ClientSession:
        """This channel's kept-open session for the running event loop (opened on first use, and
        again after :meth:`close` or when called from another loop)."""
        loop = asyncio.get_running_loop()
        if self._http is not None and not self._http.closed and self._http_loop is loop:
            return self._http
        if self._http is not None and not self._http.closed:
            _abandon(self._http)  # its loop is gone: nothing left to close there
        self._http = aiohttp.ClientSession(trust_env=False)
        self._http_loop = loop
        return self._http

    async def close(self) -> None:
        """Close the kept-open session (its connections); idempotent, never raises."""
        http, self._http = self._http, None
        if http is None or http.closed:
            return
        if self._http_loop is asyncio.get_running_loop():
            with contextlib.suppress(Exception):
                await http.close()
        else:
            _abandon(http)

    async def post(self, body: dict[str, object], http: aiohttp.ClientSession) -> int:
        """POST ``body`` as JSON with this channel's retries; returns attempts made. Raises
        DeliveryError (redacted: only scheme and host of the URL)."""
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)

        async def attempt() -> None:
            try:
                async with http.post(
                    self._url, json=body, timeout=timeout, allow_redirects=False,
                    headers={"User-Agent": USER_AGENT},
                ) as resp:
                    if 200 <= resp.status < 300:
                        return
                    retryable = resp.status >= 500 or resp.status in (408, 429)
                    raise DeliveryError(f"{self.safe_url} answered HTTP {resp.status}", retryable=retryable)
            except DeliveryError:
                raise
            except TimeoutError:
                raise DeliveryError(f"{self.safe_url}: timed out after {self.config.timeout_s}s",
                                    retryable=True) from None
            except aiohttp.ClientConnectionError as exc:
                reason = self._redactor.scrub(getattr(exc, "os_error", None) or type(exc).__name__)
                raise DeliveryError(f"{self.safe_url}: cannot connect ({reason})", retryable=True) from None
            except (aiohttp.ClientError, ValueError) as exc:
                raise DeliveryError(f"{self.safe_url}: {type(exc).__name__}", retryable=False) from None

        return await _with_retries(attempt, retries=self.config.retries, backoff_s=self.config.backoff_s,
                                   max_backoff_s=self.config.max_backoff_s)


def _abandon(http: aiohttp.ClientSession) -> None:
    """Mark a session of another (finished) event loop closed without awaiting on that loop."""
    connector = http.connector
    http.detach()
    if connector is not None:
        with contextlib.suppress(Exception):
            connector._close()  # no awaitable to wait for once its loop is closed


# --- email --------------------------------------------------------------------------------------


class EmailSender:
    """Sends through SMTP with ``smtplib`` in a worker thread (the event loop never blocks on it)."""

    def __init__(self, config: EmailChannelConfig, username: str | None, password: str | None,
                 redactor: Redactor) -> None:
        self.name = config.name
        self.config = config
        self._username = username
        self._password = password
        self._redactor = redactor
        redactor.add(password)

    def __repr__(self) -> str:
        return f"EmailSender({self.name!r}, {self.config.host}:{self.config.port})"

    def message(self, send: Send, now: datetime) -> EmailMessage:
        subject, body, headers = render.email_parts(send, now, prefix=self.config.subject_prefix)
        msg = EmailMessage(policy=_MAIL_POLICY)
        msg["Subject"] = subject
        msg["From"] = self.config.from_addr
        msg["To"] = ", ".join(self.config.to)
        msg["Date"] = formatdate(now.timestamp(), localtime=False)
        msg["Message-ID"] = make_msgid(domain=self.config.from_addr.rsplit("@", 1)[-1])
        for name, value in headers.items():
            msg[name] = value
        msg.set_content(body)
        return msg

    def _send_blocking(self, msg: EmailMessage) -> None:
        cfg = self.config
        where = f"smtp {cfg.host}:{cfg.port}"
        try:
            if cfg.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s,
                                                       context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
            with client:
                client.ehlo()
                if cfg.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                    client.ehlo()
                if self._username is not None and self._password is not None:
                    client.login(self._username, self._password)
                client.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"{where}: authentication refused ({exc.smtp_code})", retryable=False) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{where}: {self._redactor.scrub(exc)}", retryable=False) from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError(f"{where}: every recipient was refused", retryable=False) from None
        except smtplib.SMTPResponseException as exc:
            text = self._redactor.scrub(exc.smtp_error.decode(errors="replace")
                                        if isinstance(exc.smtp_error, bytes) else exc.smtp_error)
            raise DeliveryError(f"{where}: {exc.smtp_code} {text}", retryable=exc.smtp_code >= 400) from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            reason = self._redactor.scrub(exc) or type(exc).__name__
            raise DeliveryError(f"{where}: {type(exc).__name__}: {reason}", retryable=True) from None

    async def deliver(self, send: Send, now: datetime, http: aiohttp.ClientSession) -> int:
        del http
        return await self.send_message(self.message(send, now))

    def compose(self, subject: str, body: str, to: tuple[str, ...], now: datetime) -> EmailMessage:
        """A plain-text message from this channel's sender to ``to`` (not the channel's own list)."""
        msg = EmailMessage(policy=_MAIL_POLICY)
        msg["Subject"] = subject
        msg["From"] = self.config.from_addr
        msg["To"] = ", ".join(to)
        msg["Date"] = formatdate(now.timestamp(), localtime=False)
        msg["Message-ID"] = make_msgid(domain=self.config.from_addr.rsplit("@", 1)[-1])
        msg.set_content(body)
        return msg

    async def send_message(self, msg: EmailMessage) -> int:
        """Send ``msg`` with this channel's retries; returns attempts made. Raises DeliveryError (redacted)."""

        async def attempt() -> None:
            await asyncio.to_thread(self._send_blocking, msg)

        return await _with_retries(attempt, retries=self.config.retries, backoff_s=self.config.backoff_s,
                                   max_backoff_s=self.config.max_backoff_s)


def build_senders(
    channels: tuple[LogChannelConfig | WebhookChannelConfig | EmailChannelConfig, ...],
    *, base_dir: Path | None, redactor: Redactor,
) -> dict[str, Sender]:
    """Senders by channel name, with secrets resolved now (a missing secret fails here, by reference).

    Raises:
        ConfigError: a secret cannot be resolved or a URL is not http(s). Never contains the secret.
    """
    senders: dict[str, Sender] = {}
    for ch in channels:
        try:
            if isinstance(ch, LogChannelConfig):
                senders[ch.name] = LogSender(ch)
            elif isinstance(ch, WebhookChannelConfig):
                senders[ch.name] = WebhookSender(ch, resolve_secret(ch.url, base_dir=base_dir), redactor)
            else:
                user = resolve_secret(ch.username, base_dir=base_dir) if ch.username else None
                password = resolve_secret(ch.password, base_dir=base_dir) if ch.password else None
                senders[ch.name] = EmailSender(ch, user, password, redactor)
        except ConfigError as exc:
            if str(exc).startswith("alerts channel"):
                raise
            raise ConfigError(f"alerts channel {ch.name}: {redactor.scrub(exc)}") from None
    return senders
