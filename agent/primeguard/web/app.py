"""The FastAPI application: JSON API under ``/api`` (OpenAPI at ``/openapi.json``) and the
server-rendered dashboard (:mod:`primeguard.web.pages`).

    app = create_app(store, withdrawals=service, playbook=playbook, policy_dir=Path("policies"))

The web layer reads the store and writes only through the owning modules (playbook engine, policy
versions, withdrawal service), which write through the store's repositories. Roles:

=============  =====  ===============  =============  ===================  ===================
role           read   approve action   approve policy  request withdrawal  approve withdrawal
=============  =====  ===============  =============  ===================  ===================
viewer         yes
treasury       yes                                     yes                  yes (not own)
compliance     yes    yes              yes (not own)                        yes (not own)
admin          yes    yes                                                   yes (not own)
=============  =====  ===============  =============  ===================  ===================

Treasury, compliance and admin users may also record a client's margin-call acknowledgement.
"""

from __future__ import annotations

import logging
import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from primeguard.domain.errors import InputError, PrimeguardError, StoreError
from primeguard.store.db import Store
from primeguard.web import commands, pages, queries
from primeguard.web.auth import ROLE_PERMS, AuthMiddleware, Perm, SessionStore, is_api_path, principal_of
from primeguard.web.context import WebContext, ctx_of
from primeguard.web.errors import WebError
from primeguard.web.html import Safe, e, layout

if TYPE_CHECKING:
    from primeguard.custody.destinations import Destinations
    from primeguard.custody.withdrawals import WithdrawalService
    from primeguard.playbooks.engine import Playbook

log = logging.getLogger(__name__)

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")


# --- API shapes --------------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    error: str = Field(description="stable code: unauthenticated, forbidden_role, self_approval, not_found, ...")
    message: str


class WithdrawalRequestBody(BaseModel):
    """A withdrawal out of a configured vault. ``amount`` is a decimal string in whole units."""

    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(min_length=1, max_length=128, description="the vault's account id")
    asset: str = Field(min_length=1, max_length=32, examples=["USDC"])
    amount: str = Field(min_length=1, max_length=64, examples=["150000.00"])
    destination: str = Field(min_length=1, max_length=128, examples=["0x4b280EdCc946EAA52913262F098391Af6aA31751"])


class AckBody(BaseModel):
    """A client's acknowledgement of its margin call, as the desk heard it."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000, examples=["acknowledged by phone; will post USDC today"])


class DestinationBody(BaseModel):
    """A withdrawal destination to propose (a policy version adding it; a second compliance user
    approves). ``expires_at``: ISO time with a zone, default one year."""

    model_config = ConfigDict(extra="forbid")

    client: str = Field(min_length=1, max_length=128)
    address: str = Field(min_length=1, max_length=128, examples=["0x4b280EdCc946EAA52913262F098391Af6aA31751"])
    assets: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(min_length=1, max_length=32,
                                                                              examples=[["USDC"]])
    label: str = Field(min_length=1, max_length=200)
    venue: str = Field(default="evm", min_length=1, max_length=32)
    chain: str = Field(default="ethereum", min_length=1, max_length=64)
    expires_at: AwareDatetime | None = None
    entry_id: str | None = Field(default=None, min_length=1, max_length=128)


class WithdrawalStateFilter(StrEnum):
    requested = "requested"
    approved = "approved"
    denied = "denied"
    signed = "signed"
    broadcast = "broadcast"
    confirmed = "confirmed"
    failed = "failed"


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {401: "no or unknown bearer token", 403: "role not allowed, or four eyes (self_approval)",
            404: "not found", 409: "not pending any more / illegal transition", 422: "invalid input",
            503: "service not configured or store unavailable"}
    return {c: {"model": ErrorBody, "description": text[c]} for c in codes}


Id = Annotated[str, PathParam(min_length=1, max_length=200)]
bearer = HTTPBearer(auto_error=False, description="a primeguard user token (repos.create_user)")


def build_api() -> APIRouter:
    api = APIRouter(prefix="/api", dependencies=[Depends(bearer)], responses=_responses(401))

    @api.get("/me", summary="Who the token belongs to and what it may do")
    def me(request: Request) -> dict[str, Any]:
        who = principal_of(request)
        return {"name": who.name, "role": who.role, "permissions": sorted(p.value for p in ROLE_PERMS[who.role])}

    @api.get("/overview", summary="Per client: latest LTV, ladder state, equity, loan, bands, blind flag")
    def overview(request: Request) -> dict[str, Any]:
        principal_of(request).require(Perm.READ)
        return queries.overview(ctx_of(request).store)

    @api.get("/clients/{client_id}", summary="One client: history, latest snapshots, findings, stress",
             responses=_responses(404))
    def client(request: Request, client_id: Id,
               days: Annotated[int, Query(ge=1, le=90, description="history before the latest point")] = 3,
               ) -> dict[str, Any]:
        principal_of(request).require(Perm.READ)
        ctx = ctx_of(request)
        policy, _, _ = queries.policy_in_force(ctx.store, policy_dir=ctx.policy_dir, cache=ctx.policy_cache)
        data = queries.client_detail(ctx.store, client_id, days=days, policy=policy)
        if data is None:
            raise WebError("not_found", f"no data about client {client_id}")
        return data

    @api.get("/capabilities", summary="Open capability findings (violations first) and credentials seen")
    def capabilities(request: Request) -> dict[str, Any]:
        principal_of(request).require(Perm.READ)
        return queries.capabilities(ctx_of(request).store)

    @api.get("/timeline", summary="Alerts, playbook actions and audit entries, newest first")
    def timeline(request: Request, limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 50,
                 offset: Annotated[int, Query(ge=0, le=queries.MAX_WINDOW - queries.MAX_PAGE)] = 0) -> dict[str, Any]:
        principal_of(request).require(Perm.READ)
        return queries.timeline(ctx_of(request).store, limit=limit, offset=offset)

    @api.post("/actions/{action_id}/approve", summary="Approve a proposed playbook action (compliance, admin)",
              responses=_responses(403, 404, 409))
    def approve_action(request: Request, action_id: Id) -> dict[str, Any]:
        ctx = ctx_of(request)
        return commands.approve_action(ctx.playbook, ctx.store, principal_of(request), action_id)

    @api.post("/clients/{client_id}/ack",
              summary="Record the client's acknowledgement of its margin call (treasury, compliance, admin); "
                      "the deadline stands", responses=_responses(403, 404, 422))
    def acknowledge(request: Request, client_id: Id, body: AckBody) -> dict[str, Any]:
        return commands.acknowledge_margin_call(ctx_of(request).store, principal_of(request), client_id,
                                                note=body.note)

    @api.get("/policy", summary="The policy in force and pending proposals with their effect in words")
    def policy(request: Request) -> dict[str, Any]:
        principal_of(request).require(Perm.READ)
        ctx = ctx_of(request)
        return queries.policy_view(ctx.store, policy_dir=ctx.policy_dir, cache=ctx.policy_cache)

    @api.post("/policy/{policy_hash}/approve", summary="Approve and activate a proposal (compliance, not proposer)",
              responses=_responses(403, 404, 409, 422))
    def approve_policy(request: Request, policy_hash: Id) -> dict[str, Any]:
        return commands.approve_policy(ctx_of(request).store, principal_of(request), policy_hash)

    @api.get("/destinations", summary="Destinations: policy state and timelock, each vault's on-chain state, "
                                      "venue address books (venues=true), screening; pending proposals",
             responses=_responses(503))
    def list_destinations(request: Request, venues: bool = False) -> dict[str, Any]:
        principal_of(request).require(Perm.READ)
        return queries.destinations(ctx_of(request).destinations, venues=venues)

    @api.post("/destinations", status_code=201, summary="Screen and propose a destination (compliance, admin)",
              responses=_responses(403, 422, 503))
    def propose_destination(request: Request, body: DestinationBody) -> dict[str, Any]:
        return commands.propose_destination(ctx_of(request).destinations, principal_of(request), client=body.client,
                                            venue=body.venue, chain=body.chain, assets=body.assets,
                                            address=body.address, label=body.label, expires_at=body.expires_at,
                                            entry_id=body.entry_id)

    @api.post("/destinations/{policy_hash}/approve",
              summary="Approve a destination proposal (compliance, not the proposer) and propose it to the vaults",
              responses=_responses(403, 404, 409, 422, 503))
    def approve_destinations(request: Request, policy_hash: Id) -> dict[str, Any]:
        ctx = ctx_of(request)
        return commands.approve_destinations(ctx.destinations, ctx.store, principal_of(request), policy_hash)

    @api.get("/withdrawals", summary="Withdrawals, newest first, with approvals and the latest decision")
    def list_withdrawals(request: Request, state: WithdrawalStateFilter | None = None,
                         limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 100) -> dict[str, Any]:
        principal_of(request).require(Perm.READ)
        items = queries.withdrawals(ctx_of(request).store, limit=limit, state=state.value if state else None)
        return {"items": items}

    @api.post("/withdrawals", status_code=201, summary="Request a withdrawal (treasury); the policy decides at once",
              responses=_responses(403, 422, 503))
    def request_withdrawal(request: Request, body: WithdrawalRequestBody) -> dict[str, Any]:
        return commands.request_withdrawal(ctx_of(request).withdrawals, principal_of(request),
                                           account_id=body.account_id, asset=body.asset, amount=body.amount,
                                           destination=body.destination)

    @api.get("/withdrawals/{withdrawal_id}", summary="One withdrawal", responses=_responses(404))
    def get_withdrawal(request: Request, withdrawal_id: Id) -> dict[str, Any]:
        principal_of(request).require(Perm.READ)
        data = queries.withdrawal(ctx_of(request).store, withdrawal_id)
        if data is None:
            raise WebError("not_found", f"withdrawal {withdrawal_id} not found")
        return data

    @api.post("/withdrawals/{withdrawal_id}/approve",
              summary="Approve a requested withdrawal (treasury, compliance, admin; never the requester)",
              responses=_responses(403, 404, 409, 503))
    def approve_withdrawal(request: Request, withdrawal_id: Id) -> dict[str, Any]:
        ctx = ctx_of(request)
        return commands.approve_withdrawal(ctx.withdrawals, ctx.store, principal_of(request), withdrawal_id)

    return api


# --- middleware and errors ---------------------------------------------------------------------------------


class SecurityHeaders:
    """Adds CSP, no-sniff, no-framing, no-referrer and no-store to every response."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                         (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"),
                         (b"cross-origin-opener-policy", b"same-origin")]
                if not static and b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                if self.hsts:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers + [(k, v) for k, v in extra if k not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Request bounds. The API's largest body (a withdrawal request) is well under 1 KiB; pages send
# small url-encoded forms. Headers and URLs are bounded too, below uvicorn's own bound on the request
# head (``h11_max_incomplete_event_size``, 32 KiB in web/server.py), so the refusal is a JSON error.
MAX_JSON_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADER_COUNT = 100
MAX_URL_BYTES = 8 * 1024
# Query parameters that would carry a credential. A token in a URL ends up in access logs, browser
# history and proxies, so such a request is refused (never authenticated), whatever the path.
CREDENTIAL_PARAMS = frozenset({"token", "access_token", "bearer", "auth", "authorization", "api_key", "apikey",
                               "key", "secret", "password", "session", "session_id", "sid", "pg_session"})
_QUERY_NAME = re.compile(r"(?:^|&)([^=&]*)")


def credential_params(query_string: bytes) -> list[str]:
    """The names of credential-like parameters in a raw query string (percent-decoded, lower case)."""
    names = (unquote_plus(m.group(1)).strip().lower() for m in _QUERY_NAME.finditer(query_string.decode("latin-1")))
    return sorted({n for n in names if n in CREDENTIAL_PARAMS})


def _bounds_error(scope: Scope, err: WebError) -> Any:
    return _error_response(Request(scope), err)


class RequestBounds:
    """Outermost checks, before authentication: URL and header sizes (414/431) and no credential
    in the query string (400 ``token_in_query``; the request is never authenticated)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        err: WebError | None = None
        headers = scope.get("headers", [])
        if len(scope.get("raw_path", b"") or scope["path"].encode()) + len(query) > MAX_URL_BYTES:
            err = WebError("uri_too_long", f"the URL is longer than {MAX_URL_BYTES} bytes", status=414)
        elif len(headers) > MAX_HEADER_COUNT or sum(len(k) + len(v) for k, v in headers) > MAX_HEADER_BYTES:
            err = WebError("headers_too_large", f"request headers exceed {MAX_HEADER_COUNT} fields or "
                                                f"{MAX_HEADER_BYTES} bytes", status=431)
        elif found := credential_params(query):
            log.warning("request to %s refused: credential in the query string (%s)", scope["path"],
                        ", ".join(found))
            err = WebError("token_in_query", "credentials are never accepted in the URL; send "
                                             "Authorization: Bearer <token> (API) or sign in at /login (pages)",
                           status=400)
        if err is not None:
            await _bounds_error(scope, err)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """Bounds every request body: ``MAX_JSON_BYTES`` on the API, ``MAX_FORM_BYTES`` on pages.

    A declared Content-Length over the limit is refused before reading; otherwise the body is read
    here, counting bytes as they stream (chunked bodies have no Content-Length), and refused as soon
    as it passes the limit: 413 ``payload_too_large`` and the route never runs, so nothing is
    written. An accepted body is replayed to the app unchanged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = MAX_JSON_BYTES if is_api_path(scope["path"]) else pages.MAX_FORM_BYTES
        too_large = WebError("payload_too_large", f"the request body is larger than {limit} bytes")
        declared = [v for k, v in scope.get("headers", []) if k.lower() == b"content-length"]
        if declared:
            if len(declared) > 1 or not declared[0].strip().isdigit():
                err = WebError("invalid_input", "invalid Content-Length header", status=400)
                await _bounds_error(scope, err)(scope, receive, send)
                return
            if int(declared[0]) > limit:
                await _bounds_error(scope, too_large)(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _bounds_error(scope, too_large)(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _error_response(request: Request, err: WebError) -> Any:
    if is_api_path(request.url.path):
        headers = {"WWW-Authenticate": 'Bearer realm="primeguard"'} if err.status == 401 else None
        return JSONResponse(err.json(), status_code=err.status, headers=headers)
    who = getattr(request.state, "principal", None)
    body = Safe(f'<div class="flash flash-error" role="alert">{e(err.message)} ({e(err.code)})</div>'
                '<p><a href="/">Back to the overview</a></p>')
    return HTMLResponse(layout("Error" if err.status != 404 else "Not found", body, user=who), status_code=err.status)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(WebError)
    async def web_error(request: Request, exc: WebError) -> Any:
        return _error_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Any:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {404: "no such route", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return _error_response(request, WebError(code, message, status=exc.status_code))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Any:
        details = [{"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
                   for err in exc.errors()]  # the input itself is never echoed
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(x) for x in first["loc"])
        if is_api_path(request.url.path):
            return JSONResponse({"error": "invalid_input", "message": f"{where}: {first['msg']}", "details": details},
                                status_code=422)
        return _error_response(request, WebError("invalid_input", f"{where}: {first['msg']}"))

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> Any:
        return _error_response(request, WebError("invalid_input", str(exc)))

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> Any:
        log.error("store error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return _error_response(request, WebError("store_unavailable", "the store is unavailable; try again"))

    @app.exception_handler(PrimeguardError)
    async def primeguard_error(request: Request, exc: PrimeguardError) -> Any:
        log.warning("%s on %s %s: %s", type(exc).__name__, request.method, request.url.path, exc)
        return _error_response(request, WebError("unavailable", str(exc)))


# --- the app ---------------------------------------------------------------------------------------------------


def create_app(
    store: Store,
    *,
    withdrawals: WithdrawalService | None = None,
    playbook: Playbook | None = None,
    policy_dir: Path | None = None,
    secure_cookies: bool = False,
    sessions: SessionStore | None = None,
    destinations: Destinations | None = None,
) -> FastAPI:
    """Build the web app over an open store.

    Args:
        store: the store the daemon writes (open, migrated).
        withdrawals: the withdrawal service (policy decider + context); None disables requests and
            approvals of withdrawals (503 ``withdrawals_unavailable``); listing still works.
        playbook: the playbook engine used to approve actions (default: one without levers; the
            daemon executes approved actions).
        policy_dir: the configured policy directory, in force while the store has no active version.
        secure_cookies: mark cookies ``Secure`` and send HSTS (set behind TLS).
        sessions: the page session store (default: a new in-memory one).
        destinations: the destination lifecycle (list, propose, approve and push to the vaults);
            None answers those routes with 503 ``destinations_unavailable``.
    """
    from primeguard.playbooks.engine import Playbook

    app = FastAPI(title="primeguard", version="1", docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None,
                  description="Custody and wallet-policy agent: collateral, capabilities, playbook actions, policy "
                              "versions and withdrawals. Every route needs `Authorization: Bearer <token>`.")
    sessions = sessions or SessionStore()
    app.state.ctx = WebContext(store=store, sessions=sessions, playbook=playbook or Playbook(store, {}),
                               withdrawals=withdrawals, policy_dir=Path(policy_dir) if policy_dir else None,
                               secure_cookies=secure_cookies, destinations=destinations)
    _install_handlers(app)
    app.include_router(build_api())
    app.include_router(pages.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    # Outermost last: SecurityHeaders → RequestBounds → AuthMiddleware → BodyLimit → routes.
    # Bodies are read only for authenticated requests (and the public login form).
    app.add_middleware(BodyLimit)
    app.add_middleware(AuthMiddleware, store=store, sessions=sessions)
    app.add_middleware(RequestBounds)
    app.add_middleware(SecurityHeaders, hsts=secure_cookies)
    return app
