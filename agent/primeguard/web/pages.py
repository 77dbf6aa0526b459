"""The dashboard: server-rendered pages over the same read models as the API (no JavaScript).

Form POSTs need a signed-in session (else 401) and the session's CSRF token (else 403); on success
they redirect (303) to the page with a one-time message, on refusal they render the page again
with the error and the refusal's HTTP status.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from primeguard.web import commands, queries
from primeguard.web.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Perm,
    Principal,
    WebSession,
    authenticate_token,
    check_csrf,
    csrf_ok,
    principal_of,
    safe_next,
)
from primeguard.web.context import WebContext, ctx_of
from primeguard.web.errors import WebError
from primeguard.web.html import (
    Safe,
    badge,
    card,
    cards_row,
    csrf_field,
    e,
    join,
    layout,
    ltv_bar,
    ltv_chart,
    pct,
    post_button,
    qty,
    section,
    short,
    table,
    usd,
    when,
)

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
CSS_PATH = Path(__file__).resolve().parent / "static" / "app.css"
MAX_FORM_BYTES = 16 * 1024
TIMELINE_PAGE = 50


# --- plumbing -----------------------------------------------------------------------------------------------


def _session(request: Request) -> WebSession:
    sess = getattr(request.state, "web_session", None)
    if not isinstance(sess, WebSession):  # pragma: no cover - the middleware sets it on every page route
        raise WebError("unauthenticated", "not signed in")
    return sess


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status)


def _page(request: Request, title: str, body: Safe, active: str,
          messages: list[tuple[str, str]] | None = None) -> str:
    sess = _session(request)
    shown = list(sess.flash) + list(messages or [])
    sess.flash.clear()
    return layout(title, body, user=principal_of(request), csrf=sess.csrf, active=active, messages=shown)


async def read_form(request: Request) -> dict[str, str]:
    """A small url-encoded form (the only kind our pages send). Any other body counts as an empty
    form, so it fails the CSRF check (403). Raises WebError 413 for an oversized form."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return {}
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        raise WebError("payload_too_large", "form too large")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise WebError("payload_too_large", "form too large")
    pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=40)
    return {k: v for k, v in pairs}


async def _post(request: Request, action: Callable[[WebContext, Principal, dict[str, str]], str],
                redirect: str | Callable[[dict[str, str]], str],
                render: Callable[[Request, list[tuple[str, str]]], tuple[str, str, Safe]]) -> Response:
    """Run a form action: CSRF first, then the action; redirect with a message or re-render with the error."""
    ctx, who, sess = ctx_of(request), principal_of(request), _session(request)
    try:
        form = await read_form(request)
        check_csrf(sess, form)
        message = await run_in_threadpool(action, ctx, who, form)
    except WebError as err:
        if err.code == "csrf":
            log.warning("form POST %s by %s refused: bad CSRF token", request.url.path, who.name)
        title, active, body = await run_in_threadpool(render, request, [])
        return _html(_page(request, title, body, active, [("error", f"{err.message} ({err.code})")]), err.status)
    sess.flash.append(("ok", message))
    return RedirectResponse(redirect(form) if callable(redirect) else redirect, status_code=303)


# --- login / logout -----------------------------------------------------------------------------------------


def _login_page(csrf: str, next_path: str, error: str | None = None) -> str:
    err = Safe(f'<div class="flash flash-error" role="alert">{e(error)}</div>') if error else Safe("")
    body = Safe(
        f'<section class="login">{err}<p>Sign in with your primeguard access token. Ask an admin for one '
        f'(<code>primeguard</code> users are created with a role: viewer, treasury, compliance or admin).</p>'
        f'<form method="post" action="/login">{csrf_field(csrf)}'
        f'<input type="hidden" name="next" value="{e(next_path)}">'
        '<label for="token">Access token<input type="password" id="token" name="token" autocomplete="off" '
        'required autofocus></label><p><button type="submit" class="btn">Sign in</button></p></form></section>'
    )
    return layout("Sign in", body)


def _login_response(request: Request, next_path: str, error: str | None = None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    resp = _html(_login_page(token, next_path, error), status)
    resp.set_cookie(LOGIN_COOKIE, token, max_age=900, path="/login", httponly=True, samesite="strict",
                    secure=ctx_of(request).secure_cookies)
    return resp


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    ctx = ctx_of(request)
    if ctx.sessions.get(request.cookies.get(SESSION_COOKIE)) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_response(request, safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    ctx = ctx_of(request)
    try:
        form = await read_form(request)
    except WebError as err:
        return _login_response(request, "/", err.message, err.status)
    next_path = safe_next(form.get("next"))
    if not csrf_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
        return _login_response(request, next_path, "The sign-in form expired; please try again.", 403)
    found = await run_in_threadpool(authenticate_token, ctx.store, form.get("token", "").strip())
    if found is None:
        log.info("failed sign-in from %s", request.client.host if request.client else "?")
        return _login_response(request, next_path, "Unknown or revoked token.", 401)
    who, token_hash = found
    ctx.sessions.drop(request.cookies.get(SESSION_COOKIE))  # never reuse a session id across sign-ins
    sid = ctx.sessions.create(who.user_id, who.name, who.role, token_hash)
    log.info("%s (%s) signed in", who.name, who.role)
    resp = RedirectResponse(next_path, status_code=303)
    resp.set_cookie(SESSION_COOKIE, sid, path="/", httponly=True, samesite="strict", secure=ctx.secure_cookies)
    resp.delete_cookie(LOGIN_COOKIE, path="/login")
    return resp


@router.post("/logout")
async def logout(request: Request) -> Response:
    ctx, sess = ctx_of(request), _session(request)
    try:
        check_csrf(sess, await read_form(request))
    except WebError as err:
        return _html(_page(request, "Sign out", Safe(""), "", [("error", err.message)]), err.status)
    ctx.sessions.drop(getattr(request.state, "session_id", None))
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/static/app.css")
def stylesheet() -> Response:
    return Response(CSS_PATH.read_text(encoding="utf-8"), media_type="text/css",
                    headers={"Cache-Control": "public, max-age=300"})


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(status_code=204)


# --- overview -----------------------------------------------------------------------------------------------


def render_overview(request: Request, _messages: list[tuple[str, str]]) -> tuple[str, str, Safe]:
    data = queries.overview(ctx_of(request).store)
    c = data["counts"]
    cards = cards_row([
        card("Clients", c["clients"]),
        card("Margin call or worse", c["escalated"], "ladder state", tone="alarm" if c["escalated"] else ""),
        card("Blind", c["blind"], "cannot be fully seen", tone="blindc" if c["blind"] else ""),
        card("Open findings", c["open_findings"]),
        card("Awaiting approval", c["actions_awaiting_approval"] + c["withdrawals_awaiting_approval"],
             f'{c["actions_awaiting_approval"]} actions, {c["withdrawals_awaiting_approval"]} withdrawals'),
    ])
    rows, classes = [], []
    for r in data["clients"]:
        state = r["ladder_state"]
        badges = join([badge(state), Safe(" "), badge("blind") if r["blind"] else Safe("")])
        ltv_cell = Safe(f'<div class="ltvcell"><span class="v">{pct(r["ltv"], infinite=r["ltv_infinite"])}</span>'
                        f'{ltv_bar(r["ltv"], r["bands"], state, infinite=r["ltv_infinite"])}</div>')
        findings = (Safe(f'{e(r["open_findings"])} {badge(r["max_severity"])}') if r["open_findings"]
                    else Safe("0"))
        rows.append([Safe(f'<a href="/clients/{e(quote(r["client_id"], safe=""))}"><b>{e(r["client_id"])}</b></a>'),
                     badges, ltv_cell, usd(r["equity"]), usd(r["loan"]), r["tier"] or "—", findings,
                     when(r["at"])])
        classes.append("row-blind" if r["blind"] else f"row-{_tone(state)}")
    clients = section("Clients", table(
        ["Client", "State", "LTV against the ladder", "Equity", "Loan", "Tier", "Open findings", "As of"], rows,
        row_classes=classes, numeric=[3, 4], empty="No client metrics yet: is the daemon running?"),
        note="Blind clients first, then by ladder state and LTV. The bar shows the LTV against the tier's bands: "
             "warn, margin call, halt, liquidate.")
    book = data["book_exposure"]
    left_out = (f' {len(book["blind_clients"])} blind client(s) left out: {", ".join(book["blind_clients"])}.'
                if book["blind_clients"] else "")
    exposure = section("Book exposure per venue", table(
        ["Venue", "Collateral", "Share of the book"],
        [[x["venue"], usd(x["usd"]), pct(x["share"])] for x in book["venues"]], numeric=[1, 2],
        empty="No valued client yet."), id_="book-exposure",
        note=Safe(f'Total {usd(book["total_usd"])} from each client\'s latest valuation; the policy\'s venue limits '
                  f'cap these shares (contagion: a venue failure takes its share with it).{e(left_out)}'))
    blind_rows = [[f["client_id"] or "—", badge("blind", f["code"]), f["subject"], f["venue"] or "—", f["message"],
                   when(f["first_seen"])] for f in data["blind_spots"]]
    blind = section("Blind spots", table(["Client", "Code", "Subject", "Venue", "Message", "Since"], blind_rows,
                                         empty="No blind spots: every account was seen in the last sweep."),
                    id_="blind-spots", note="Decisions about a blind client fail closed (withdrawals are denied).")
    return "Overview", "overview", join([cards, clients, exposure, blind])


def _tone(state: str) -> str:
    return {"normal": "ok", "warn": "warn", "margin_call": "mc", "halt": "halt", "liquidate": "liq"}.get(state, "blind")


@router.get("/")
def overview_page(request: Request) -> Response:
    title, active, body = render_overview(request, [])
    return _html(_page(request, title, body, active))


# --- client -------------------------------------------------------------------------------------------------


def render_client(request: Request, client_id: str) -> tuple[str, str, Safe] | None:
    ctx, who = ctx_of(request), principal_of(request)
    policy, _, _ = queries.policy_in_force(ctx.store, policy_dir=ctx.policy_dir, cache=ctx.policy_cache)
    d = queries.client_detail(ctx.store, client_id, policy=policy)
    if d is None:
        return None
    loan = d["loan"] or {}
    latest = d["latest"] or {}
    val = d["valuation"] or {}
    metrics = val.get("metrics") or {}
    state = latest.get("ladder_state", "unknown")
    ladder = d["ladder"] or {}
    deadline = ladder.get("deadline")
    cards = cards_row([
        card("Ladder state", join([badge(state), Safe(" "), badge("blind") if d["blind"] else Safe("")]),
             Safe(f"cure deadline {when(deadline)}") if deadline else (Safe(f"since {when(ladder.get('entered_at'))}")
                                                                        if ladder.get("entered_at") else ""),
             tone="alarm" if _tone(state) in ("halt", "liq", "mc") else ("blindc" if d["blind"] else "")),
        card("LTV", pct(latest.get("ltv"), infinite=latest.get("ltv_infinite", False)),
             ltv_bar(latest.get("ltv"), latest.get("bands"), state, infinite=latest.get("ltv_infinite", False),
                     width=150, height=14)),
        card("Equity", usd(latest.get("equity"))),
        card("Loan owed", usd(latest.get("loan")),
             Safe(f'principal {usd(loan.get("principal"))} + interest {usd(loan.get("accrued_interest"))}'
                  + (f' at {pct(loan.get("rate"))} a year' if loan.get("rate") is not None else ""))
             if loan else ""),
        card("Interest accrued", usd(loan.get("accrued_interest")) if loan else Safe("—"),
             f'{loan.get("asset") or ""} not yet paid; part of the loan in the LTV' if loan else "no loan"),
        card("Collateral (gross)", usd(metrics.get("gross_collateral")),
             Safe(f"after haircuts {usd(metrics.get('haircut_collateral'))}")),
        card("Leverage", qty(metrics.get("leverage")) if metrics.get("leverage") is not None else Safe("—"),
             Safe(f"net delta {pct(metrics.get('net_delta_ratio'))} of equity")),
    ])
    why = ", ".join(d["blind_reasons"]) or "the valuation could not see every account"
    blind_note = (Safe(f'<div class="flash flash-error" role="alert">Blind: {e(why)}. Withdrawals for this client '
                       'fail closed.</div>') if d["blind"] else Safe(""))
    chart = section("LTV history", ltv_chart([(h["at"], h["ltv"]) for h in d["history"]], latest.get("bands")),
                    note=f'{len(d["history"])} sweeps; dashed lines are the ladder bands.')
    acct_rows = [[a["account_id"], a["venue"], a["chain"] or "—", badge("done", "seen") if a["ok"]
                  else badge("blind", "not seen"), when(a["observed_at"]), a["error"] or ""] for a in d["accounts"]]
    venues = section("Venues and accounts", table(["Account", "Venue", "Chain", "Status", "Observed", "Error"],
                                                  acct_rows, empty="No snapshots for this client."))
    by_venue = val.get("by_venue") or {}
    bv_rows = [[v, usd(x.get("value")), usd(x.get("haircut_value"))] for v, x in sorted(by_venue.items())]
    bal_rows = [[a["account_id"], b.get("asset"), qty(b.get("quantity")), b.get("source") or ""]
                for a in d["accounts"] for b in a["balances"] if isinstance(b, dict)]
    collateral = section("Collateral breakdown", join([
        table(["Venue", "Value", "After haircut"], bv_rows, numeric=[1, 2], empty="No valuation recorded."),
        Safe("<h3>Balances</h3>"),
        table(["Account", "Asset", "Quantity", "Source"], bal_rows, numeric=[2], empty="No balances."),
    ]))
    positions = val.get("positions") or []
    if positions:
        pos_rows = [[p.get("account"), p.get("venue"), p.get("instrument"), qty(p.get("size")), usd(p.get("price")),
                     usd(p.get("notional")), usd(p.get("pnl")), usd(p.get("liquidation_price")),
                     pct(p.get("liquidation_distance"))] for p in positions]
        pos_table = table(["Account", "Venue", "Instrument", "Size", "Price", "Notional", "PnL", "Liq. price",
                           "To liquidation"], pos_rows, numeric=[3, 4, 5, 6, 7, 8])
    else:
        pos_rows = [[a["account_id"], a["venue"], p.get("instrument"), qty(p.get("size")), usd(p.get("mark_price")),
                     usd(p.get("entry_price")), usd(p.get("liquidation_price"))]
                    for a in d["accounts"] for p in a["positions"] if isinstance(p, dict)]
        pos_table = table(["Account", "Venue", "Instrument", "Size", "Mark", "Entry", "Liq. price"], pos_rows,
                          numeric=[3, 4, 5, 6], empty="No open positions.")
    pos = section("Positions", pos_table)
    stress_rows = [[s.get("scenario"), _stress_ltv(s), usd(s.get("equity")), usd(s.get("shortfall")),
                    pct(s.get("ltv_after_liquidation")), s.get("worst_asset") or "—",
                    badge("blind") if s.get("blind") else ""] for s in d["stress"]]
    stress = section("Stress", table(["Scenario", "LTV", "Equity", "Shortfall", "LTV after liquidation",
                                      "Worst asset", ""], stress_rows, numeric=[1, 2, 3, 4],
                                     empty="No stress results in the latest sweep."))
    eligibility = _eligibility_section(d["eligibility"])
    f_rows = [[badge(f["severity_name"]), f["code"], f["subject"], f["venue"] or "—", f["message"],
               when(f["first_seen"])] for f in d["findings"]]
    findings = section("Open findings", table(["Severity", "Code", "Subject", "Venue", "Message", "Since"], f_rows,
                                              empty="No open findings."))
    sess = _session(request)
    a_rows = [[short(a["id"], 22), a["kind"], badge(a["mode"]), badge(a["state"]), _did(a), when(a["created_at"]),
               _approve_action_cell(a, who, sess.csrf, f"/clients/{quote(client_id, safe='')}")] for a in d["actions"]]
    actions = section("Playbook actions", table(["Action", "Kind", "Mode", "State", "What it did", "Proposed", ""],
                                                a_rows, empty="No playbook actions for this client."))
    body = join([blind_note, cards, chart, Safe('<div class="grid-2">'), venues, collateral, Safe("</div>"), pos,
                 stress, eligibility, findings, actions])
    return f"Client {client_id}", "overview", body


def _did(a: dict[str, Any]) -> Safe:
    """An action in words: its figures (LTV as a percentage), then what its lever did per venue account."""
    lines = ([a["figures"]] if a.get("figures") else []) + list(a.get("did") or [])
    if not lines:
        return Safe('<span class="note">not run</span>')
    return join([Safe('<div class="did">') + e(line) + Safe("</div>") for line in lines])


def _eligibility_section(rev: dict[str, Any] | None) -> Safe:
    """The client's tier eligibility from its track record, and why (``tiers review``)."""
    if rev is None:
        return section("Tier eligibility", Safe('<p class="note">No policy in force: eligibility unknown.</p>'))
    rec = rev["record"]
    rows = [[t["tier"], badge("done", "eligible") if t["eligible"] else badge("blind", "not eligible"),
             "; ".join(t["reasons"]) or "every requirement met"] for t in rev["tiers"]]
    action = rev["action"]
    proposal = ("no change" if action == "hold"
                else f'{action} to {rev["proposed_tier"]} (a policy change compliance approves)')
    record = (e(rec["problem"]) if rec["problem"] else
              Safe(f'{int(Decimal(rec["days"]))} days without a margin call, worst drawdown '
                   f'{pct(rec["worst_drawdown"])}, realised PnL {usd(rec["realised_pnl_usd"])}'))
    return section("Tier eligibility", table(["Tier", "Eligible", "Why"], rows), id_="eligibility",
                   note=Safe(f'In tier {e(rev["tier"])}. Track record: {record}. Proposal: {e(proposal)}: '
                             f'{e("; ".join(rev["why"]))}.'))


def _approve_action_cell(a: dict[str, Any], who: Principal, csrf: str, back: str) -> Safe:
    if not a["awaiting_approval"]:
        return Safe(f'<span class="note">approved by {e(a["approved_by"])}</span>') if a["approved_by"] else Safe("")
    if not who.can(Perm.APPROVE_ACTION):
        return Safe('<span class="note">awaiting compliance</span>')
    return post_button(f"/actions/{quote(a['id'], safe='')}/approve", "Approve", csrf, fields={"back": back},
                       confirm_text=f"Approve {a['kind']} for {a['client_id']}")


@router.get("/clients/{client_id}")
def client_page(request: Request, client_id: str) -> Response:
    out = render_client(request, client_id)
    if out is None:
        return _html(_page(request, "Client not found", Safe(f'<p>No data about client {e(client_id)}.</p>'),
                           "overview"), 404)
    title, active, body = out
    return _html(_page(request, title, body, active))


# --- capabilities -------------------------------------------------------------------------------------------


def render_capabilities(request: Request, _messages: list[tuple[str, str]]) -> tuple[str, str, Safe]:
    data = queries.capabilities(ctx_of(request).store)
    c = data["counts"]
    cards = cards_row([
        card("Policy violations", c["violations"], "enforced rules broken", tone="alarm" if c["violations"] else ""),
        card("Capability findings", c["findings"]),
        card("Credentials seen", c["credentials"]),
        card("Can move funds", c["fund_moving"], "withdraw, transfer, spend, module, grant…",
             tone="alarm" if c["fund_moving"] else ""),
    ])
    f_rows, f_cls = [], []
    for f in data["findings"]:
        kind = badge("deny", "violation") if f["violation"] else badge("info", "shadow" if f["details"].get("shadow")
                                                                                else "finding")
        f_rows.append([join([kind, Safe(" "), badge(f["severity_name"])]), f["code"], f["subject"],
                       f["client_id"] or "—", f["venue"] or "—", f["rule_id"] or "—", f["message"]])
        f_cls.append("row-violation" if f["violation"] else "")
    findings = section("Findings", table(["", "Code", "Credential / subject", "Client", "Venue", "Rule", "Message"],
                                         f_rows, row_classes=f_cls, empty="No open capability findings."),
                       note="Violations of enforced policy rules first, then shadow-rule and other findings.")
    cr_rows, cr_cls = [], []
    for cr in data["credentials"]:
        moving = Safe(", ".join(f'<span class="fund">{e(x)}</span>' for x in cr["fund_moving"])) or Safe("—")
        other = ", ".join(x for x in cr["capabilities"] if x not in cr["fund_moving"]) or "—"
        ip = {True: "yes", False: "no", None: "unknown"}.get(cr["ip_restricted"], "unknown")
        cr_rows.append([cr["client_id"] or "—", cr["account_id"], cr["venue"], cr["credential_id"], cr["kind"] or "—",
                        cr["holder"] or "—", moving, other, ip,
                        join(badge("deny" if x in cr["violations"] else "info", x) for x in cr["findings"])
                        if cr["findings"] else "—"])
        cr_cls.append("row-violation" if cr["violations"] else "")
    creds = section("Who can move what", Safe('<div class="caps">') + table(
        ["Client", "Account", "Venue", "Credential", "Kind", "Holder", "Can move funds", "Other capabilities",
         "IP-bound", "Findings"], cr_rows, row_classes=cr_cls,
        empty="No credentials in the latest snapshots.") + Safe("</div>"),
        note="Every API key, authenticator, approval and Safe module the latest sweep saw.")
    return "Capabilities", "capabilities", join([cards, findings, creds])


@router.get("/capabilities")
def capabilities_page(request: Request) -> Response:
    title, active, body = render_capabilities(request, [])
    return _html(_page(request, title, body, active))


# --- timeline -----------------------------------------------------------------------------------------------


def render_timeline(request: Request, _messages: list[tuple[str, str]], page: int = 1) -> tuple[str, str, Safe]:
    ctx, who, sess = ctx_of(request), principal_of(request), _session(request)
    page = max(1, min(page, 100))
    data = queries.timeline(ctx.store, limit=TIMELINE_PAGE, offset=(page - 1) * TIMELINE_PAGE)
    p_rows = [[short(a["id"], 22), Safe(f'<a href="/clients/{e(quote(a["client_id"], safe=""))}">'
                                        f'{e(a["client_id"])}</a>'), a["kind"],
               _did(a), when(a["created_at"]),
               _approve_action_cell(a, who, sess.csrf, "/timeline")] for a in data["pending_actions"]]
    pending = section("Waiting for approval", table(["Action", "Client", "Kind", "Figures", "Proposed", ""],
                                                    p_rows, empty="No playbook action is waiting for approval."),
                      id_="pending", note="Playbook actions in needs-approval mode; compliance or admin approves, "
                                          "the daemon then executes.")
    rows = []
    for it in data["items"]:
        if it["type"] == "audit":
            what = Safe(f'<code>{e(it["kind"])}</code> ') + (e(it["words"]) if it.get("words") else Safe(""))
            state: Safe | str = ""
        elif it["type"] == "action":
            what = e(it["summary"]) + _did(it["action"])
            state = badge(it["state"])
        else:
            what = e(it["summary"]) + (Safe(f' <span class="note">{e(it["error"])}</span>') if it.get("error")
                                       else Safe(""))
            state = badge(it["state"])
        rows.append([when(it["at"]), badge({"alert": "warning", "action": "pending"}.get(it["type"], "info"),
                                           it["type"]), short(it["subject"], 40), what, state, it["actor"] or ""])
    pager = []
    if page > 1:
        pager.append(Safe(f'<a href="/timeline?page={page - 1}">← newer</a>'))
    if data["next_offset"] is not None and page < 100:
        pager.append(Safe(f'<a href="/timeline?page={page + 1}">older →</a>'))
    timeline = section("Timeline", table(["Time", "Type", "Subject", "What", "State", "By"], rows,
                                         empty="Nothing has happened yet.")
                       + Safe(f'<div class="pager">{join(pager)}</div>'),
                       note="Alerts, playbook actions and audit-log entries, newest first.")
    return "Alerts & actions", "timeline", join([pending, timeline])


@router.get("/timeline")
def timeline_page(request: Request, page: int = 1) -> Response:
    title, active, body = render_timeline(request, [], page)
    return _html(_page(request, title, body, active))


def _approve_action(ctx: WebContext, who: Principal, form: dict[str, str], action_id: str) -> str:
    row = commands.approve_action(ctx.playbook, ctx.store, who, action_id)
    return f"Approved {row['kind']} for {row['client_id']} ({action_id}); the daemon executes it on its next run."


@router.post("/actions/{action_id}/approve")
async def approve_action_form(request: Request, action_id: str) -> Response:
    def back(form: dict[str, str]) -> str:
        target = safe_next(form.get("back"))
        return target if target.startswith(("/clients/", "/timeline")) else "/timeline"

    return await _post(request, lambda c, w, f: _approve_action(c, w, f, action_id), back, render_timeline)


# --- policy -------------------------------------------------------------------------------------------------


def render_policy(request: Request, _messages: list[tuple[str, str]]) -> tuple[str, str, Safe]:
    ctx, who, sess = ctx_of(request), principal_of(request), _session(request)
    data = queries.policy_view(ctx.store, policy_dir=ctx.policy_dir, cache=ctx.policy_cache)
    a = data["active"]
    if a is None:
        active = section("In force", Safe('<p class="flash flash-error">No approved policy version is active and no '
                                          'policy directory is configured: every withdrawal is denied.</p>'))
    else:
        err = Safe(f'<p class="flash flash-error">This version does not load: {e(a["load_error"])}. Decisions fail '
                   'closed.</p>') if a.get("load_error") else Safe("")
        source = ("approved version in the store" if data["active_source"] == "store"
                  else "policy directory (no approved version in the store yet)")
        kv = [("Version", Safe(f'<code>{e(a.get("hash") or "—")}</code>')), ("Source", source)]
        if data["active_source"] == "store":
            kv += [("Proposed by", f'{a["proposed_by"]}'), ("Approved by", a["approved_by"] or "—"),
                   ("Active since", when(a["activated_at"])), ("Files", ", ".join(a["files"]) or "—")]
        else:
            kv += [("Directory", a.get("directory")), ("Note", a.get("note"))]
        dl = join(Safe(f"<dt>{e(k)}</dt><dd>{v if isinstance(v, Safe) else e(v)}</dd>") for k, v in kv)
        active = section("In force", err + Safe(f'<dl class="kv">{dl}</dl>'))
    props = []
    for p in data["pending"]:
        diff = p.get("diff")
        if p.get("load_error"):
            diff_html = Safe(f'<p class="flash flash-error">Does not load: {e(p["load_error"])}</p>')
        elif diff is None:
            diff_html = Safe('<p class="note">No policy in force to compare with.</p>')
        elif not diff["changes"]:
            diff_html = Safe(f'<p class="note">{e(diff["text"])}</p>')
        else:
            order = {"looser": 0, "stricter": 1, "changed": 2}
            items = join(Safe(f'<li>{badge(c["effect"])} {e(c["text"])}</li>')
                         for c in sorted(diff["changes"], key=lambda c: order.get(c["effect"], 3)))
            diff_html = Safe(f'<p class="note">{e(diff["text"].splitlines()[0])}</p><ul class="diff">{items}</ul>')
        if p["proposed_by"] == who.name:
            act: Safe = Safe('<p class="note">You proposed this version: a different compliance user must '
                             'approve it.</p>')
        elif who.can(Perm.APPROVE_POLICY):
            act = post_button(f"/policy/{quote(p['hash'], safe='')}/approve", "Approve and activate", sess.csrf,
                              confirm_text=f"Approve policy version {p['hash'][:12]}")
        else:
            act = Safe('<p class="note">Waiting for a compliance user to approve.</p>')
        props.append(Safe(
            f'<div class="proposal"><h3>Version <code>{e(p["hash"][:16])}</code> {badge(p["state"])}</h3>'
            f'<p class="note">proposed by <b>{e(p["proposed_by"])}</b> at {when(p["proposed_at"])}'
            f'{" — " + e(p["note"]) if p["note"] else ""}</p>{diff_html}{act}</div>'))
    pending = section("Proposals waiting for approval", join(props) if props
                      else Safe('<p class="empty">No proposals are waiting.</p>'),
                      note="Each proposal's effect against the policy in force, looser changes first. "
                           "Four eyes: the proposer cannot approve.")
    h_rows = [[Safe(f"<code>{e(v['hash'][:16])}</code>"), badge(v["state"]), v["proposed_by"], v["approved_by"] or "—",
               when(v["activated_at"] or v["proposed_at"])] for v in data["history"]]
    history = section("Earlier versions", table(["Version", "State", "Proposed by", "Approved by", "When"], h_rows,
                                                empty="No earlier versions."))
    return "Policy", "policy", join([active, pending, history])


@router.get("/policy")
def policy_page(request: Request) -> Response:
    title, active, body = render_policy(request, [])
    return _html(_page(request, title, body, active))


@router.post("/policy/{policy_hash}/approve")
async def approve_policy_form(request: Request, policy_hash: str) -> Response:
    def action(ctx: WebContext, who: Principal, _form: dict[str, str]) -> str:
        meta = commands.approve_policy(ctx.store, who, policy_hash)
        return f"Policy version {meta['hash'][:12]} is now active (approved by {who.name})."

    return await _post(request, action, "/policy", render_policy)


# --- withdrawals --------------------------------------------------------------------------------------------


def render_withdrawals(request: Request, _messages: list[tuple[str, str]]) -> tuple[str, str, Safe]:
    ctx, who, sess = ctx_of(request), principal_of(request), _session(request)
    items = queries.withdrawals(ctx.store, limit=100)
    parts: list[Safe] = []
    if who.can(Perm.REQUEST_WITHDRAWAL):
        if ctx.withdrawals is None:
            parts.append(section("Request a withdrawal", Safe('<p class="note">This server has no withdrawal service '
                                                              'configured (no vaults in its config).</p>')))
        else:
            options = join(Safe(f'<option value="{e(v)}">{e(v)}</option>') for v in ctx.vault_ids())
            form = Safe(
                f'<form method="post" action="/withdrawals" class="stack-form">{csrf_field(sess.csrf)}'
                f'<label for="account_id">From vault<select id="account_id" name="account_id" required>{options}'
                '</select></label>'
                '<label for="asset">Asset<input type="text" id="asset" name="asset" required maxlength="32" '
                'value="USDC"></label>'
                '<label for="amount">Amount<input type="text" id="amount" name="amount" required maxlength="64" '
                'inputmode="decimal" placeholder="150000.00"></label>'
                '<label for="destination">Destination<input type="text" id="destination" name="destination" '
                'required maxlength="128" placeholder="0x…"></label>'
                '<div><button type="submit" class="btn">Request</button></div></form>')
            parts.append(section("Request a withdrawal", form,
                                 note="The policy decides at once: allowed, denied (with the reason), or waiting "
                                      "for another person's approval."))
    rows = []
    for w in items:
        approvals = ", ".join(f'{a["approver"]} ({a["role"]})' for a in w["approvals"]) or "—"
        dec = w["decision"]
        decision = (Safe(f'<details><summary>{badge(dec["outcome"])} why</summary><p class="note">'
                         f'{e(dec["explanation"])}</p></details>') if dec else Safe("—"))
        if w["state"] != "requested":
            act: Safe = Safe("")
        elif w["requested_by"] == who.name:
            act = Safe('<span class="note">requested by you: another person must approve</span>')
        elif not who.can(Perm.APPROVE_WITHDRAWAL):
            act = Safe('<span class="note">awaiting approval</span>')
        elif any(a["approver"] == who.name for a in w["approvals"]):
            act = Safe('<span class="note">you approved</span>')
        else:
            act = post_button(f"/withdrawals/{quote(w['id'], safe='')}/approve", "Approve", sess.csrf,
                              confirm_text=f"Approve withdrawal of {w['amount']} {w['asset']}")
        rows.append([when(w["requested_at"]), w["client_id"], w["account_id"],
                     Safe(f'{qty(w["amount"])} {e(w["asset"])}'), short(w["destination"], 14), badge(w["state"]),
                     w["requested_by"], approvals, act, decision])
    parts.append(section("Withdrawals", table(
        ["Requested", "Client", "From", "Amount", "To", "State", "Requested by", "Approvals", "", "Decision"],
        rows, numeric=[3], empty="No withdrawals yet."),
        note="Four eyes: whoever requested a withdrawal can never approve it. Open “why” for the policy's reasons."))
    return "Withdrawals", "withdrawals", join(parts)


@router.get("/withdrawals")
def withdrawals_page(request: Request) -> Response:
    title, active, body = render_withdrawals(request, [])
    return _html(_page(request, title, body, active))


@router.post("/withdrawals")
async def request_withdrawal_form(request: Request) -> Response:
    def action(ctx: WebContext, who: Principal, form: dict[str, str]) -> str:
        fields = {k: form.get(k, "").strip() for k in ("account_id", "asset", "amount", "destination")}
        missing = [k for k, v in fields.items() if not v]
        if missing:
            raise WebError("invalid_input", f"missing: {', '.join(missing)}")
        result = commands.request_withdrawal(ctx.withdrawals, who, **fields)
        decision = result.get("decision") or {}
        why = f": {decision.get('explanation')}" if result["state"] == "denied" and decision else ""
        return f"Withdrawal {result['id'][:12]} is {result['state']}{why}"

    return await _post(request, action, "/withdrawals", render_withdrawals)


@router.post("/withdrawals/{withdrawal_id}/approve")
async def approve_withdrawal_form(request: Request, withdrawal_id: str) -> Response:
    def action(ctx: WebContext, who: Principal, _form: dict[str, str]) -> str:
        result = commands.approve_withdrawal(ctx.withdrawals, ctx.store, who, withdrawal_id)
        return f"Approval recorded: withdrawal {withdrawal_id[:12]} is {result['state']}"

    return await _post(request, action, "/withdrawals", render_withdrawals)


# --- destinations -------------------------------------------------------------------------------------------


def _proposal_card(p: dict[str, Any], who: Principal, csrf: str) -> Safe:
    adds = join(Safe(f'<li>add <code>{e(a.get("address"))}</code> for {e(a.get("client"))} '
                     f'({e(a.get("venue"))}/{e(a.get("chain"))}, '
                     f'{e(", ".join(a.get("assets") or [a.get("asset")]))}): {e(a.get("label"))}</li>')
                for a in p["adds"])
    drops = join(Safe(f"<li>drop entry <code>{e(d)}</code></li>") for d in p["drops"])
    if p["proposed_by_id"] == who.user_id:
        act: Safe = Safe('<p class="note">You proposed this: a different compliance user must approve it.</p>')
    elif who.can(Perm.APPROVE_POLICY):
        act = post_button(f"/destinations/{quote(p['version'], safe='')}/approve", "Approve and propose to the vaults",
                          csrf, confirm_text=f"Approve policy version {p['version'][:12]}")
    else:
        act = Safe('<p class="note">Waiting for a compliance user to approve.</p>')
    return Safe(f'<div class="proposal"><h3>Version <code>{e(p["version"][:16])}</code></h3>'
                f'<p class="note">proposed by <b>{e(p["proposed_by"])}</b> at {when(p["proposed_at"])}'
                f'{" — " + e(p["note"]) if p["note"] else ""}</p><ul class="diff">{adds}{drops}</ul>{act}</div>')


def render_destinations(request: Request, _messages: list[tuple[str, str]]) -> tuple[str, str, Safe]:
    ctx, who, sess = ctx_of(request), principal_of(request), _session(request)
    if ctx.destinations is None:
        return "Destinations", "destinations", section("Destinations", Safe(
            '<p class="note">This server has no destination service configured (start it with the agent\'s '
            'config).</p>'))
    data = queries.destinations(ctx.destinations)
    parts: list[Safe] = []
    if who.can(Perm.CHANGE_DESTINATIONS):
        form = Safe(
            f'<form method="post" action="/destinations" class="stack-form">{csrf_field(sess.csrf)}'
            '<label for="client">Client<input type="text" id="client" name="client" required maxlength="128">'
            '</label><label for="address">Address<input type="text" id="address" name="address" required '
            'maxlength="128" placeholder="0x…"></label>'
            '<label for="assets">Assets (comma separated)<input type="text" id="assets" name="assets" required '
            'maxlength="200" value="USDC"></label>'
            '<label for="label">Label<input type="text" id="label" name="label" required maxlength="200"></label>'
            '<label for="venue">Venue<input type="text" id="venue" name="venue" maxlength="32" value="evm"></label>'
            '<label for="chain">Chain<input type="text" id="chain" name="chain" maxlength="64" value="ethereum">'
            '</label><div><button type="submit" class="btn">Screen and propose</button></div></form>')
        parts.append(section("Propose a destination", form,
                             note="The address is screened first; a second compliance user approves, then the "
                                  "agent proposes it to each vault, usable after the vault's timelock."))
    parts.append(section("Proposals waiting for approval",
                         join(_proposal_card(p, who, sess.csrf) for p in data["proposals"]) if data["proposals"]
                         else Safe('<p class="empty">No destination proposals are waiting.</p>'),
                         note="Four eyes: the proposer cannot approve."))
    rows = []
    for d in data["destinations"]:
        policy = join(Safe(f'{e(p["entry"])} {badge(p["state"])} <span class="note">from '
                           f'{when(p["active_from"])}</span><br>') for p in d["policy"]) or Safe("not in the policy")
        vaults = join(Safe(f'{e(v["vault"])} {e(v["asset"])} {badge(v["state"])}'
                           + (f' <span class="note">until {when(v["eta"])}</span>' if v["state"] == "pending" else "")
                           + "<br>") for v in d["vaults"]) or Safe("—")
        rows.append([Safe(f"<code>{e(d['address'])}</code>"), policy, vaults, badge(d["screening"] or "unknown")])
    parts.append(section("Destinations", table(["Address", "Policy (timelock)", "Vaults (on chain)", "Screening"],
                                               rows, empty="No destinations."),
                         note="Policy entries are usable from their timelock; a vault destination from its own "
                              "on-chain timelock. Drift between them is reported as findings."))
    return "Destinations", "destinations", join(parts)


@router.get("/destinations")
def destinations_page(request: Request) -> Response:
    title, active, body = render_destinations(request, [])
    return _html(_page(request, title, body, active))


@router.post("/destinations")
async def propose_destination_form(request: Request) -> Response:
    def action(ctx: WebContext, who: Principal, form: dict[str, str]) -> str:
        fields = {k: form.get(k, "").strip() for k in ("client", "address", "assets", "label", "venue", "chain")}
        missing = [k for k in ("client", "address", "assets", "label") if not fields[k]]
        if missing:
            raise WebError("invalid_input", f"missing: {', '.join(missing)}")
        assets = [a.strip() for a in fields["assets"].split(",") if a.strip()]
        result = commands.propose_destination(ctx.destinations, who, client=fields["client"],
                                              venue=fields["venue"] or "evm", chain=fields["chain"] or "ethereum",
                                              assets=assets, address=fields["address"], label=fields["label"],
                                              expires_at=None)
        return (f"Proposed as policy version {result['version']['hash'][:12]} (screening: "
                f"{result['screening']['verdict']}); a different compliance user approves it.")

    return await _post(request, action, "/destinations", render_destinations)


@router.post("/destinations/{policy_hash}/approve")
async def approve_destinations_form(request: Request, policy_hash: str) -> Response:
    def action(ctx: WebContext, who: Principal, _form: dict[str, str]) -> str:
        result = commands.approve_destinations(ctx.destinations, ctx.store, who, policy_hash)
        moved = ", ".join(f"{s['address'][:10]}… on {s['vault']}: {s['action']}" for s in result["steps"]
                          if s["action"] in ("proposed", "failed", "refused"))
        return (f"Policy version {policy_hash[:12]} is active (approved by {who.name})"
                + (f"; vaults: {moved}" if moved else "") + (f"; {result['note']}" if result["note"] else ""))

    return await _post(request, action, "/destinations", render_destinations)


def _stress_ltv(row: Mapping[str, Any]) -> Safe:
    """A stress row's LTV: exact, or "≈" the float screen's approximation (``method: float_screen``:
    far from every threshold, no money figures computed)."""
    if row.get("method") != "float_screen":
        return pct(row.get("ltv"))
    if row.get("ltv_infinite"):
        return Safe("≈ ∞")
    approx = pct(row.get("ltv_approx"))
    return approx if str(approx) == "—" else Safe(f"≈ {approx}")
