"""The client is told: the margin-call notice on the client's own route (its webhook, its email
addresses through an alerts email channel's SMTP server), separate from the desk's alert channels.

:func:`notice` builds the notice (pure): the LTV now, the bands, what to post or repay to get back
under the margin-call band, and the deadline. :class:`ClientNotifier` sends it and returns one
delivery record per route; a webhook URL (a secret) appears only as scheme and host.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from primeguard.alerts.channels import USER_AGENT, AlertError, DeliveryError, EmailSender, WebhookSender
from primeguard.alerts.redact import Redactor
from primeguard.config.alerts import EmailChannelConfig, WebhookChannelConfig
from primeguard.config.loader import resolve_secret
from primeguard.config.schema import ClientConfig, PrimeguardConfig
from primeguard.playbooks.words import dollars, percent

NOTICE_SCHEMA = "primeguard.margin_call/1"


def notice(client: ClientConfig, params: Mapping[str, Any]) -> dict[str, Any]:
    """The margin-call notice for ``client`` from an action's figures (``ltv``, ``bands``,
    ``cure_below``, ``post_usd``, ``repay_usd``, ``deadline``): exact strings plus ``text`` for people."""
    bands = dict(params.get("bands") or {})
    name = client.name or client.id
    lines = [f"Margin call for {name}: the loan-to-value of your account is {percent(params.get('ltv'))}, "
             f"at or above the margin-call band of {percent(bands.get('margin_call'))}."]
    if params.get("post_usd") is not None:
        lines.append(f"To cure it, bring the LTV under {percent(params.get('cure_below'))}: post collateral worth "
                     f"at least {dollars(params.get('post_usd'))} after haircuts, or repay / reduce the loan by at "
                     f"least {dollars(params.get('repay_usd'))}.")
    if params.get("deadline"):
        lines.append(f"Deadline: {params['deadline']}. If the LTV is not under {percent(params.get('cure_below'))} "
                     f"by then, trading is halted (API keys disabled, orders cancelled, vaults paused).")
    lines.append(f"Bands: warn {percent(bands.get('warn'))}, margin call {percent(bands.get('margin_call'))}, "
                 f"halt {percent(bands.get('halt'))}, liquidation {percent(bands.get('liquidate'))}.")
    return {
        "schema": NOTICE_SCHEMA, "client_id": client.id, "client_name": name, "ltv": params.get("ltv"),
        "bands": bands, "cure_below": params.get("cure_below"), "post_usd": params.get("post_usd"),
        "repay_usd": params.get("repay_usd"), "deadline": params.get("deadline"), "text": " ".join(lines),
    }


class ClientNotifier:
    """Sends notices on each client's route (config ``clients[].contacts``). Secrets are resolved
    when a notice is sent and registered with the redactor; nothing returned or raised holds them."""

    def __init__(self, cfg: PrimeguardConfig, *, base_dir: Path | None = None) -> None:
        self.cfg = cfg
        self.base_dir = base_dir
        self.redactor = Redactor()

    def client(self, client_id: str) -> ClientConfig:
        found = next((c for c in self.cfg.clients if c.id == client_id), None)
        if found is None:
            raise AlertError(f"client {client_id} is not in the config")
        return found

    async def send(self, client_id: str, body: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
        """Deliver ``body`` (a :func:`notice`) on every route of the client; one record per route:
        ``{"route", "to", "ok", "attempts", "error"}`` (``to``: scheme and host, or the addresses).

        Raises:
            AlertError: the client has no contacts (it cannot be told: someone must call it).
        """
        client = self.client(client_id)
        contacts = client.contacts
        if contacts is None or (contacts.webhook is None and not contacts.email):
            raise AlertError(f"client {client_id} has no contacts in the config: tell it by hand")
        jobs = []
        if contacts.webhook is not None:
            jobs.append(self._webhook(client, body))
        if contacts.email:
            jobs.append(self._email(client, body, now))
        return list(await asyncio.gather(*jobs))

    async def _webhook(self, client: ClientConfig, body: Mapping[str, Any]) -> dict[str, Any]:
        assert client.contacts is not None and client.contacts.webhook is not None
        record: dict[str, Any] = {"route": "webhook", "to": "<unresolved>", "ok": False, "attempts": 0,
                                  "error": None}
        try:
            url = resolve_secret(client.contacts.webhook, base_dir=self.base_dir)
            self.redactor.add_url(url)
            sender = WebhookSender(WebhookChannelConfig(name=f"client-{client.id}", kind="webhook",
                                                        url=client.contacts.webhook), url, self.redactor)
            record["to"] = sender.safe_url
            async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as http:
                record["attempts"] = await sender.post(dict(body), http)
            record["ok"] = True
        except DeliveryError as exc:
            record["attempts"], record["error"] = exc.attempts, str(exc)
        except Exception as exc:  # a bad secret or URL: reported, never with its value
            record["error"] = self.redactor.scrub(f"{type(exc).__name__}: {exc}")
        return record

    async def _email(self, client: ClientConfig, body: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        assert client.contacts is not None
        to = tuple(client.contacts.email)
        record: dict[str, Any] = {"route": "email", "to": ", ".join(to), "ok": False, "attempts": 0, "error": None}
        channel = self.cfg.alerts.channel(client.contacts.email_via or "")
        try:
            if not isinstance(channel, EmailChannelConfig):
                raise AlertError(f"email_via {client.contacts.email_via!r} is not an alerts email channel")
            user = resolve_secret(channel.username, base_dir=self.base_dir) if channel.username else None
            password = resolve_secret(channel.password, base_dir=self.base_dir) if channel.password else None
            sender = EmailSender(channel, user, password, self.redactor)
            msg = sender.compose(f"{channel.subject_prefix} Margin call: {body.get('client_name')}",
                                 str(body.get("text", "")), to, now)
            record["attempts"] = await sender.send_message(msg)
            record["ok"] = True
        except DeliveryError as exc:
            record["attempts"], record["error"] = exc.attempts, str(exc)
        except Exception as exc:
            record["error"] = self.redactor.scrub(f"{type(exc).__name__}: {exc}")
        return record
