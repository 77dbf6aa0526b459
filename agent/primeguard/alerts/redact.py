"""Keep secrets out of logs, errors and the alerts table. Pure.

Webhook URLs carry tokens in their path or query, SMTP has a password: anything that can reach a log
line or a stored error goes through :meth:`Redactor.scrub` first, and URLs are shown as
``scheme://host[:port]`` only (:func:`redact_url`).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

MASK = "***"
_MIN_FRAGMENT = 6  # shorter URL pieces ("api", "v1") are not secrets and would mangle messages


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/X`` → ``https://hooks.slack.com``. Userinfo is dropped."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    if not parts.scheme or not host:
        return "<invalid url>"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}"


def _url_fragments(url: str) -> list[str]:
    """The pieces of a URL that may be secret: everything after the host, its segments, query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    out = [url]
    tail = url.split(parts.netloc, 1)[-1] if parts.netloc else url
    out.append(tail)
    if parts.username:
        out.append(parts.username)
    if parts.password:
        out.append(parts.password)
    out.extend(seg for seg in parts.path.split("/") if seg)
    out.extend(v for _, v in parse_qsl(parts.query, keep_blank_values=True))
    if parts.fragment:
        out.append(parts.fragment)
    return out


class Redactor:
    """Replaces every registered secret (and the secret parts of registered URLs) with ``***``."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, *secrets: str | None) -> None:
        """Register plain secrets (passwords, tokens), with their base64 forms (SMTP AUTH)."""
        for s in secrets:
            if s and len(s) >= 4:
                self._secrets.add(s)
                self._secrets.add(base64.b64encode(s.encode()).decode())

    def add_url(self, url: str) -> None:
        """Register a secret URL: only its scheme and host may be shown."""
        host = redact_url(url)
        for fragment in _url_fragments(url):
            if len(fragment) >= _MIN_FRAGMENT and fragment not in host:
                self._secrets.add(fragment)

    def scrub(self, text: object) -> str:
        """``text`` (any object, through ``str``) with every registered secret masked."""
        out = str(text)
        for secret in sorted(self._secrets, key=len, reverse=True):  # longest first: URL before its parts
            if secret in out:
                out = out.replace(secret, MASK)
        return out

    def extend(self, others: Iterable[Redactor]) -> None:
        for other in others:
            self._secrets |= other._secrets
