"""Playbook actions in words, for people (dashboard, notices, drills). Pure.

:func:`result_lines` says what a lever did, one line per venue account (``"binance sub-a: cancelled
3 orders; key disabled"``); :func:`params_text` the figures an action carries (``"LTV 96.34 %"``).
Ratios are shown as percentages with two decimals, money as dollars; never raw JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

# lever name in a report -> (what "done" items did, with {n}; what "nothing to do" means)
_VERBS: Mapping[str, tuple[str, str]] = {
    "cancel_all_orders": ("cancelled {n} order{s}", "no open orders"),
    "cancel_orders": ("cancelled {n} order{s}", "no open orders"),
    "close_all_positions": ("closed {n} position{s}", "no open positions"),
    "close_positions": ("closed {n} position{s}", "no open positions"),
    "disable_client_keys": ("disabled {n} client key{s}", "client keys already disabled"),
    "remove_authenticators": ("removed {n} authenticator{s}", "no client authenticator left"),
    "transfer_usdc": ("moved USDC to the broker", "no USDC to move"),
    "sell_spot": ("sold {n} spot slice{s} into the loan currency", "no spot collateral to sell"),
    "sweep_to_master": ("moved {n} balance{s} to the broker's master account", "nothing to move to the broker"),
}
_RATIO_KEYS = ("ltv", "cure_below", "margin_call", "warn", "halt", "liquidate", "hysteresis")


def _dec(value: Any) -> Decimal | None:
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def percent(value: Any) -> str:
    """A ratio as people read it: ``0.96342`` → ``"96.34 %"``; ``"unknown"`` when it is not a number."""
    d = _dec(value)
    return "unknown" if d is None else f"{d * 100:,.2f} %"


def dollars(value: Any) -> str:
    """``"1234.5"`` → ``"$1,234.50"``; ``"unknown"`` when it is not a number."""
    d = _dec(value)
    return "unknown" if d is None else f"${d:,.2f}"


def params_text(params: Mapping[str, Any]) -> str:
    """The figures of a ladder action: LTV, what cures it, the deadline (empty when none)."""
    parts = []
    if params.get("ltv") is not None:
        parts.append(f"LTV {percent(params['ltv'])}")
    if params.get("post_usd") is not None:
        parts.append(f"cure: post {dollars(params['post_usd'])} or repay {dollars(params.get('repay_usd'))} "
                     f"to get under {percent(params.get('cure_below'))}")
    if params.get("deadline"):
        parts.append(f"deadline {params['deadline']}")
    for key in ("symbol", "spender", "chain"):
        if params.get(key):
            parts.append(f"{key} {params[key]}")
    return " · ".join(parts)


def _plural(text: str, n: int) -> str:
    return text.format(n=n, s="" if n == 1 else "s")


def _report_phrases(rep: Mapping[str, Any]) -> list[str]:
    lever = str(rep.get("lever", "lever"))
    done_text, nothing = _VERBS.get(lever, (lever.replace("_", " ") + ": {n} done", lever.replace("_", " ")
                                            + ": nothing to do"))
    out: list[str] = []
    if "items" in rep:  # exchange reports: one item per target
        items = [i for i in rep.get("items", ()) if isinstance(i, Mapping)]
        done = [i for i in items if i.get("status") == "done"]
        failed = [i for i in items if i.get("status") == "failed"]
        if done:
            out.append(_plural(done_text, len(done)))
        for i in failed:
            out.append(f"{lever.replace('_', ' ')} failed on {i.get('target')}: {i.get('detail') or 'no detail'}")
        if not done and not failed:
            out.append(nothing)
        return out
    status = rep.get("status")  # dYdX results: done / nothing_to_do / refused
    done_list: Sequence[Any] = rep.get("done") or ()
    if done_list:
        out.append(_plural(done_text, len(done_list)))
    if status == "refused":
        left = len(rep.get("not_done") or ())
        why = rep.get("reason") or str(rep.get("why") or "refused").replace("_", " ")
        out.append(f"{lever.replace('_', ' ')} refused ({left} left undone): {why}")
    elif not done_list:
        out.append(nothing)
    return out


def result_lines(kind: str, result: Mapping[str, Any] | None, error: str | None = None) -> list[str]:
    """What an action's lever did, in words: one line per venue account (venue and account first),
    ``kind`` the action's lever kind (unused by the known shapes; kept for new levers' words),
    per vault, per notice route; the error of a failed action last. Unknown shapes are summarised
    by their keys' plain values, never as JSON."""
    lines: list[str] = []
    r = dict(result or {})
    if r.get("shadow"):
        lines.append(f"shadow: {r.get('would') or 'recorded only'}")
    reports = [x for x in r.get("reports", ()) if isinstance(x, Mapping)]
    if reports:
        by_account: dict[str, list[str]] = {}
        for rep in reports:
            where = " ".join(str(x) for x in (rep.get("venue") or ("dydx" if "status" in rep else ""),
                                              rep.get("account")) if x)
            by_account.setdefault(where or "venue", []).extend(_report_phrases(rep))
        lines += [f"{where}: {'; '.join(phrases)}" for where, phrases in by_account.items()]
    for vault, outcome in dict(r.get("vaults") or {}).items():
        lines.append(f"vault {vault}: {str(outcome).replace('_', ' ')}")
    if "notice" in r:  # the margin-call lever
        deliveries = [d for d in r.get("deliveries", ()) if isinstance(d, Mapping)]
        for d in deliveries:
            tries = int(d.get("attempts") or 0)
            if d.get("ok"):
                lines.append(f"notice sent by {d.get('route')} to {d.get('to')} ({tries} attempt{'s' * (tries != 1)})")
            else:
                lines.append(f"notice by {d.get('route')} to {d.get('to')} failed: {d.get('error')}")
        if not deliveries:
            lines.append("margin-call notice recorded (no client route)")
    if r.get("result") and ("spender" in r or "operator" in r or "wallet" in r):
        target = r.get("spender") or r.get("operator") or r.get("wallet")
        lines.append(f"{str(r['result']).replace('_', ' ')}: {r.get('token') or r.get('collection') or ''} "
                     f"{target}".replace("  ", " "))
    if not lines and r:
        lines.append(plain(r))
    if error:
        lines.append(f"failed: {error}")
    return lines


def plain(value: Any, *, prefix: str = "", limit: int = 12) -> str:
    """A mapping as ``key: value`` pairs (nested keys dotted, ratios as percentages), at most
    ``limit`` pairs: what a person reads instead of JSON."""
    pairs: list[str] = []

    def walk(v: Any, key: str) -> None:
        if isinstance(v, Mapping):
            for k, sub in v.items():
                walk(sub, f"{key}.{k}" if key else str(k))
        elif isinstance(v, list | tuple):
            if all(not isinstance(x, Mapping | list | tuple) for x in v):
                pairs.append(f"{key}: {', '.join(str(x) for x in v) or 'none'}")
            else:
                for i, sub in enumerate(v):
                    walk(sub, f"{key}[{i + 1}]")
        elif v is not None and v != "":
            leaf = key.rsplit(".", 1)[-1]
            text = percent(v) if leaf in _RATIO_KEYS and _dec(v) is not None else str(v)
            pairs.append(f"{key}: {text}" if key else text)

    walk(value, prefix)
    more = f"; … {len(pairs) - limit} more" if len(pairs) > limit else ""
    return "; ".join(pairs[:limit]) + more
