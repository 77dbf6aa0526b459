"""External anchors of the audit chain: publish the head (seq, hash, time) outside the database,
and read it back to check the chain against it.

A record is one JSON object::

    {"schema": "primeguard.audit_anchor/1", "seq": 1234, "hash": "<64 hex>",
     "entry_at": "2026-01-01T12:00:00.000000Z", "anchored_at": "...", "source": "daemon:replica-1"}

Sinks (``audit.anchors.sinks`` in the agent config): ``file`` appends it as one line (JSON lines),
``log`` writes ``audit-anchor {json}`` on the ``primeguard.audit.anchor`` logger, ``webhook`` POSTs
it. The daemon publishes every ``every_s`` seconds (and at start and stop); the CLI after each
command that wrote to the store. :func:`read_anchors` reads a JSON-lines file or a log file holding
anchor lines; ``primeguard audit verify --anchor FILE`` then checks that the chain contains every
anchored (seq, hash).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from primeguard.config.schema import AnchorsConfig, FileAnchorSink, LogAnchorSink, WebhookAnchorSink
from primeguard.domain.errors import InputError
from primeguard.store import audit
from primeguard.store.audit import Anchor
from primeguard.store.codec import iso

SCHEMA = "primeguard.audit_anchor/1"
LOG_MARKER = "audit-anchor"
MAX_LINE = 4096  # an anchor line is ~250 characters; longer lines are not anchors
log = logging.getLogger("primeguard.audit.anchor")
_HEX = frozenset("0123456789abcdef")


def head_record(store: Any, *, source: str, now: datetime | None = None) -> dict[str, Any]:
    """The chain head as an anchor record (read in one snapshot, nothing written)."""
    with store.session(readonly=True) as s:
        seq, digest = audit.head(s)
        at = audit.head_time(s, seq) if seq else None
    return {"schema": SCHEMA, "seq": seq, "hash": digest, "entry_at": None if at is None else iso(at),
            "anchored_at": iso(now or datetime.now(UTC)), "source": source}


@dataclass
class Publisher:
    """Publishes anchor records to the configured sinks. ``publish`` never raises: it returns one
    message per sink that failed (without secrets), so a failed anchor never undoes a write."""

    config: AnchorsConfig
    base_dir: Path | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.config.sinks)

    def publish(self, record: dict[str, Any]) -> list[str]:
        line = json.dumps(record, sort_keys=True, separators=(",", ":"))
        failures: list[str] = []
        for sink in self.config.sinks:
            try:
                if isinstance(sink, FileAnchorSink):
                    self._file(sink, line)
                elif isinstance(sink, LogAnchorSink):
                    log.info("%s %s", LOG_MARKER, line)
                elif isinstance(sink, WebhookAnchorSink):
                    self._webhook(sink, line)
            except Exception as exc:  # each sink on its own; report, never raise
                failures.append(f"audit anchor to {sink.kind} failed: {type(exc).__name__}: {_safe(exc, sink)}")
        return failures

    def anchor(self, store: Any, *, source: str, now: datetime | None = None) -> tuple[dict[str, Any], list[str]]:
        """Read the head and publish it. Returns ``(record, failures)``."""
        record = head_record(store, source=source, now=now)
        return record, self.publish(record)

    def _path(self, sink: FileAnchorSink) -> Path:
        p = Path(sink.path)
        return p if p.is_absolute() or self.base_dir is None else self.base_dir / p

    def _file(self, sink: FileAnchorSink, line: str) -> None:
        path = self._path(sink)
        path.parent.mkdir(parents=True, exist_ok=True)
        # One write() of a short line with O_APPEND: lines from several writers never interleave.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def _webhook(self, sink: WebhookAnchorSink, line: str) -> None:
        import httpx

        from primeguard.config.loader import resolve_secret

        url = resolve_secret(sink.url, base_dir=self.base_dir)
        with httpx.Client(timeout=sink.timeout_s, trust_env=False, follow_redirects=False) as http:
            resp = http.post(url, content=line.encode("utf-8"), headers={"Content-Type": "application/json"})
        if resp.status_code >= 300:
            raise RuntimeError(f"HTTP {resp.status_code}")


def _safe(exc: Exception, sink: Any) -> str:
    """The error text without the webhook URL (it may carry a token)."""
    text = str(exc)[:200]
    if isinstance(sink, WebhookAnchorSink):
        return "request failed" if "://" in text or "?" in text else text
    return text


def read_anchors(path: Path) -> list[Anchor]:
    """Anchors in a JSON-lines file (one record a line) or a log file (lines with ``audit-anchor {json}``;
    other lines are skipped). A malformed anchor line, or a file without any anchor, is an
    :class:`InputError` naming ``file:line``: a wrong file must never pass as "nothing to check"."""
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the anchor file: {getattr(exc, 'strerror', None) or exc}") from None
    anchors: list[Anchor] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"{path}:{n}"
        if not line:
            continue
        if line.startswith("{"):
            body = line
        elif LOG_MARKER in line and SCHEMA in line:
            body = line[line.index(LOG_MARKER) + len(LOG_MARKER):].strip()
        else:
            continue  # a log line that is not an anchor
        if len(body) > MAX_LINE:
            raise InputError(f"{where}: anchor line too long")
        anchors.append(_parse(body, where))
    if not anchors:
        raise InputError(f"{path}: no audit anchors found (expected JSON lines with schema {SCHEMA})")
    return anchors


def _parse(body: str, where: str) -> Anchor:
    try:
        record, end = json.JSONDecoder().raw_decode(body)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not a JSON anchor record: {exc.msg}") from None
    if body[end:].strip():
        raise InputError(f"{where}: unexpected text after the anchor record")
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise InputError(f"{where}: not an audit anchor (schema must be {SCHEMA})")
    seq, digest = record.get("seq"), record.get("hash")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise InputError(f"{where}: seq must be a non-negative integer")
    if not isinstance(digest, str) or len(digest) != 64 or not set(digest) <= _HEX:
        raise InputError(f"{where}: hash must be 64 lowercase hex characters")
    return Anchor(seq, digest, where)
