"""What a notice says, per channel format. Pure.

- :func:`payload`: primeguard's generic JSON (``schema: primeguard.alert/1``), stable for receivers.
- :func:`slack_payload`: a Slack incoming-webhook body, ``{"text": ..., "blocks": [...]}``.
- :func:`email_parts`: subject, plain-text body and priority headers.
- :func:`log_line`: one ``key=value`` line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from primeguard.alerts.model import Action, ItemKind, Send

SCHEMA = "primeguard.alert/1"
MAX_MESSAGE_CHARS = 4000  # a message built from stored values is cut here, never sent huge


def _bounded(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters (with ``…``): alert bodies stay small whatever is stored."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def title(send: Send) -> str:
    """One line: ``[HIGH] key_can_withdraw on acct-1 (client firm-a)``, with what happened."""
    it = send.item
    where = f" on {it.subject}" if it.kind is ItemKind.FINDING else ""
    venue = f" @ {it.venue}" if it.venue else ""
    client = f" (client {it.client_id})" if it.client_id and it.kind is ItemKind.FINDING else ""
    what = f"{it.code}{where}{venue}{client}" if it.kind is ItemKind.FINDING else _bounded(it.message, 300)
    blind = "BLIND SPOT: " if it.blind_spot else ""
    match send.action:
        case Action.RESOLVED:
            return f"[RESOLVED] {blind}{what}"
        case Action.ESCALATED:
            return f"[{it.severity.name} ↑ from {send.previous_level}] {blind}{what}"
        case Action.REMINDER:
            return f"[{it.severity.name}] still open: {blind}{what}"
        case _:
            return f"[{it.severity.name}] {blind}{what}"


def payload(send: Send, now: datetime) -> dict[str, Any]:
    """The generic webhook body. Every field is always present (null when unknown)."""
    it = send.item
    ladder = None
    if it.kind is ItemKind.LADDER:
        ev = it.ladder
        ladder = {
            "previous": ev.previous if ev else send.previous_level,
            "current": it.level,
            "ltv": ev.ltv if ev else None,
            "at": ev.at.isoformat() if ev else None,
        }
    return {
        "schema": SCHEMA,
        "event": str(send.action),
        "retry": send.retry,
        "priority": send.priority,
        "title": title(send),
        "key": it.key,
        "kind": str(it.kind),
        "code": it.code,
        "severity": it.severity.name,
        "severity_level": int(it.severity),
        "level": it.level,
        "previous_level": send.previous_level,
        "blind_spot": it.blind_spot,
        "subject": it.subject,
        "client_id": it.client_id,
        "venue": it.venue or None,
        "chain": it.chain,
        "message": _bounded(it.message),
        "ladder": ladder,
        "channel": send.channel,
        "at": now.isoformat(),
    }


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_EMOJI = {"resolved": ":white_check_mark:", "high": ":rotating_light:", "normal": ":warning:"}


def slack_payload(send: Send, now: datetime) -> dict[str, Any]:
    """Slack-compatible body: ``text`` is the notification fallback, ``blocks`` the rendered message."""
    it = send.item
    emoji = _EMOJI["resolved"] if send.action is Action.RESOLVED else _EMOJI[send.priority]
    head = title(send)
    fields = [f"*Severity*\n{it.severity.name}", f"*Code*\n`{_mrkdwn(it.code)}`"]
    if it.client_id:
        fields.append(f"*Client*\n{_mrkdwn(it.client_id)}")
    if it.venue:
        fields.append(f"*Venue*\n{_mrkdwn(it.venue)}{' / ' + _mrkdwn(it.chain) if it.chain else ''}")
    if it.ladder is not None and it.ladder.ltv is not None:
        fields.append(f"*LTV*\n{_mrkdwn(it.ladder.ltv)}")
    context = f"{send.action} · priority {send.priority} · key `{_mrkdwn(it.key)}` · {now.isoformat()}"
    return {
        "text": f"{emoji} {head}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": head[:150], "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{emoji} {_mrkdwn(_bounded(it.message, 2900))}"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields[:10]]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def email_parts(send: Send, now: datetime, *, prefix: str) -> tuple[str, str, dict[str, str]]:
    """``(subject, body, extra headers)``; high priority sets ``X-Priority: 1`` and ``Importance: high``."""
    it = send.item
    body = payload(send, now)
    lines = [title(send), "", _bounded(it.message), ""]
    for name in ("event", "priority", "severity", "code", "key", "client_id", "venue", "chain", "subject", "at"):
        if body[name] not in (None, ""):
            lines.append(f"{name}: {body[name]}")
    if (lad := body["ladder"]) is not None:
        lines.append(f"ladder: {lad['previous']} → {lad['current']} (LTV {lad['ltv']})")
    headers = {"X-Priority": "1", "Importance": "high"} if send.priority == "high" else {}
    subject = " ".join(x for x in (prefix, title(send)) if x)
    return subject.replace("\n", " ")[:200], "\n".join(lines) + "\n", headers


def log_line(send: Send) -> str:
    """``alert event=opened channel=ops severity=HIGH code=... key=... priority=high msg="..."``."""
    it = send.item
    parts = {
        "event": str(send.action), "channel": send.channel, "severity": it.severity.name, "code": it.code,
        "key": it.key, "client": it.client_id or "-", "priority": send.priority,
        "blind_spot": str(it.blind_spot).lower(),
    }
    if send.retry:
        parts["retry"] = "true"
    kv = " ".join(f"{k}={v}" for k, v in parts.items())
    msg = _bounded(it.message).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'alert {kv} msg="{msg}"'
