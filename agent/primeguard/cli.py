"""The ``primeguard`` command line. Thin: parse, call the library, print. Every read command has
``--json`` with a stable schema. Errors print one clear line and exit 2; nothing is half-done."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from primeguard.domain.errors import PrimeguardError

app = typer.Typer(help="primeguard: custody and wallet-policy agent for crypto prime brokers.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
sandbox_app = typer.Typer(help="Local sandbox: anvil chains and venue simulators.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_SANDBOX_DIR = Path("var/sandbox")


def friendly(fn: F) -> F:
    """Turn our typed errors into one line on stderr and exit code 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PrimeguardError as exc:
            err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


@sandbox_app.command("up")
@friendly
def sandbox_up_cmd(
    scenario: Path = typer.Option(..., "--scenario", exists=False, help="Scenario YAML"),
    workdir: Path = typer.Option(DEFAULT_SANDBOX_DIR, "--dir", help="Where state, config and logs go"),
) -> None:
    """Start anvil chains and simulators for SCENARIO; write the agent config; print endpoints."""
    from primeguard.sandbox.control import sandbox_up

    state = sandbox_up(scenario, workdir)
    table = Table(title="sandbox endpoints")
    table.add_column("what")
    table.add_column("where")
    for k, v in state["endpoints"].items():
        table.add_row(k, str(v))
    table.add_row("config", state["config"])
    console.print(table)
    console.print(f"stop with: primeguard sandbox down --dir {workdir}")


@sandbox_app.command("down")
@friendly
def sandbox_down_cmd(workdir: Path = typer.Option(DEFAULT_SANDBOX_DIR, "--dir")) -> None:
    """Stop exactly the processes `sandbox up` started."""
    from primeguard.sandbox.control import sandbox_down

    stopped = sandbox_down(workdir)
    console.print(f"stopped {len(stopped)} process(es)" if stopped else "no sandbox running there")


@app.command()
@friendly
def sweep(
    config: Path = typer.Option(..., "--config", help="Agent config YAML"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
) -> None:
    """Collect every venue once and print collateral per wallet and per client."""
    from primeguard.config import load_config
    from primeguard.report import render_sweep, sweep_report

    cfg = load_config(config)
    report = asyncio.run(sweep_report(cfg, config_dir=config.parent))
    if as_json:
        emit_json(report)
    else:
        render_sweep(console, report)


@app.command()
@friendly
def capabilities(
    config: Path = typer.Option(..., "--config", help="Agent config YAML"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
) -> None:
    """Who can move what: API keys, dYdX authenticators, approvals, Safe owners and modules."""
    from primeguard.config import load_config
    from primeguard.report import capabilities_report, render_capabilities

    cfg = load_config(config)
    cursor = Path(cfg.scan.cursor_file) if cfg.scan.cursor_file else None
    if cursor is not None and not cursor.is_absolute():
        cursor = config.parent / cursor
    report = asyncio.run(capabilities_report(cfg, cursor_path=cursor))
    if as_json:
        emit_json(report)
    else:
        render_capabilities(console, report)


@app.command()
@friendly
def demo(
    once: bool = typer.Option(False, "--once", help="One sweep over the demo world, then exit"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (with --once)"),
    scenario: Path = typer.Option(None, "--scenario", help="Scenario YAML (default: the demo world)"),
    interval: float = typer.Option(5.0, "--interval", help="Seconds between sweeps"),
) -> None:
    """Bring up the sandbox world and guard it: sweeps, ladder, alerts. Ctrl-C stops everything."""
    import tempfile
    import time

    from primeguard.report import render_sweep, sweep_report
    from primeguard.sandbox.scenario import load_scenario
    from primeguard.sandbox.toolchain import project_root
    from primeguard.sandbox.world import Sandbox

    path = scenario or project_root() / "infra" / "scenarios" / "demo.yaml"
    world = load_scenario(path)
    workdir = Path(tempfile.mkdtemp(prefix="primeguard-demo-"))
    with Sandbox(world, workdir) as sb:
        if not as_json:
            console.print(f"sandbox up: {', '.join(f'{k}={v}' for k, v in sb.endpoints().items())}")
        cfg = sb.config()
        if once:
            report = asyncio.run(sweep_report(cfg))
            emit_json(report) if as_json else render_sweep(console, report)
            return
        sb.start_events()
        try:
            while True:
                render_sweep(console, asyncio.run(sweep_report(cfg)))
                time.sleep(interval)
        except KeyboardInterrupt:
            console.print("stopping the sandbox")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover - `python -m primeguard.cli`
    app()
