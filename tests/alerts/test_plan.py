"""plan(): pure decisions, no I/O. Times are explicit; records are built by hand."""

from __future__ import annotations

from datetime import datetime

import pytest

from primeguard.alerts.model import Action, AlertRecord, LadderEvent, Send, ladder_key
from primeguard.alerts.plan import plan
from primeguard.config.alerts import AlertsConfig, LogChannelConfig
from primeguard.domain.errors import InputError
from primeguard.domain.findings import FindingCode, Severity

from .conftest import T0, at, finding, stale


def cfg(*channels: LogChannelConfig, **kw: object) -> AlertsConfig:
    return AlertsConfig(channels=channels or (LogChannelConfig(name="ops"),), **kw)


def ch(name: str = "ops", **kw: object) -> LogChannelConfig:
    return LogChannelConfig(name=name, **kw)


def rec(key: str, state: str = "sent", level: str = "HIGH", *, channel: str = "ops", sent: float | None = 0,
        updated: float = 0, attempts: int = 0, until: float | None = None) -> AlertRecord:
    return AlertRecord(
        finding_key=key, channel=channel, level=level, state=state, attempts=attempts,
        sent_at=None if sent is None else at(sent), cooldown_until=None if until is None else at(until),
        updated_at=at(updated),
    )


def actions(steps: list[Send]) -> list[tuple[str, str, Action]]:
    return [(s.channel, s.key, s.action) for s in steps]


F = finding()


# --- new, dedupe -------------------------------------------------------------------------------------


def test_new_finding_opens_once_per_routed_channel() -> None:
    steps = plan([F], [], T0, cfg(ch("ops"), ch("pager", min_severity="critical")))
    assert actions(steps) == [("ops", F.key, Action.OPENED)]
    assert steps[0].delivers and steps[0].state is None


def test_same_open_finding_does_not_refire_every_sweep() -> None:
    for seconds in (1, 60, 12 * 3600):
        assert plan([F], [rec(F.key)], at(seconds), cfg()) == []


def test_duplicate_findings_in_one_sweep_are_one_notice_at_the_highest_severity() -> None:
    low, high = finding(severity=Severity.WARNING), finding(severity=Severity.CRITICAL)
    steps = plan([low, high, low], [], T0, cfg())
    assert actions(steps) == [("ops", F.key, Action.OPENED)]
    assert steps[0].item.severity is Severity.CRITICAL


def test_resolved_records_are_history_a_reappearance_is_a_new_episode() -> None:
    steps = plan([F], [rec(F.key, "resolved")], at(10), cfg())
    assert actions(steps) == [("ops", F.key, Action.OPENED)]
    assert steps[0].state is None


# --- routing -----------------------------------------------------------------------------------------


def test_routing_by_min_severity_and_code_patterns() -> None:
    ltv = finding(FindingCode.LTV_MARGIN_CALL, Severity.HIGH, subject="firm-a")
    warn = finding(FindingCode.UNLIMITED_APPROVAL, Severity.WARNING, subject="0xabc")
    config = cfg(ch("all", min_severity="info"), ch("risk", codes=("ltv_*",)), ch("high", min_severity=30))
    got = set(actions(plan([ltv, warn], [], T0, config)))
    assert got == {
        ("all", ltv.key, Action.OPENED), ("all", warn.key, Action.OPENED),
        ("risk", ltv.key, Action.OPENED),
        ("high", ltv.key, Action.OPENED),
    }


def test_blind_spot_bypasses_filters_with_high_priority_and_goes_first() -> None:
    config = cfg(ch("risk", min_severity="critical", codes=("ltv_*",)), ch("quiet", min_severity="critical",
                                                                         blind_spots=False))
    crit = finding(FindingCode.LTV_LIQUIDATE, Severity.CRITICAL, subject="firm-z")
    blind = stale()
    assert blind.severity is Severity.INFO and blind.is_blind_spot
    steps = plan([F, blind, crit], [], T0, config)
    assert [(s.channel, s.key) for s in steps if s.channel == "risk"] == [("risk", blind.key), ("risk", crit.key)]
    assert ("quiet", blind.key, Action.OPENED) not in actions(steps)
    assert all(s.priority == "high" for s in steps)
    normal = plan([F], [], T0, cfg())
    assert normal[0].priority == "normal"


def test_high_priority_notices_are_ordered_before_others() -> None:
    steps = plan([F, stale()], [], T0, cfg())
    assert [s.item.blind_spot for s in steps] == [True, False]


# --- cooldown and repeat -----------------------------------------------------------------------------


def test_no_reminder_unless_configured() -> None:
    assert plan([F], [rec(F.key)], at(30 * 24 * 3600), cfg(ch(repeat_s=None))) == []


def test_reminder_after_repeat_interval_while_still_open() -> None:
    config = cfg(ch(cooldown_s=900, repeat_s=3600))
    assert plan([F], [rec(F.key)], at(3599), config) == []
    steps = plan([F], [rec(F.key)], at(3600), config)
    assert actions(steps) == [("ops", F.key, Action.REMINDER)]
    assert steps[0].state == "sent"


def test_repeat_never_comes_sooner_than_the_cooldown() -> None:
    config = cfg(ch(cooldown_s=900, repeat_s=60))
    assert plan([F], [rec(F.key)], at(899), config) == []
    assert actions(plan([F], [rec(F.key)], at(900), config)) == [("ops", F.key, Action.REMINDER)]


def test_cooldown_is_per_channel() -> None:
    config = cfg(ch("fast", cooldown_s=60, repeat_s=60), ch("slow", cooldown_s=3600, repeat_s=60))
    records = [rec(F.key, channel="fast"), rec(F.key, channel="slow")]
    assert actions(plan([F], records, at(120), config)) == [("fast", F.key, Action.REMINDER)]


# --- escalation --------------------------------------------------------------------------------------


def test_escalation_renotifies_at_once_even_inside_the_cooldown() -> None:
    worse = finding(severity=Severity.CRITICAL)
    steps = plan([worse], [rec(F.key, level="HIGH")], at(5), cfg(ch(cooldown_s=900)))
    assert actions(steps) == [("ops", F.key, Action.ESCALATED)]
    assert steps[0].previous_level == "HIGH" and steps[0].level == "CRITICAL"


def test_a_fall_is_recorded_silently_and_a_rise_back_renotifies() -> None:
    lower = finding(severity=Severity.WARNING)
    steps = plan([lower], [rec(F.key, level="HIGH")], at(5), cfg())
    assert actions(steps) == [("ops", F.key, Action.RECORD)]
    assert not steps[0].delivers and steps[0].level == "WARNING"
    back = plan([F], [rec(F.key, "suppressed", level="WARNING")], at(10), cfg())
    assert actions(back) == [("ops", F.key, Action.ESCALATED)]


def test_rise_that_stays_below_the_channel_threshold_is_only_recorded() -> None:
    config = cfg(ch(min_severity="critical"))
    records = [rec(F.key, "suppressed", level="WARNING")]  # was told at CRITICAL once, then it fell
    assert actions(plan([F], records, at(5), config)) == [("ops", F.key, Action.RECORD)]


# --- resolved ----------------------------------------------------------------------------------------


def test_resolved_notice_waits_out_the_cooldown_then_goes() -> None:
    config = cfg(ch(cooldown_s=900))
    assert plan([], [rec(F.key)], at(60), config) == []
    steps = plan([], [rec(F.key)], at(900), config)
    assert actions(steps) == [("ops", F.key, Action.RESOLVED)]
    assert steps[0].item.code == "key_can_withdraw" and steps[0].item.subject == "acct-1"


def test_a_finding_flapping_inside_the_cooldown_is_one_episode() -> None:
    config = cfg(ch(cooldown_s=900))
    records = [rec(F.key)]
    for seconds, present in ((60, False), (120, True), (180, False), (240, True)):
        assert plan([F] if present else [], records, at(seconds), config) == []


def test_resolved_can_be_silent_per_channel() -> None:
    config = cfg(ch("loud"), ch("quiet", send_resolved=False))
    records = [rec(F.key, channel="loud"), rec(F.key, channel="quiet")]
    got = actions(plan([], records, at(1000), config))
    assert sorted(got) == [("loud", F.key, Action.RESOLVED), ("quiet", F.key, Action.CLOSE)]


def test_never_delivered_then_closed_ends_silently() -> None:
    records = [rec(F.key, "failed", sent=None, until=3600)]
    assert actions(plan([], records, at(10), cfg())) == [("ops", F.key, Action.CLOSE)]


def test_a_channel_told_about_an_item_hears_it_resolved_even_if_no_longer_routed() -> None:
    config = cfg(ch(min_severity="critical"))
    records = [rec(F.key, "suppressed", level="WARNING")]
    assert actions(plan([], records, at(1000), config)) == [("ops", F.key, Action.RESOLVED)]


def test_failed_resolved_notice_is_retried_then_given_up() -> None:
    config = cfg(ch(cooldown_s=0), resolve_max_attempts=3)
    assert plan([], [rec(F.key, "failed", attempts=1, until=100)], at(50), config) == []
    retry = plan([], [rec(F.key, "failed", attempts=1, until=100)], at(100), config)
    assert actions(retry) == [("ops", F.key, Action.RESOLVED)] and retry[0].retry
    give_up = plan([], [rec(F.key, "failed", attempts=3, until=100)], at(100), config)
    assert actions(give_up) == [("ops", F.key, Action.CLOSE)]


# --- failures and crashes ----------------------------------------------------------------------------


def test_failed_delivery_waits_for_its_backoff_then_retries() -> None:
    records = [rec(F.key, "failed", sent=None, until=60, attempts=1)]
    assert plan([F], records, at(59), cfg()) == []
    steps = plan([F], records, at(60), cfg())
    assert actions(steps) == [("ops", F.key, Action.OPENED)]
    assert steps[0].retry and steps[0].state == "failed"


def test_escalation_does_not_wait_for_a_failed_retry() -> None:
    records = [rec(F.key, "failed", sent=None, until=600, attempts=1)]
    steps = plan([finding(severity=Severity.CRITICAL)], records, at(1), cfg())
    assert actions(steps) == [("ops", F.key, Action.OPENED)]


def test_pending_left_by_a_crash_is_resent_once_stale() -> None:
    config = cfg(dispatch_timeout_s=30)
    records = [rec(F.key, "pending", sent=None, updated=0)]
    assert plan([F], records, at(59), config) == []  # may still be in flight
    assert actions(plan([F], records, at(60), config)) == [("ops", F.key, Action.OPENED)]


def test_records_of_unknown_channels_are_left_alone() -> None:
    assert plan([], [rec(F.key, channel="removed")], at(5000), cfg()) == []


# --- ladder ------------------------------------------------------------------------------------------

LK = ladder_key("firm-a")


def ev(previous: str, current: str, ltv: str = "0.81", seconds: float = 0) -> LadderEvent:
    return LadderEvent("firm-a", previous, current, ltv, at(seconds))


def test_ladder_escalation_episode() -> None:
    config = cfg(ch(cooldown_s=900))
    opened = plan([], [], T0, config, [ev("normal", "margin_call")])
    assert actions(opened) == [("ops", LK, Action.OPENED)]
    assert opened[0].item.severity is Severity.HIGH and "0.81" in opened[0].item.message
    # no event: the stored level stands, nothing to say
    assert plan([], [rec(LK, level="margin_call")], at(30), config) == []
    up = plan([], [rec(LK, level="margin_call")], at(60), config, [ev("margin_call", "halt", "0.91", 60)])
    assert actions(up) == [("ops", LK, Action.ESCALATED)] and up[0].priority == "high"
    down = plan([], [rec(LK, level="halt")], at(90), config, [ev("halt", "margin_call", "0.84", 90)])
    assert actions(down) == [("ops", LK, Action.RECORD)]
    cured = plan([], [rec(LK, "suppressed", level="margin_call")], at(120), config, [ev("margin_call", "normal")])
    assert actions(cured) == [("ops", LK, Action.RESOLVED)]  # the ladder has its own hysteresis: no wait


def test_ladder_uses_the_latest_event_of_a_call() -> None:
    events = [ev("margin_call", "halt", seconds=2), ev("normal", "warn"), ev("warn", "margin_call", seconds=1)]
    steps = plan([], [], at(3), cfg(), events)
    assert [s.item.level for s in steps] == ["halt"]


def test_ladder_routing_by_code_and_level() -> None:
    config = cfg(ch("risk", min_severity="high", codes=("ladder",)), ch("chain", codes=("unlimited_*",)))
    assert plan([], [], T0, config, [ev("normal", "warn")]) == []
    assert actions(plan([], [], T0, config, [ev("warn", "margin_call")])) == [("risk", LK, Action.OPENED)]


def test_ladder_change_is_acted_on_now_even_while_a_retry_waits() -> None:
    records = [rec(LK, "failed", level="halt", attempts=1, until=600)]
    steps = plan([], records, at(5), cfg(), [ev("halt", "normal")])
    assert actions(steps) == [("ops", LK, Action.RESOLVED)] and steps[0].level == "normal"


# --- inputs ------------------------------------------------------------------------------------------


def test_disabled_plans_nothing() -> None:
    assert plan([F], [], T0, cfg(enabled=False)) == []


def test_naive_time_is_refused() -> None:
    with pytest.raises(InputError):
        plan([F], [], datetime(2026, 1, 1), cfg())


def test_bad_ladder_level_is_refused() -> None:
    with pytest.raises(InputError, match="unknown ladder level"):
        LadderEvent("firm-a", "normal", "panic", None, T0)
