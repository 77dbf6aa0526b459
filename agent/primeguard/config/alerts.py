"""Alert routing config: channels, their filters and their timing. Strict pydantic, unknown keys rejected.

Attached to the agent config as ``alerts: AlertsConfig = AlertsConfig()``; built on the schema's own
blocks (:mod:`primeguard.config.base`): strict models, identifiers, :class:`SecretRef`.

Example (YAML)::

    alerts:
      channels:
        - {name: ops-log, kind: log, min_severity: info}
        - name: desk-slack
          kind: slack
          url: {env: PRIMEGUARD_SLACK_WEBHOOK}
          min_severity: high
          codes: ["ltv_*", ladder]
          repeat_s: 3600
        - name: risk-email
          kind: email
          host: smtp.example.com
          port: 587
          security: starttls
          from: primeguard@example.com
          to: [risk@example.com]
          username: {env: SMTP_USER}
          password: {env: SMTP_PASSWORD}
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field, PlainValidator, ValidationError, field_validator, model_validator

from primeguard.config.base import Identifier, SecretRef, Strict
from primeguard.domain.findings import FindingCode, Severity


def _secret_ref(value: Any) -> Any:
    """Validate into :class:`SecretRef`, with the error's location in its message."""
    if isinstance(value, SecretRef):
        return value
    try:
        return SecretRef.model_validate(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ValueError(f"{where + ': ' if where else ''}{err['msg'].removeprefix('Value error, ')}") from None


if TYPE_CHECKING:
    SecretRefField = SecretRef
else:
    SecretRefField = Annotated[Any, PlainValidator(_secret_ref)]

LADDER_CODE = "ladder"
"""The code of ladder transitions (see :class:`primeguard.alerts.model.LadderEvent`) in ``codes`` filters."""

KNOWN_CODES: tuple[str, ...] = (*(c.value for c in FindingCode), LADDER_CODE)


def _severity(value: Any) -> Any:
    """Accept ``high``/``HIGH``/``30`` for a :class:`Severity`."""
    if isinstance(value, str) and not value.isdigit():
        try:
            return Severity[value.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in Severity)
            raise ValueError(f"unknown severity {value!r}: use one of {names}") from None
    return value


class _ChannelBase(Strict):
    """What every channel has: routing and timing.

    Routing: an item is sent when its severity is at least ``min_severity`` and its code matches one
    of ``codes`` (shell patterns, ``ltv_*``; empty = every code). Blind spots bypass both filters
    while ``blind_spots`` is true.

    Timing: at most one notice per item and channel per ``cooldown_s`` (escalations excepted); an item
    still open is re-notified every ``repeat_s`` (None: never); a closed item gets a "resolved" notice
    when ``send_resolved`` (after the cooldown, so a flapping item is one episode). A failed delivery
    is retried on later calls after ``retry_s``, doubling per failure up to ``cooldown_s``.
    """

    name: Identifier
    min_severity: Severity = Severity.WARNING
    codes: tuple[str, ...] = ()
    blind_spots: bool = True
    cooldown_s: int = Field(default=900, ge=0, le=7 * 86400)
    repeat_s: int | None = Field(default=None, gt=0, le=30 * 86400)
    send_resolved: bool = True
    retry_s: int = Field(default=60, gt=0, le=86400)

    _sev = field_validator("min_severity", mode="before")(_severity)

    @field_validator("codes")
    @classmethod
    def _known_codes(cls, codes: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in codes:
            if not fnmatch.filter(KNOWN_CODES, pattern):
                close = difflib.get_close_matches(pattern.lower(), KNOWN_CODES, n=3, cutoff=0.6)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise ValueError(f"code pattern {pattern!r} matches no finding code{hint}")
        return codes

    def routes(self, code: str, severity: Severity, *, blind_spot: bool) -> bool:
        """True when an item with this code and severity goes to this channel."""
        if blind_spot and self.blind_spots:
            return True
        if severity < self.min_severity:
            return False
        return not self.codes or any(fnmatch.fnmatchcase(code, p) for p in self.codes)


class LogChannelConfig(_ChannelBase):
    """One structured line per notice on the ``primeguard.alerts`` logger."""

    kind: Literal["log"] = "log"


class WebhookChannelConfig(_ChannelBase):
    """HTTP POST of a JSON body: ``webhook`` = primeguard's generic schema, ``slack`` = a Slack
    incoming-webhook payload (``text`` + ``blocks``). The URL is a secret (it usually holds a token):
    only its scheme and host are ever logged.

    One delivery makes up to ``1 + retries`` requests of at most ``timeout_s`` each, waiting
    ``backoff_s`` doubling (capped at ``max_backoff_s``) between them; 5xx, 429 and network errors
    are retried, other answers are not. Redirects are not followed.
    """

    kind: Literal["webhook", "slack"]
    url: SecretRefField
    timeout_s: float = Field(default=5.0, gt=0, le=60, allow_inf_nan=False)
    retries: int = Field(default=2, ge=0, le=5)
    backoff_s: float = Field(default=0.5, ge=0, le=30, allow_inf_nan=False)
    max_backoff_s: float = Field(default=5.0, ge=0, le=60, allow_inf_nan=False)


class EmailChannelConfig(_ChannelBase):
    """SMTP (standard library ``smtplib`` in a worker thread). ``security``: ``starttls`` upgrades a
    plain connection (default, port 587), ``tls`` is implicit TLS (port 465), ``none`` is plain text
    (local relays and tests only)."""

    kind: Literal["email"]
    host: str = Field(min_length=1)
    port: int = Field(default=587, gt=0, lt=65536)
    security: Literal["none", "starttls", "tls"] = "starttls"
    from_addr: str = Field(alias="from", min_length=3)
    to: tuple[str, ...] = Field(min_length=1)
    username: SecretRefField | None = None
    password: SecretRefField | None = None
    subject_prefix: str = "[primeguard]"
    timeout_s: float = Field(default=10.0, gt=0, le=120, allow_inf_nan=False)
    retries: int = Field(default=1, ge=0, le=5)
    backoff_s: float = Field(default=1.0, ge=0, le=30, allow_inf_nan=False)
    max_backoff_s: float = Field(default=5.0, ge=0, le=60, allow_inf_nan=False)

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="after")
    def _auth_pair(self) -> EmailChannelConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        for addr in (self.from_addr, *self.to):
            if "@" not in addr:
                raise ValueError(f"{addr!r} is not an email address")
        return self


ChannelConfig = Annotated[
    LogChannelConfig | WebhookChannelConfig | EmailChannelConfig, Field(discriminator="kind")
]


class AlertsConfig(Strict):
    """Every channel plus dispatch limits.

    ``dispatch_timeout_s`` bounds one :meth:`Notifier.process` call's deliveries (those still running
    are cancelled and recorded failed); a delivery left ``pending`` by a crash is re-sent once it is
    older than twice that. ``resolve_max_attempts``: failed "resolved" notices are given up after
    this many attempts. With no ``alerts`` section, findings go to one ``log`` channel.
    """

    enabled: bool = True
    channels: tuple[ChannelConfig, ...] = Field(default=(LogChannelConfig(name="log"),), max_length=256)
    dispatch_timeout_s: float = Field(default=30.0, gt=0, le=600, allow_inf_nan=False)
    max_concurrency: int = Field(default=8, gt=0, le=64)
    resolve_max_attempts: int = Field(default=5, gt=0, le=1000)

    @model_validator(mode="after")
    def _unique_names(self) -> AlertsConfig:
        seen: set[str] = set()
        for ch in self.channels:
            if ch.name in seen:
                raise ValueError(f"duplicate channel name {ch.name!r}")
            seen.add(ch.name)
        return self

    def channel(self, name: str) -> LogChannelConfig | WebhookChannelConfig | EmailChannelConfig | None:
        return next((c for c in self.channels if c.name == name), None)
