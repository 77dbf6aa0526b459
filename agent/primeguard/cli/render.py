"""Rich rendering of the reports for people (the JSON of ``--json`` is the same data, built in
:mod:`primeguard.pipeline.reports`). Text from venues, users and files is never rich markup."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


def plain_row(table: Table, *values: object) -> None:
    """Add a row whose text is shown as is: venue- and user-provided strings are never rich markup."""
    table.add_row(*(v if isinstance(v, Text) else Text("" if v is None else str(v)) for v in values))


def render_sweep(console: Console, report: dict[str, Any]) -> None:
    t = Table(title=f"collateral at {report['taken_at']}")
    for col in ("client", "account", "venue", "chain", "asset", "quantity", "price", "source", "age s", "USD"):
        t.add_column(col, justify="right" if col in ("quantity", "price", "age s", "USD") else "left")
    for r in report["collateral"]:
        plain_row(t, r["client"], r["account"], r["venue"], r["chain"] or "", r["asset"], r["quantity"],
                  r["price"] or "—", r["price_source"] or "no price", "" if r["price_age_s"] is None
                  else str(r["price_age_s"]), r["usd"] or "unknown")
    console.print(t)
    c = Table(title="per client")
    c.add_column("client")
    c.add_column("collateral USD", justify="right")
    for row in report["clients"]:
        plain_row(c, row["client"], row["collateral_usd"] or Text("BLIND", style="red"))
    console.print(c)
    if report["findings"]:
        f = Table(title="findings")
        for col in ("severity", "code", "subject", "message"):
            f.add_column(col)
        for x in report["findings"]:
            plain_row(f, x["severity"], x["code"], x["subject"], x["message"])
        console.print(f)


def render_capabilities(console: Console, report: dict[str, Any]) -> None:
    f = Table(title="who can move what: findings (worst first)")
    for col in ("severity", "code", "client", "subject", "message"):
        f.add_column(col)
    for x in report["findings"]:
        plain_row(f, x["severity"], x["code"], x["client"] or "", x["subject"], x["message"])
    console.print(f)
    t = Table(title="credentials and on-chain powers")
    for col in ("client", "account", "venue", "chain", "kind", "holder", "capabilities", "levers"):
        t.add_column(col)
    for c in report["credentials"]:
        caps = ", ".join(c["capabilities"])
        plain_row(t, c["client"] or "", c["account"], c["venue"], c["chain"] or "", c["kind"], c["holder"],
                  Text(caps, style="red") if c["moves_funds"] else caps, ", ".join(c.get("levers") or ()))
    console.print(t)


def render_once(console: Console, report: dict[str, Any]) -> None:
    t = Table(title=f"clients at {report['taken_at']}")
    for col in ("client", "tier", "equity USD", "loan USD", "LTV", "ladder", "blind"):
        t.add_column(col, justify="right" if col in ("equity USD", "loan USD", "LTV") else "left")
    for c in report["clients"]:
        m = c["metrics"]
        ltv = m["ltv"]
        plain_row(t, c["client"], c["tier"], f"{float(m['equity']):,.0f}", f"{float(c['loan']['owed_usd']):,.0f}",
                  ltv if ltv in (None, "inf") else f"{float(ltv):.3f}", c["ladder"]["state"],
                  "BLIND" if c["blind"] else "")
    console.print(t)
    f = Table(title="findings")
    for col in ("severity", "code", "client", "message"):
        f.add_column(col)
    for x in report["findings"]:
        plain_row(f, x["severity"], x["code"], x["client"] or "", x["message"])
    console.print(f)
