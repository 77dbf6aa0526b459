"""Who is asking, and may they: bearer tokens for the API, server-side sessions for the pages.

- **API** (``/api/*``, ``/openapi.json``): ``Authorization: Bearer <token>`` on every request,
  checked against the store (``repos.authenticate``: sha256 of the token, constant-time compare).
  Cookies are ignored there, so the API cannot be driven cross-site (no CSRF surface).
- **Pages**: ``POST /login`` takes the token once and sets an ``HttpOnly; SameSite=Strict`` cookie
  holding a random session id. The server keeps ``sha256(session id) -> (user, role, token hash,
  CSRF token)`` in memory; the token itself is never kept, echoed or logged. Every request re-reads
  the user: a revoked user or a rotated token ends the session at once. Sessions expire after
  30 min idle and 12 h in all.
- **CSRF**: each session has a random CSRF token, put in a hidden ``csrf`` field of every form and
  checked (constant time) on every POST; the login form uses a short-lived double-submit cookie.
- Authentication runs in :class:`AuthMiddleware`, before routing and body parsing, so a request
  without credentials gets 401 whatever its path or body.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from primeguard.domain.errors import AuthenticationError, StoreError
from primeguard.domain.identity import ROLE_PERMS, Actor, Perm, roles_with
from primeguard.store import identity, repos
from primeguard.store.db import Store
from primeguard.web.errors import WebError

log = logging.getLogger(__name__)

SESSION_COOKIE = "pg_session"
LOGIN_COOKIE = "pg_login"  # double-submit CSRF token of the login form
MAX_TOKEN_LENGTH = 512
PUBLIC_PATHS = frozenset({"/login", "/healthz", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user (as the store knows it). ``via``: ``bearer`` (API) or ``session`` (pages).
    Four-eyes checks compare :attr:`user_id`."""

    user_id: int
    name: str
    role: str
    via: str

    @property
    def actor(self) -> Actor:
        return Actor(self.user_id, self.name, self.role)

    def can(self, perm: Perm) -> bool:
        return perm in ROLE_PERMS.get(self.role, frozenset())

    def require(self, perm: Perm) -> None:
        """Raises: WebError ``forbidden_role``."""
        if not self.can(perm):
            allowed = ", ".join(roles_with(perm))
            raise WebError("forbidden_role", f"{self.name} ({self.role}) may not {perm.value.replace('_', ' ')}; "
                                             f"roles allowed: {allowed}")


__all__ = ["ROLE_PERMS", "Perm", "Principal", "roles_with"]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# --- sessions ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class WebSession:
    user_id: int
    user: str
    role: str
    token_hash: str  # the user's token hash at login: a rotated token ends the session
    csrf: str
    created: float
    seen: float
    flash: list[tuple[str, str]] = field(default_factory=list)  # (level, text) shown once


class SessionStore:
    """In-memory sessions keyed by sha256(session id). Thread-safe; bounded (oldest evicted)."""

    def __init__(self, *, idle_s: float = 1800, absolute_s: float = 43200, max_sessions: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: OrderedDict[str, WebSession] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, user_id: int, user: str, role: str, token_hash: str) -> str:
        """A new session; returns the session id (the cookie value)."""
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._sessions[_digest(sid)] = WebSession(user_id, user, role, token_hash, secrets.token_urlsafe(32),
                                                      now, now)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return sid

    def get(self, sid: str | None) -> WebSession | None:
        if not sid or len(sid) > 128:
            return None
        key = _digest(sid)
        now = self.clock()
        with self._lock:
            sess = self._sessions.get(key)
            if sess is None:
                return None
            if now - sess.seen > self.idle_s or now - sess.created > self.absolute_s:
                del self._sessions[key]
                return None
            sess.seen = now
            self._sessions.move_to_end(key)
            return sess

    def drop(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                self._sessions.pop(_digest(sid), None)

    def drop_user(self, user_id: int) -> None:
        with self._lock:
            for key in [k for k, s in self._sessions.items() if s.user_id == user_id]:
                del self._sessions[key]

    def __len__(self) -> int:
        return len(self._sessions)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def check_csrf(session: WebSession, form: dict[str, str]) -> None:
    """Raises: WebError ``csrf`` when the form's token is missing or wrong."""
    if not csrf_ok(session.csrf, form.get("csrf")):
        raise WebError("csrf", "missing or invalid CSRF token: reload the page and try again")


# --- authentication -------------------------------------------------------------------------------


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return token


def authenticate_token(store: Store, token: str | None) -> tuple[Principal, str] | None:
    """``(principal, token hash)`` for an active user's token, else None (one resolver for the web
    and the CLI: :func:`primeguard.store.identity.resolve_token`)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    with store.session(readonly=True) as s:
        try:
            actor = identity.resolve_token(s, token)
        except AuthenticationError:
            return None
        return Principal(actor.user_id, actor.name, actor.role, "bearer"), repos.hash_token(token.strip())


def session_still_valid(store: Store, sess: WebSession) -> bool:
    """The user is still active, with the same role and token, as at login."""
    with store.session(readonly=True) as s:
        user = identity.user_by_id(s, sess.user_id)
    return (user is not None and user.revoked_at is None and user.role == sess.role
            and hmac.compare_digest(user.token_hash.encode(), sess.token_hash.encode()))


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/") or path == "/openapi.json"


def is_public_path(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def unauthenticated_json(message: str) -> JSONResponse:
    return JSONResponse({"error": "unauthenticated", "message": message}, status_code=401,
                        headers={"WWW-Authenticate": 'Bearer realm="primeguard"', "Cache-Control": "no-store"})


class AuthMiddleware:
    """Authenticates every request before routing; sets ``request.state.principal``
    (and ``request.state.web_session`` / ``session_id`` for pages)."""

    def __init__(self, app: ASGIApp, *, store: Store, sessions: SessionStore) -> None:
        self.app = app
        self.store = store
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        state = scope.setdefault("state", {})
        if is_public_path(path):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            if is_api_path(path):
                response = await self._api(request, state)
            else:
                response = await self._page(request, state)
        except StoreError:
            log.error("authentication failed: the store is unavailable")
            response = JSONResponse({"error": "store_unavailable", "message": "the store is unavailable"}, 503)
        if response is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _api(self, request: Request, state: dict[str, Any]) -> Response | None:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            return unauthenticated_json("send Authorization: Bearer <token>")
        found = await run_in_threadpool(authenticate_token, self.store, token)
        if found is None:
            log.info("API request with an unknown or revoked token from %s", _client(request))
            return unauthenticated_json("unknown or revoked token")
        state["principal"] = found[0]
        return None

    async def _page(self, request: Request, state: dict[str, Any]) -> Response | None:
        sid = request.cookies.get(SESSION_COOKIE)
        sess = self.sessions.get(sid)
        if sess is not None and not await run_in_threadpool(session_still_valid, self.store, sess):
            log.info("session of %s ended: user revoked or token rotated", sess.user)
            self.sessions.drop(sid)
            sess = None
        if sess is None:
            if request.method in ("GET", "HEAD"):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response: Response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            else:
                response = HTMLResponse("<!doctype html><title>Sign in</title><p>Sign in first: "
                                        "<a href=\"/login\">/login</a></p>", status_code=401)
            if sid:
                response.delete_cookie(SESSION_COOKIE, path="/")
            return response
        state["principal"] = Principal(sess.user_id, sess.user, sess.role, "session")
        state["web_session"] = sess
        state["session_id"] = sid
        return None


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def principal_of(request: Request) -> Principal:
    """The authenticated user (the middleware guarantees one on every non-public route)."""
    p = getattr(request.state, "principal", None)
    if not isinstance(p, Principal):  # pragma: no cover - a public route asking for a user
        raise WebError("unauthenticated", "not signed in")
    return p


def safe_next(target: str | None) -> str:
    """A local path to go to after login (never another site)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 32 for c in target):
        return "/"
    return target
