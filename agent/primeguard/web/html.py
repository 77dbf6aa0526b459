"""HTML building blocks for the dashboard: escaping, layout, badges, number formats, inline SVG.

No template engine: every page is built from small functions that return :class:`Safe` strings.
Rule: a value from the store or a request goes through :func:`e` before it is put in markup;
only :class:`Safe` values (built here) are inserted as they are. Charts are inline SVG with
presentation attributes only (no inline ``style``), so the CSP can forbid inline styles and
scripts: pages have no JavaScript and work with it disabled.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from primeguard.domain.money import MAX_AMOUNT_CHARS, MAX_EXPONENT, display_amount

NAV = (("overview", "/", "Overview"), ("capabilities", "/capabilities", "Capabilities"),
       ("timeline", "/timeline", "Alerts & actions"), ("policy", "/policy", "Policy"),
       ("destinations", "/destinations", "Destinations"), ("withdrawals", "/withdrawals", "Withdrawals"))
STATE_CLASS = {
    "normal": "ok", "warn": "warn", "margin_call": "mc", "halt": "halt", "liquidate": "liq", "unknown": "blind",
    "blind": "blind", "proposed": "pending", "requested": "pending", "approved": "ok", "executing": "pending",
    "done": "ok", "confirmed": "ok", "signed": "pending", "broadcast": "pending", "failed": "halt",
    "denied": "halt", "rejected": "muted", "active": "ok", "retired": "muted", "sent": "ok", "pending": "pending",
    "suppressed": "muted", "resolved": "muted", "critical": "liq", "high": "halt", "warning": "warn", "info": "muted",
    "looser": "halt", "stricter": "ok", "changed": "muted", "allow": "ok", "deny": "halt",
    "needs_approval": "pending", "dry_run": "muted", "automatic": "warn",
    "clear": "ok", "sanctioned": "liq", "unavailable": "blind", "absent": "halt", "unreadable": "blind",
    "expired": "muted", "removed": "muted",
}
BAND_FILL = {"ok": "#d7f2e3", "warn": "#fdf1c7", "mc": "#fde0c2", "halt": "#f9cfcb", "liq": "#f1a9a5"}
STATE_STROKE = {"ok": "#1f7a4d", "warn": "#a86b00", "mc": "#c2570c", "halt": "#b42318", "liq": "#7a1010",
                "blind": "#5b4fa8", "muted": "#667085", "pending": "#175cd3"}


NUM_ATTR = ' class="num"'
CURRENT_ATTR = ' aria-current="page"'


class Safe(str):
    """Markup that is already escaped. Concatenation escapes the non-Safe side."""

    __slots__ = ()

    def __add__(self, other: object) -> Safe:
        return Safe(str.__add__(self, e(other)))

    def __radd__(self, other: object) -> Safe:
        return Safe(str.__add__(e(other), self))


def e(value: Any) -> Safe:
    """Escape any value for HTML text or a quoted attribute."""
    if isinstance(value, Safe):
        return value
    return Safe(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[str], sep: str = "") -> Safe:
    return Safe(sep.join(p if isinstance(p, Safe) else e(p) for p in parts))


# --- formats -------------------------------------------------------------------------------------------


def _dec(value: Any) -> Decimal | None:
    """A Decimal small enough to format positionally, or None (absent, not a number, or with an
    absurd exponent or length: formatting those would build a huge string)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        text = value if isinstance(value, Decimal) else str(value)
        if not isinstance(text, Decimal) and len(text) > MAX_AMOUNT_CHARS:
            return None
        d = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    if d.is_finite() and (abs(d.adjusted()) > MAX_EXPONENT or abs(int(d.as_tuple().exponent)) > MAX_EXPONENT):
        return None
    return d


def _odd(value: Any) -> Safe:
    """A value that is present but cannot be formatted as a number: bounded, escaped text."""
    return Safe("—") if value is None else e(display_amount(value))


def usd(value: Any) -> Safe:
    d = _dec(value)
    if d is None or not d.is_finite():
        return _odd(value)
    sign = "−" if d < 0 else ""
    return e(f"{sign}${abs(d):,.2f}")


def pct(value: Any, *, infinite: bool = False) -> Safe:
    if infinite:
        return Safe("∞")
    d = _dec(value)
    if d is None:
        return Safe("—")
    if not d.is_finite():
        return Safe("∞")
    return e(f"{d * 100:,.2f} %")


def qty(value: Any) -> Safe:
    d = _dec(value)
    if d is None or not d.is_finite():
        return _odd(value)
    text = f"{d:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return e(text)


def when(value: Any) -> Safe:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS UTC`` inside a <time> element."""
    if not value:
        return Safe("—")
    try:
        t = datetime.fromisoformat(str(value))
    except ValueError:
        return e(value)
    return Safe(f'<time datetime="{e(value)}">{e(t.strftime("%Y-%m-%d %H:%M:%S"))} UTC</time>')


def short(value: Any, n: int = 12) -> Safe:
    text = "" if value is None else str(value)
    if len(text) <= n:
        return e(text)
    return Safe(f'<abbr title="{e(text)}">{e(text[:n])}…</abbr>')


def badge(state: Any, label: Any | None = None) -> Safe:
    s = "" if state is None else str(state)
    cls = STATE_CLASS.get(s, "muted")
    return Safe(f'<span class="badge b-{cls}">{e((label if label is not None else s).replace("_", " "))}</span>')


def csrf_field(token: str) -> Safe:
    return Safe(f'<input type="hidden" name="csrf" value="{e(token)}">')


def post_button(action: str, label: str, csrf: str, *, cls: str = "btn", fields: Mapping[str, str] | None = None,
                confirm_text: str | None = None) -> Safe:
    hidden = join(Safe(f'<input type="hidden" name="{e(k)}" value="{e(v)}">') for k, v in (fields or {}).items())
    aria = f' aria-label="{e(confirm_text)}"' if confirm_text else ""
    return Safe(f'<form method="post" action="{e(action)}" class="inline">{csrf_field(csrf)}{hidden}'
                f'<button type="submit" class="{e(cls)}"{aria}>{e(label)}</button></form>')


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str = "Nothing to show.",
          cls: str = "", row_classes: Sequence[str] | None = None, numeric: Iterable[int] = ()) -> Safe:
    num = set(numeric)
    body = []
    for i, row in enumerate(rows):
        rc = f' class="{e(row_classes[i])}"' if row_classes and i < len(row_classes) and row_classes[i] else ""
        cells = join(Safe(f"<td{NUM_ATTR if j in num else ''}>{c if isinstance(c, Safe) else e(c)}</td>")
                     for j, c in enumerate(row))
        body.append(Safe(f"<tr{rc}>{cells}</tr>"))
    if not body:
        return Safe(f'<p class="empty">{e(empty)}</p>')
    head = join(Safe(f"<th scope=\"col\"{NUM_ATTR if j in num else ''}>{e(h)}</th>")
                for j, h in enumerate(headers))
    return Safe(f'<div class="table-wrap"><table class="{e(cls)}"><thead><tr>{head}</tr></thead>'
                f'<tbody>{join(body)}</tbody></table></div>')


def card(title: str, value: Any, note: Any = "", *, tone: str = "") -> Safe:
    v = value if isinstance(value, Safe) else e(value)
    n = note if isinstance(note, Safe) else e(note)
    return Safe(f'<div class="card {e(tone)}"><div class="card-title">{e(title)}</div>'
                f'<div class="card-value">{v}</div><div class="card-note">{n}</div></div>')


def cards_row(items: Iterable[Safe]) -> Safe:
    return Safe('<div class="cards">') + join(items) + Safe("</div>")


def section(title: str, body: Safe, *, id_: str | None = None, note: str | Safe = "") -> Safe:
    anchor = f' id="{e(id_)}"' if id_ else ""
    n = Safe(f'<p class="section-note">{note if isinstance(note, Safe) else e(note)}</p>') if note else Safe("")
    return Safe(f'<section{anchor}><h2>{e(title)}</h2>{n}{body}</section>')


def flash(messages: Iterable[tuple[str, str]]) -> Safe:
    return join(Safe(f'<div class="flash flash-{e(level)}" role="status">{e(text)}</div>') for level, text in messages)


# --- layout ------------------------------------------------------------------------------------------


def layout(title: str, body: Safe, *, user: Any | None = None, csrf: str | None = None, active: str = "",
           messages: Iterable[tuple[str, str]] = ()) -> str:
    nav = ""
    who = ""
    if user is not None:
        nav = join(Safe(f'<a href="{e(href)}"{CURRENT_ATTR if key == active else ""}>{e(label)}</a>')
                   for key, href, label in NAV)
        logout = (Safe(f'<form method="post" action="/logout" class="inline">{csrf_field(csrf)}'
                       '<button type="submit" class="link">Sign out</button></form>') if csrf else "")
        who = Safe(f'<div class="who"><span class="user">{e(user.name)}</span> {badge(user.role)} {logout}</div>')
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, '
        f'initial-scale=1"><title>{e(title)} · primeguard</title>'
        '<link rel="stylesheet" href="/static/app.css"></head>'
        f'<body><header class="top"><a class="brand" href="/">prime<b>guard</b></a><nav>{nav}</nav>{who}</header>'
        f'<main><h1>{e(title)}</h1>{flash(messages)}{body}</main>'
        '<footer>primeguard · custody and wallet-policy agent · times in UTC</footer></body></html>'
    )


# --- charts --------------------------------------------------------------------------------------------


def _bands(bands: Mapping[str, Any] | None) -> list[tuple[str, Decimal]]:
    out = []
    for name in ("warn", "margin_call", "halt", "liquidate"):
        d = _dec((bands or {}).get(name))
        if d is not None and d.is_finite():
            out.append((name, d))
    return out


def band_words(bands: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{n.replace('_', ' ')} {d * 100:.1f} %" for n, d in _bands(bands)) or "no bands recorded"


def ltv_bar(ltv: Any, bands: Mapping[str, Any] | None, state: str, *, infinite: bool = False,
            width: int = 220, height: int = 22) -> Safe:
    """LTV against the ladder bands: coloured band zones, a filled bar to the LTV and a marker."""
    bs = _bands(bands)
    value = _dec(ltv)
    top = max([Decimal(1)] + [d * Decimal("1.15") for _, d in bs[-1:]])
    if value is not None and value.is_finite() and value > top:
        top = min(value * Decimal("1.05"), Decimal(5))

    def x(v: Decimal) -> float:
        return float(max(Decimal(0), min(v, top)) / top) * width

    zones = []
    edges = [("normal", Decimal(0)), *bs]
    tones = ["ok", "warn", "mc", "halt", "liq"]
    for i, (_name, start) in enumerate(edges):
        end = edges[i + 1][1] if i + 1 < len(edges) else top
        x0, x1 = x(start), x(end)
        zones.append(f'<rect x="{x0:.1f}" y="0" width="{max(0.0, x1 - x0):.1f}" height="{height}" '
                     f'fill="{BAND_FILL[tones[min(i, 4)]]}"/>')
    tone = STATE_CLASS.get(state, "muted")
    stroke = STATE_STROKE.get(tone, "#667085")
    parts = list(zones)
    for _name, d in bs:
        parts.append(f'<line x1="{x(d):.1f}" y1="0" x2="{x(d):.1f}" y2="{height}" stroke="#ffffff" '
                     'stroke-width="1.5"/>')
    if infinite or (value is not None and not value.is_finite()):
        parts.append(f'<rect x="0" y="{height / 2 - 4:.1f}" width="{width}" height="8" rx="2" fill="{stroke}"/>')
        label = "LTV infinite (no haircut collateral)"
    elif value is not None:
        parts.append(f'<rect x="0" y="{height / 2 - 4:.1f}" width="{x(value):.1f}" height="8" rx="2" '
                     f'fill="{stroke}"/>')
        parts.append(f'<line x1="{x(value):.1f}" y1="1" x2="{x(value):.1f}" y2="{height - 1}" stroke="{stroke}" '
                     'stroke-width="3"/>')
        label = f"LTV {value * 100:.2f} %"
    else:
        parts.append(f'<text x="{width / 2:.0f}" y="{height / 2 + 4:.0f}" text-anchor="middle" font-size="11" '
                     'fill="#5b4fa8">no LTV: blind</text>')
        label = "LTV unknown"
    title = f"{label}; {band_words(bands)}"
    return Safe(f'<svg class="ltvbar" role="img" aria-label="{e(title)}" width="{width}" height="{height}" '
                f'viewBox="0 0 {width} {height}"><title>{e(title)}</title>{"".join(parts)}</svg>')


def ltv_chart(points: Sequence[tuple[str, Any]], bands: Mapping[str, Any] | None, *, width: int = 760,
              height: int = 260) -> Safe:
    """LTV over time as an inline SVG line chart with the ladder bands as dashed lines.
    ``points``: (ISO time, LTV or None); a None breaks the line (blind sweeps)."""
    parsed: list[tuple[datetime, Decimal | None]] = []
    for t, v in points:
        try:
            parsed.append((datetime.fromisoformat(t), _dec(v)))
        except (TypeError, ValueError):
            continue
    values = [v for _, v in parsed if v is not None and v.is_finite()]
    if not parsed or not values:
        return Safe('<p class="empty">No LTV history yet.</p>')
    bs = _bands(bands)
    left, right, top_pad, bottom = 56, 110, 14, 34
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    peak = max([*values, *(d for _, d in bs), Decimal("0.1")]) * Decimal("1.04")
    step = next((st for st in (Decimal("0.05"), Decimal("0.1"), Decimal("0.2"), Decimal("0.25"), Decimal("0.5"),
                               Decimal(1), Decimal(2), Decimal(5)) if peak / st <= 6), Decimal(10))
    ymax = (peak / step).to_integral_value(rounding="ROUND_CEILING") * step
    t0, t1 = parsed[0][0], parsed[-1][0]
    span = (t1 - t0).total_seconds() or 1.0

    def px(t: datetime) -> float:
        return left + ((t - t0).total_seconds() / span) * plot_w if len(parsed) > 1 else left + plot_w / 2

    def py(v: Decimal) -> float:
        return top_pad + plot_h - float(min(v, ymax) / ymax) * plot_h

    out: list[str] = [f'<rect x="{left}" y="{top_pad}" width="{plot_w}" height="{plot_h}" fill="#fbfcfe" '
                      'stroke="#e4e7ec"/>']
    steps = int(ymax / step)
    for i in range(steps + 1):
        v = step * i
        y = py(v)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eef0f4"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#667085">'
                   f'{float(v * 100):.0f}%</text>')
    tones = {"warn": "warn", "margin_call": "mc", "halt": "halt", "liquidate": "liq"}
    label_y = float("-inf")
    for name, d in sorted(bs, key=lambda b: -b[1]):  # top label first; keep labels 12 px apart
        y = py(d)
        color = STATE_STROKE[tones[name]]
        label_y = max(y + 4, label_y + 12)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{color}" '
                   'stroke-dasharray="5 4" stroke-width="1.2"/>')
        out.append(f'<text x="{left + plot_w + 6}" y="{label_y:.1f}" font-size="11" fill="{color}">'
                   f'{e(name.replace("_", " "))} {float(d * 100):.1f}%</text>')
    segments: list[list[tuple[float, float]]] = [[]]
    for at, v in parsed:
        if v is None or not v.is_finite():
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append((px(at), py(v)))
    for seg in segments:
        if len(seg) == 1:
            out.append(f'<circle cx="{seg[0][0]:.1f}" cy="{seg[0][1]:.1f}" r="2.5" fill="#175cd3"/>')
        elif seg:
            pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in seg)
            out.append(f'<polyline points="{pts}" fill="none" stroke="#175cd3" stroke-width="2" '
                       'stroke-linejoin="round"/>')
    last_t, last_v = next(((t, v) for t, v in reversed(parsed) if v is not None and v.is_finite()))
    out.append(f'<circle cx="{px(last_t):.1f}" cy="{py(last_v):.1f}" r="4" fill="#175cd3" stroke="#fff" '
               'stroke-width="1.5"/>')
    out.append(f'<text x="{left}" y="{height - 10}" font-size="11" fill="#667085">'
               f'{e(t0.strftime("%Y-%m-%d %H:%M"))}</text>')
    out.append(f'<text x="{left + plot_w}" y="{height - 10}" font-size="11" fill="#667085" text-anchor="end">'
               f'{e(t1.strftime("%Y-%m-%d %H:%M"))} UTC</text>')
    title = (f"LTV history, {len(parsed)} points from {t0.isoformat()} to {t1.isoformat()}; latest "
             f"{float(last_v * 100):.2f} %; {band_words(bands)}")
    return Safe(f'<svg class="chart" role="img" aria-label="{e(title)}" viewBox="0 0 {width} {height}" '
                f'width="100%" preserveAspectRatio="xMinYMin meet"><title>{e(title)}</title>{"".join(out)}</svg>')
