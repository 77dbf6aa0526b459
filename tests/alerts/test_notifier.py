"""Notifier end to end: real webhook receiver, real SMTP server, SQLite store."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from primeguard.alerts.model import Action, LadderEvent
from primeguard.alerts.notifier import Notifier
from primeguard.config.alerts import AlertsConfig, EmailChannelConfig, LogChannelConfig, WebhookChannelConfig
from primeguard.config.schema import SecretRef
from primeguard.domain.errors import ConfigError
from primeguard.domain.findings import Severity
from primeguard.store import Store, repos
from primeguard.store.tables import AlertRow

from .conftest import CANARY_PASSWORD, CANARY_TOKEN, T0, Receiver, SmtpServer, at, finding, stale


def hook(name: str, url: str, kind: str = "webhook", **kw: object) -> WebhookChannelConfig:
    kw = {"retries": 1, "backoff_s": 0.01, "timeout_s": 5, **kw}
    return WebhookChannelConfig(name=name, kind=kind, url=SecretRef(value=url), **kw)


def mail(smtp: SmtpServer, password: str = CANARY_PASSWORD, **kw: object) -> EmailChannelConfig:
    return EmailChannelConfig.model_validate({
        "name": "mail", "kind": "email", "host": smtp.host, "port": smtp.port, "security": "none",
        "from": "primeguard@pb.example", "to": ["risk@pb.example"], "username": {"value": "alerts"},
        "password": {"value": password}, "retries": 0, **kw,
    })


def rows(store: Store) -> dict[tuple[str, str], AlertRow]:
    with store.session(readonly=True) as s:
        return {(r.finding_key, r.channel): r for r in repos.alerts_in_state(
            s, "pending", "sent", "failed", "suppressed", "resolved")}


F = finding()
# the local SMTP server takes AUTH without TLS on purpose (loopback only)
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


async def test_generic_and_slack_webhooks_log_and_email_all_deliver(
    store: Store, receiver: Receiver, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture,
) -> None:
    config = AlertsConfig(channels=(
        LogChannelConfig(name="log"),
        hook("generic", receiver.url(f"/generic/{CANARY_TOKEN}")),
        hook("slack", receiver.url(f"/slack/{CANARY_TOKEN}"), kind="slack"),
        mail(smtp_server),
    ))
    caplog.set_level(logging.INFO, logger="primeguard.alerts")
    deliveries = await Notifier(config, store).process([F, stale()], now=T0)

    assert sorted((d.channel, d.ok) for d in deliveries) == sorted(
        [(c, True) for c in ("log", "generic", "slack", "mail") for _ in range(2)])
    by_path = {p.split("/")[1]: [] for p in receiver.paths}
    for path, body in zip(receiver.paths, receiver.received, strict=True):
        by_path[path.split("/")[1]].append(body)
    generic = {b["key"]: b for b in by_path["generic"]}
    body = generic[F.key]
    assert body["schema"] == "primeguard.alert/1" and body["event"] == "opened"
    assert (body["code"], body["severity"], body["client_id"], body["priority"]) == (
        "key_can_withdraw", "HIGH", "firm-a", "normal")
    assert generic[stale().key]["blind_spot"] is True and generic[stale().key]["priority"] == "high"
    slack = by_path["slack"]
    assert all(set(b) == {"text", "blocks"} for b in slack)
    assert slack[0]["blocks"][0]["type"] == "header" and "BLIND SPOT" in slack[0]["text"]  # high priority first
    assert {m.mail_from for m in smtp_server.inbox.messages} == {"primeguard@pb.example"}
    assert smtp_server.logins == ["alerts", "alerts"]
    msgs = [email.message_from_bytes(m.content, policy=email.policy.default) for m in smtp_server.inbox.messages]
    blind_mail = next(m for m in msgs if "BLIND SPOT" in m["Subject"])
    assert blind_mail["X-Priority"] == "1" and blind_mail["Subject"].startswith("[primeguard] [INFO]")
    assert any("alert event=opened channel=log" in r.getMessage() and r.levelno == logging.ERROR
               for r in caplog.records)  # a blind spot logs at ERROR even at INFO severity
    assert {r.state for r in rows(store).values()} == {"sent"}


async def test_restart_does_not_resend_and_resolution_follows(store: Store, receiver: Receiver) -> None:
    config = AlertsConfig(channels=(hook("generic", receiver.url(), cooldown_s=600),))
    assert len(await Notifier(config, store).process([F], now=T0)) == 1

    restarted = Notifier(config, store)  # a new process over the same database
    for seconds in (30, 60, 599):
        assert await restarted.process([F], now=at(seconds)) == []
    assert await restarted.process([], now=at(300)) == []  # closed, but still inside the cooldown
    resolved = await restarted.process([], now=at(600))
    assert [(d.action, d.ok) for d in resolved] == [(Action.RESOLVED, True)]
    assert [b["event"] for b in receiver.received] == ["opened", "resolved"]
    assert rows(store)[(F.key, "generic")].state == "resolved"
    assert [d.action for d in await restarted.process([F], now=at(700))] == [Action.OPENED]  # new episode


async def test_escalation_and_ladder_flow(store: Store, receiver: Receiver) -> None:
    notifier = Notifier(AlertsConfig(channels=(hook("generic", receiver.url()),)), store)
    await notifier.process([F], now=T0)
    await notifier.process([finding(severity=Severity.CRITICAL)], now=at(10))
    events = [LadderEvent("firm-a", "normal", "margin_call", "0.82", at(20))]
    await notifier.process([finding(severity=Severity.CRITICAL)], events, now=at(20))
    await notifier.process([finding(severity=Severity.CRITICAL)], now=at(30))  # no change: silence
    await notifier.process([finding(severity=Severity.CRITICAL)],
                           [LadderEvent("firm-a", "margin_call", "normal", "0.70", at(40))], now=at(40))
    got = [(b["event"], b["kind"], b["level"]) for b in receiver.received]
    assert got == [
        ("opened", "finding", "HIGH"), ("escalated", "finding", "CRITICAL"),
        ("opened", "ladder", "margin_call"), ("resolved", "ladder", "normal"),
    ]
    assert receiver.received[1]["previous_level"] == "HIGH"
    assert receiver.received[2]["ladder"] == {"previous": "normal", "current": "margin_call", "ltv": "0.82",
                                              "at": at(20).isoformat()}


async def test_down_channels_fail_without_raising_or_blocking_the_others(
    store: Store, receiver: Receiver, refused_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    broken = Receiver()  # answers 500 twice, then works
    from aiohttp import web

    app = web.Application()
    app.router.add_post("/{tail:.*}", broken.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    broken.base, broken.fail_with, broken.fail_times = f"http://{host}:{port}", 500, 2
    try:
        config = AlertsConfig(channels=(
            hook("refused", refused_url, retry_s=60),
            hook("five-hundred", broken.url(), retry_s=60),
            hook("good", receiver.url()),
        ))
        notifier = Notifier(config, store)
        deliveries = {d.channel: d for d in await notifier.process([F], now=T0)}
        assert deliveries["good"].ok and len(receiver.received) == 1
        assert deliveries["refused"].ok is False and deliveries["refused"].attempts == 2
        assert "cannot connect" in (deliveries["refused"].error or "")
        assert deliveries["five-hundred"].ok is False and "HTTP 500" in (deliveries["five-hundred"].error or "")
        assert broken.hits == 2  # 1 + retries
        state = rows(store)
        assert state[(F.key, "refused")].state == "failed" and state[(F.key, "refused")].attempts == 1
        assert state[(F.key, "refused")].cooldown_until == at(60)
        assert state[(F.key, "good")].state == "sent"
        assert "alert delivery failed channel=refused" in caplog.text

        assert await notifier.process([F], now=at(30)) == []  # backoff not over: nothing is hammered
        retried = {d.channel: d for d in await notifier.process([F], now=at(60))}
        assert set(retried) == {"refused", "five-hundred"}
        assert retried["five-hundred"].ok and retried["refused"].ok is False
        assert rows(store)[(F.key, "refused")].cooldown_until == at(60 + 120)  # doubled
        assert len(receiver.received) == 1  # the good channel was not told twice
    finally:
        await runner.cleanup()


async def test_a_hanging_receiver_is_cut_off_by_the_dispatch_deadline(store: Store, receiver: Receiver) -> None:
    receiver.hang = asyncio.Event()
    config = AlertsConfig(channels=(hook("hangs", receiver.url(), timeout_s=30), LogChannelConfig(name="log")),
                          dispatch_timeout_s=0.2)
    deliveries = {d.channel: d for d in await Notifier(config, store).process([F], now=T0)}
    assert deliveries["log"].ok
    assert deliveries["hangs"].ok is False and "cancelled" in (deliveries["hangs"].error or "")
    assert rows(store)[(F.key, "hangs")].state == "failed"


async def test_a_slow_receiver_times_out_per_request(store: Store, receiver: Receiver) -> None:
    receiver.hang = asyncio.Event()
    config = AlertsConfig(channels=(hook("slow", receiver.url(), timeout_s=0.1, retries=0),))
    [delivery] = await Notifier(config, store).process([F], now=T0)
    assert delivery.ok is False and delivery.error == f"{receiver.base}: timed out after 0.1s"


async def test_a_fall_is_stored_silently_and_a_rise_back_renotifies(store: Store, receiver: Receiver) -> None:
    notifier = Notifier(AlertsConfig(channels=(hook("generic", receiver.url()),)), store)
    crit = finding(severity=Severity.CRITICAL)
    await notifier.process([crit], now=T0)
    assert await notifier.process([F], now=at(10)) == []  # HIGH now: nothing said
    row = rows(store)[(F.key, "generic")]
    assert (row.state, row.level) == ("suppressed", "HIGH")
    assert await notifier.process([F], now=at(20)) == []
    assert [d.action for d in await notifier.process([crit], now=at(30))] == [Action.ESCALATED]
    assert [b["event"] for b in receiver.received] == ["opened", "escalated"]


async def test_a_crash_between_mark_and_send_resends_later(store: Store, receiver: Receiver) -> None:
    config = AlertsConfig(channels=(hook("generic", receiver.url()),), dispatch_timeout_s=5)
    with store.session() as s:  # what a crash after marking leaves behind
        repos.ensure_alert(s, finding_key=F.key, channel="generic", level="HIGH", now=T0)
    notifier = Notifier(config, store)
    assert await notifier.process([F], now=at(5)) == []  # might still be in flight elsewhere
    again = await notifier.process([F], now=at(10))
    assert [(d.action, d.ok) for d in again] == [(Action.OPENED, True)]
    assert receiver.received[0]["retry"] is True


async def test_secrets_never_reach_logs_errors_or_the_store(
    store: Store, receiver: Receiver, refused_url: str, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "CANARY-wrong-pass-0b9e44"
    config = AlertsConfig(channels=(
        hook("refused", refused_url + f"?token={CANARY_TOKEN}x"),
        hook("http-404", receiver.url(f"/hooks/{CANARY_TOKEN}"), kind="slack"),
        mail(smtp_server, password=wrong),
    ))
    receiver.fail_with = 404
    notifier = Notifier(config, store)
    deliveries = await notifier.process([F], now=T0)
    assert deliveries and all(d.ok is False for d in deliveries)
    stored = [r.last_error or "" for r in rows(store).values()]
    texts = [caplog.text, *stored, *(d.error or "" for d in deliveries), repr(notifier.senders)]
    for text in texts:
        assert CANARY_TOKEN not in text
        assert wrong not in text and CANARY_PASSWORD not in text
    assert "http://127.0.0.1" in caplog.text  # the host is shown, the token is not
    assert any("authentication refused" in e for e in stored)


def test_missing_secret_fails_at_start_naming_the_reference_only(store: Store, tmp_path: Path) -> None:
    config = AlertsConfig(channels=(
        WebhookChannelConfig(name="slack", kind="slack", url=SecretRef(env="PG_TEST_UNSET_HOOK_8812")),))
    with pytest.raises(ConfigError, match="alerts channel slack: secret environment variable PG_TEST_UNSET_HOOK_8812"):
        Notifier(config, store)
    (tmp_path / "hook.txt").write_text(f"ftp://hooks.example/{CANARY_TOKEN}\n")
    bad = AlertsConfig(channels=(hook("x", "unused").model_copy(update={"url": SecretRef(file="hook.txt")}),))
    with pytest.raises(ConfigError, match="must be an http") as info:
        Notifier(bad, store, base_dir=tmp_path)
    assert CANARY_TOKEN not in str(info.value)


async def test_process_with_a_fixed_now_records_cooldown(store: Store, receiver: Receiver) -> None:
    config = AlertsConfig(channels=(hook("generic", receiver.url(), cooldown_s=900),))
    await Notifier(config, store).process([F], now=T0)
    row = rows(store)[(F.key, "generic")]
    assert (row.sent_at, row.cooldown_until, row.level) == (T0, T0 + timedelta(seconds=900), "HIGH")


def table_rows(store: Store) -> list[tuple[object, ...]]:
    """Every alerts row as stored, in id order (times as ISO text)."""
    with store.session(readonly=True) as s:
        got = repos.alerts_in_state(s, "pending", "sent", "failed", "suppressed", "resolved")
    iso = lambda t: None if t is None else t.isoformat()  # noqa: E731
    return sorted((r.id, r.finding_key, r.channel, r.level, r.state, r.attempts, iso(r.sent_at), iso(r.cooldown_until),
                   r.last_error, iso(r.created_at), iso(r.updated_at)) for r in got)


# The rows the per-row notifier wrote for TWO_SWEEPS before alerts were written in bulk (pinned).
TWO_SWEEP_ROWS = [(1,
  'data_stale:okx::okx-1',
  'generic',
  'INFO',
  'resolved',
  0,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:05:00+00:00',
  None,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:06:40+00:00'),
 (2,
  'data_stale:okx::okx-1',
  'log',
  'INFO',
  'sent',
  1,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:15:00+00:00',
  None,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:00:00+00:00'),
 (3,
  'key_can_withdraw:binance::acct-0',
  'generic',
  'HIGH',
  'sent',
  1,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:05:00+00:00',
  None,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:00:00+00:00'),
 (4,
  'key_can_withdraw:binance::acct-0',
  'log',
  'HIGH',
  'sent',
  1,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:15:00+00:00',
  None,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:00:00+00:00'),
 (5,
  'key_can_withdraw:binance::acct-1',
  'generic',
  'HIGH',
  'resolved',
  0,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:05:00+00:00',
  None,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:06:40+00:00'),
 (6,
  'key_can_withdraw:binance::acct-1',
  'log',
  'HIGH',
  'sent',
  1,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:15:00+00:00',
  None,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:00:00+00:00'),
 (7,
  'key_can_withdraw:binance::acct-2',
  'generic',
  'CRITICAL',
  'sent',
  1,
  '2026-03-01T12:06:40+00:00',
  '2026-03-01T12:11:40+00:00',
  None,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:06:40+00:00'),
 (8,
  'key_can_withdraw:binance::acct-2',
  'log',
  'CRITICAL',
  'sent',
  1,
  '2026-03-01T12:06:40+00:00',
  '2026-03-01T12:21:40+00:00',
  None,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:06:40+00:00'),
 (9,
  'key_can_withdraw:binance::acct-3',
  'generic',
  'HIGH',
  'sent',
  1,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:05:00+00:00',
  None,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:00:00+00:00'),
 (10,
  'key_can_withdraw:binance::acct-3',
  'log',
  'HIGH',
  'sent',
  1,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:15:00+00:00',
  None,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:00:00+00:00'),
 (11,
  'key_can_withdraw:binance::acct-4',
  'generic',
  'HIGH',
  'sent',
  1,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:05:00+00:00',
  None,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:00:00+00:00'),
 (12,
  'key_can_withdraw:binance::acct-4',
  'log',
  'HIGH',
  'sent',
  1,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:15:00+00:00',
  None,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:00:00+00:00'),
 (13,
  'key_can_withdraw:binance::acct-5',
  'generic',
  'HIGH',
  'sent',
  1,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:05:00+00:00',
  None,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:00:00+00:00'),
 (14,
  'key_can_withdraw:binance::acct-5',
  'log',
  'HIGH',
  'sent',
  1,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:15:00+00:00',
  None,
  '2026-03-01T12:00:00+00:00',
  '2026-03-01T12:00:00+00:00'),
 (15,
  'key_can_withdraw:binance::acct-9',
  'generic',
  'HIGH',
  'sent',
  1,
  '2026-03-01T12:06:40+00:00',
  '2026-03-01T12:11:40+00:00',
  None,
  '2026-03-01T12:06:40+00:00',
  '2026-03-01T12:06:40+00:00'),
 (16,
  'key_can_withdraw:binance::acct-9',
  'log',
  'HIGH',
  'sent',
  1,
  '2026-03-01T12:06:40+00:00',
  '2026-03-01T12:21:40+00:00',
  None,
  '2026-03-01T12:06:40+00:00',
  '2026-03-01T12:06:40+00:00')]


async def test_two_sweeps_write_the_same_alert_rows_as_the_per_row_notifier(store: Store, receiver: Receiver) -> None:
    config = AlertsConfig(channels=(hook("generic", receiver.url(), cooldown_s=300), LogChannelConfig(name="log")))
    notifier = Notifier(config, store)
    first = [finding(subject=f"acct-{i}", client_id=f"firm-{i % 3}") for i in range(6)] + [stale()]
    await notifier.process(first, now=T0)
    # Next sweep, past the cooldown: acct-1 and the stale venue are gone (resolved), acct-2 escalates,
    # acct-9 is new, the others are seen again (no notice).
    second = [f for f in first if f.subject not in ("acct-1", "okx-1")]
    second = [finding(severity=Severity.CRITICAL, subject="acct-2", client_id="firm-2") if f.subject == "acct-2"
              else f for f in second] + [finding(subject="acct-9", client_id="firm-0")]
    await notifier.process(second, now=at(400))
    assert table_rows(store) == TWO_SWEEP_ROWS
