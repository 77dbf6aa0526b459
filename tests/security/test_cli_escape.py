"""Defect N.10: CLI errors and tables were printed as rich markup, so ``[...]`` in user, file or
venue text disappeared (``^[a-z0-9][a-z0-9-]{0,40}$`` printed as ``^{0,40}$``). Everything the CLI
prints from outside is shown as is."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from primeguard.cli.render import render_capabilities, render_sweep
from tests.clitools import run_cli, token_in
from tests.conftest import REPO

PATTERN = "^[a-z0-9][a-z0-9-]{0,40}$"
MARKUP = "[red]venue said[/red] [bold]no[/bold] [link=http://x]y[/link]"


def test_error_keeps_brackets(tmp_path: Path) -> None:
    bad = tmp_path / "scenario.yaml"
    bad.write_text('name: esc\nfeeds: [{asset: ETH, answer: "3000"}]\nclients: [{id: "Bad Client"}]\n')
    out = run_cli("demo", "--once", "--scenario", str(bad), cwd=REPO)
    assert out.returncode == 2, out.stdout + out.stderr
    assert PATTERN in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_user_text_is_printed_literally(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f'store: {{url: "sqlite:///{tmp_path / "e.db"}"}}\n')
    name = "[bold]boss[/bold]"
    out = run_cli("users", "bootstrap", name, "--config", str(config), cwd=REPO)
    token_in(out)
    assert f"admin {name} created" in out.stdout, out.stdout
    missing = tmp_path / "[red]nope[/red]"
    err = run_cli("policy", "propose", str(missing), "--config", str(config), cwd=REPO,
                  token=token_in(out))
    assert err.returncode == 2 and "[red]nope[/red]" in err.stderr, err.stderr


def _render(fn, report) -> str:
    buf = io.StringIO()
    fn(Console(file=buf, width=400, color_system=None), report)
    return buf.getvalue()


def test_tables_show_venue_text_as_is() -> None:
    finding = {"severity": "high", "code": "venue_error", "subject": "acct[x]", "client": "c[y]",
               "message": f"{MARKUP} {PATTERN}"}
    sweep = {"taken_at": "now", "collateral": [{
        "client": "c", "account": "a[b]", "venue": "binance", "chain": None, "asset": "[i]USDT[/i]", "quantity": "1",
        "price": None, "price_source": None, "price_age_s": None, "usd": None}],
        "clients": [{"client": "c", "collateral_usd": None}], "findings": [finding]}
    text = _render(render_sweep, sweep)
    for literal in (MARKUP, PATTERN, "a[b]", "[i]USDT[/i]", "acct[x]", "BLIND"):
        assert literal in text, text
    caps = {"findings": [finding], "credentials": [{
        "client": None, "account": "a", "venue": "evm", "chain": "ethereum", "kind": "[k]", "holder": "client",
        "capabilities": ["withdraw[all]"], "moves_funds": True}]}
    text = _render(render_capabilities, caps)
    for literal in (MARKUP, PATTERN, "[k]", "withdraw[all]"):
        assert literal in text, text
