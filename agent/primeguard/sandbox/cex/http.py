"""The HTTP plumbing every CEX simulator shares: request capture, fault injection, dispatch.

A venue module supplies its endpoints (method, path, auth requirement, permission, handler) and
how it words errors; :class:`VenueApp` does the rest. Handlers are plain functions that run under
the venue's state lock and return a :class:`SimResponse`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import parse_qsl

from aiohttp import web

from primeguard.sandbox.cex.state import SANDBOX_IP, SimAccount, SimKey, VenueState


@dataclass(frozen=True)
class SimRequest:
    method: str
    path: str
    raw_query: str
    body: str
    headers: Mapping[str, str]
    remote: str
    params: dict[str, str]  # query (and form body) parameters, decoded
    json_body: Any = None  # decoded JSON body (OKX, Bybit POSTs)

    def param(self, name: str, default: str | None = None) -> str | None:
        value = self.params.get(name)
        if value is None and isinstance(self.json_body, dict):
            raw = self.json_body.get(name)
            value = None if raw is None else (str(raw).lower() if isinstance(raw, bool) else str(raw))
        return default if value is None else value


@dataclass
class SimResponse:
    status: int
    body: Any  # JSON-able, or str for a raw body
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Callable[..., SimResponse]
    auth: bool = False  # signed endpoint: needs a valid key and signature
    # read | spot | futures | trade (any trading) | withdraw | master (a master-account key) | keys (a
    # master-account key allowed to manage sub-account keys) | transfer (internal or universal transfer)
    perm: str | None = None


class VenueRules(Protocol):
    """What a venue module provides to :class:`VenueApp`."""

    venue: str
    endpoints: tuple[Endpoint, ...]

    def authenticate(self, state: VenueState, req: SimRequest) -> SimKey | SimResponse: ...

    def denied(self, state: VenueState, req: SimRequest, key: SimKey, perm: str) -> SimResponse: ...

    def not_found(self, req: SimRequest) -> SimResponse: ...

    def rate_limited(self, retry_after_s: int) -> SimResponse: ...


WRITE_PERMS = frozenset({"spot", "futures", "trade", "withdraw", "transfer"})
TRADE_PERMS = frozenset({"spot", "margin", "futures", "options"})


def has_perm(key: SimKey, acct: SimAccount, perm: str | None) -> bool:
    if perm is None:
        return True
    if perm == "master":
        return acct.is_master
    if perm == "keys":
        return acct.is_master and "manage_keys" in key.perms
    if perm == "transfer":
        return bool(key.perms & {"internal_transfer", "universal_transfer"})
    if perm == "trade":
        return bool(key.perms & TRADE_PERMS)
    return perm in key.perms


def d(value: Decimal | int | None, places: int | None = None) -> str:
    """A venue-style decimal string (no exponent)."""
    if value is None:
        return ""
    v = Decimal(value)
    if places is not None:
        return f"{v.quantize(Decimal(1).scaleb(-places)):f}"
    text = f"{v.normalize():f}" if v != 0 else "0"
    return text


class VenueApp:
    """One venue's aiohttp application: counting, faults, auth, dispatch."""

    def __init__(self, state: VenueState, rules: VenueRules) -> None:
        self.state = state
        self.rules = rules
        self.routes = {(e.method, e.path): e for e in rules.endpoints}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def _fault(self, path: str) -> str | None:
        """Decide (under the lock, deterministically) which fault hits this request."""
        f = self.state.faults
        if f.only_paths and not any(p in path for p in f.only_paths):
            return None
        if f.down:
            return "down"
        self.state.fault_counter += 1
        rng = self.state.fault_rng
        if f.rate_limit_every and self.state.fault_counter % f.rate_limit_every == 0:
            return "rate_limit"
        if f.timeout_rate and rng.random() < f.timeout_rate:
            return "timeout"
        if f.error_5xx_rate and rng.random() < f.error_5xx_rate:
            return "5xx"
        if f.malformed_rate and rng.random() < f.malformed_rate:
            return "malformed"
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        raw_query = request.rel_url.raw_query_string
        path = request.rel_url.raw_path
        params: dict[str, str] = dict(parse_qsl(raw_query, keep_blank_values=True))
        ctype = request.headers.get("Content-Type", "")
        json_body: Any = None
        if body and "json" in ctype:
            try:
                json_body = json.loads(body)
            except ValueError:
                json_body = None
        elif body:
            params.update(parse_qsl(body, keep_blank_values=True))
        req = SimRequest(request.method, path, raw_query, body, request.headers, request.remote or SANDBOX_IP,
                         params, json_body)
        with self.state.lock:
            self.state.requests += 1
            self.state.by_path[f"{request.method} {path}"] += 1
            fault = self._fault(path)
            faults = self.state.faults
        if fault == "down":
            return web.Response(status=503, text="<html><body><h1>503 Service Unavailable</h1></body></html>",
                                content_type="text/html")
        if faults.latency_ms and (not faults.only_paths or any(p in path for p in faults.only_paths)):
            await asyncio.sleep(faults.latency_ms / 1000)
        if fault == "rate_limit":
            return self._send(self.rules.rate_limited(faults.retry_after_s))
        if fault == "timeout":
            await asyncio.sleep(faults.timeout_s)
        elif fault == "5xx":
            return web.Response(status=502, text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                                content_type="text/html")
        elif fault == "malformed":
            return web.Response(status=200, text='{"code":0,"data":[{"ccy":"USDT","bal',
                                content_type="application/json")
        return self._send(self.dispatch(req))

    def dispatch(self, req: SimRequest) -> SimResponse:
        ep = self.routes.get((req.method, req.path))
        if ep is None:
            return self.rules.not_found(req)
        with self.state.lock:
            if not ep.auth:
                return ep.handler(self.state, req)
            key = self.rules.authenticate(self.state, req)
            if isinstance(key, SimResponse):
                return key
            acct = self.state.account_of(key)
            writes = ep.perm in WRITE_PERMS
            if not has_perm(key, acct, ep.perm) or (writes and (acct.frozen or key.expired(self.state.server_ms()))):
                return self.rules.denied(self.state, req, key, ep.perm or "")
            return ep.handler(self.state, req, key)

    @staticmethod
    def _send(resp: SimResponse) -> web.Response:
        if isinstance(resp.body, str):
            return web.Response(status=resp.status, text=resp.body, headers=resp.headers,
                                content_type="application/json" if resp.body[:1] in "{[" else "text/plain")
        return web.Response(status=resp.status, text=json.dumps(resp.body, separators=(",", ":")),
                            headers=resp.headers, content_type="application/json")
