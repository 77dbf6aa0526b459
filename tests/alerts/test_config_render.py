"""Config validation, payload rendering and redaction (pure)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from primeguard.alerts.model import LADDER_LEVELS, Action, AlertItem, LadderEvent, Send
from primeguard.alerts.redact import Redactor, redact_url
from primeguard.alerts.render import email_parts, log_line, payload, slack_payload
from primeguard.config.alerts import AlertsConfig, EmailChannelConfig
from primeguard.config.loader import load_yaml_model
from primeguard.domain.errors import ConfigError
from primeguard.domain.findings import Severity

from .conftest import CANARY_TOKEN, T0, finding, stale

REPO = Path(__file__).resolve().parents[2]


def test_docs_example_config_loads() -> None:
    text = (REPO / "docs" / "alerts.md").read_text()
    block = re.search(r"```yaml\n(alerts:\n.*?)```", text, re.S)
    assert block is not None
    import yaml

    cfg = AlertsConfig.model_validate(yaml.safe_load(block.group(1))["alerts"])
    assert [c.kind for c in cfg.channels] == ["log", "slack", "webhook", "email"]
    assert cfg.channels[1].min_severity is Severity.HIGH


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("channels:\n  - name: desk\n    kind: slack\n    url: {env: X}\n    codes: [ltv_margn_call]\n")
    with pytest.raises(ConfigError, match=r"alerts.yaml:line 5: channels.0.slack.codes: code pattern "
                       r"'ltv_margn_call' matches no finding code \(did you mean ltv_margin_call"):
        load_yaml_model(path, AlertsConfig)  # the loader walks past the "slack" union tag to the field


@pytest.mark.parametrize(("channels", "message"), [
    ([{"name": "a", "kind": "log"}, {"name": "a", "kind": "log"}], "duplicate channel name"),
    ([{"name": "a", "kind": "log", "min_severity": "loud"}], "unknown severity"),
    ([{"name": "a", "kind": "log", "url": {"env": "X"}}], "Extra inputs"),
    ([{"name": "a", "kind": "pager"}], "does not match any of the expected tags"),
    ([{"name": "a", "kind": "webhook"}], "url"),
    ([{"name": "m", "kind": "email", "host": "h", "from": "a@b.c", "to": ["x@y.z"], "username": {"env": "U"}}],
     "both username and password"),
    ([{"name": "m", "kind": "email", "host": "h", "from": "a@b.c", "to": ["nobody"]}], "not an email address"),
])
def test_invalid_channels_are_refused(channels: list[dict], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AlertsConfig.model_validate({"channels": channels})


def test_defaults_log_everything_from_warning() -> None:
    cfg = AlertsConfig()
    assert [(c.name, c.kind, c.min_severity) for c in cfg.channels] == [("log", "log", Severity.WARNING)]
    mail = EmailChannelConfig.model_validate(
        {"name": "m", "kind": "email", "host": "h", "from": "a@b.c", "to": ["x@y.z"]})
    assert (mail.port, mail.security) == (587, "starttls")


def test_mirrors_of_the_config_schema_stay_equal() -> None:
    from primeguard.config import schema
    from primeguard.config.base import IDENTIFIER_PATTERN

    patterns = [getattr(m, "pattern", None) for m in schema.Identifier.__metadata__[0].metadata]
    assert IDENTIFIER_PATTERN in patterns
    assert AlertsConfig.model_config.get("extra") == schema.Strict.model_config.get("extra") == "forbid"
    hook = AlertsConfig.model_validate({"channels": [{"name": "h", "kind": "webhook", "url": {"env": "H"}}]})
    assert isinstance(hook.channels[0].url, schema.SecretRef)  # the schema's own class


def test_ladder_levels_match_the_policy_schema() -> None:
    from primeguard.policy.schema import LADDER_STATES

    assert tuple(LADDER_STATES) == LADDER_LEVELS


def _send(action: Action = Action.OPENED, item: AlertItem | None = None, previous: str | None = None) -> Send:
    return Send("ch", action, item or AlertItem.from_finding(finding()), previous_level=previous)


def test_slack_payload_shape_and_escaping() -> None:
    item = AlertItem.from_finding(finding(message="balance < 0 & <script>"))
    body = slack_payload(_send(item=item), T0)
    assert set(body) == {"text", "blocks"} and body["text"].startswith(":warning: [HIGH] key_can_withdraw")
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "context"]
    assert "&lt;script&gt;" in body["blocks"][1]["text"]["text"] and "<script>" not in str(body["blocks"][1])
    blind = slack_payload(_send(item=AlertItem.from_finding(stale())), T0)
    assert blind["text"].startswith(":rotating_light:") and "BLIND SPOT" in blind["text"]
    assert slack_payload(_send(Action.RESOLVED), T0)["text"].startswith(":white_check_mark: [RESOLVED]")


def test_generic_payload_for_ladder_and_escalation() -> None:
    ev = LadderEvent("firm-a", "margin_call", "halt", "0.91", T0)
    body = payload(_send(Action.ESCALATED, AlertItem.for_ladder("firm-a", "halt", ev), previous="margin_call"), T0)
    assert (body["event"], body["kind"], body["code"], body["severity"], body["priority"]) == (
        "escalated", "ladder", "ladder", "CRITICAL", "high")
    assert body["title"].startswith("[CRITICAL ↑ from margin_call] client firm-a: ladder margin_call → halt")
    assert body["ladder"]["ltv"] == "0.91" and body["key"] == "ladder:firm-a"


def test_email_and_log_renderings() -> None:
    subject, text, headers = email_parts(_send(item=AlertItem.from_finding(stale())), T0, prefix="[pg]")
    assert subject.startswith("[pg] [INFO] BLIND SPOT: data_stale") and headers["X-Priority"] == "1"
    assert "key: data_stale:okx::okx-1" in text
    assert email_parts(_send(), T0, prefix="")[2] == {}
    line = log_line(_send(item=AlertItem.from_finding(finding(message='say "hi"\nthere'))))
    assert line.startswith("alert event=opened channel=ch severity=HIGH code=key_can_withdraw")
    assert line.endswith('msg="say \\"hi\\" there"')


def test_redaction_keeps_scheme_and_host_only() -> None:
    url = f"https://user:pw-secret@hooks.example.com:8443/services/T0/B0/{CANARY_TOKEN}?token={CANARY_TOKEN}2#frag"
    assert redact_url(url) == "https://hooks.example.com:8443"
    assert redact_url("not a url") == "<invalid url>"
    r = Redactor()
    r.add_url(url)
    r.add("hunter2-password")
    text = f"POST {url} failed; {CANARY_TOKEN}2 seen; login hunter2-password; hooks.example.com ok"
    scrubbed = r.scrub(text)
    assert CANARY_TOKEN not in scrubbed and "pw-secret" not in scrubbed and "hunter2" not in scrubbed
    assert "hooks.example.com ok" in scrubbed
