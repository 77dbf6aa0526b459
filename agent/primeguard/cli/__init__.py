"""The ``primeguard`` command line. Thin: parse, call the library, print. Every read command has
``--json`` with a stable schema. Errors print one clear line and exit 2; nothing is half-done.

Identity: every write command acts as a user that exists in the store, resolved from a token
(``PRIMEGUARD_TOKEN``, or ``--token-file PATH`` holding it); the role is the one the store gives
that user. There is no way to name yourself or claim a role on the command line. The first user is
created with ``primeguard users bootstrap NAME`` (only while no user exists).

Output: text that comes from users, files or venues is never interpreted as rich markup (a
``[...]`` in an error message or a venue's answer is printed as is).
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from primeguard.domain.errors import AuthenticationError, PrimeguardError

app = typer.Typer(help="primeguard: custody and wallet-policy agent for crypto prime brokers.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
sandbox_app = typer.Typer(help="Local sandbox: anvil chains and venue simulators.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_SANDBOX_DIR = Path("var/sandbox")


def _runtime(config: Path) -> Any:
    """The app assembled from the config file (store opened and migrated)."""
    from primeguard.app.runtime import Runtime

    return Runtime.from_config(config)


def friendly(fn: F) -> F:
    """Turn our typed errors into one line on stderr and exit code 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PrimeguardError as exc:
            code = getattr(type(exc), "code", None)
            prefix = f"{code}: " if isinstance(code, str) else ""
            err.print(f"[red]error:[/red] {escape(prefix + str(exc))}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def _progress(wanted: bool | None) -> Any:
    """A progress sink for long sweeps and scans: each line on stderr with the seconds since the
    start (``None``: only when stderr is a terminal), or None for no progress. Standard output
    stays the report's alone."""
    import sys
    import time

    if not (wanted if wanted is not None else sys.stderr.isatty()):
        return None
    t0 = time.monotonic()

    def line(text: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f} s] {text}", file=sys.stderr, flush=True)

    return line


def say(text: str) -> None:
    """Print a line that may contain user, file or venue text: never parsed as markup."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


TOKEN_ENV = "PRIMEGUARD_TOKEN"  # noqa: S105 - the variable's name, not a secret
TOKEN_FILE_HELP = f"File holding your user token (mode 600); default: the {TOKEN_ENV} environment variable"


def read_token(token_file: Path | None) -> str:
    """The caller's token: from ``token_file`` (owner-only permissions, whitespace stripped) or
    ``$PRIMEGUARD_TOKEN``.

    Raises:
        AuthenticationError: neither given, the file is unreadable, open to group/others, or empty.
    """
    if token_file is not None:
        try:
            mode = token_file.stat().st_mode
            if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise AuthenticationError(f"{token_file}: token file is readable by group or others; "
                                          f"chmod 600 {token_file}")
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise AuthenticationError(f"{token_file}: cannot read the token file ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise AuthenticationError(f"{token_file}: the token file is not text") from None
        if not token:
            raise AuthenticationError(f"{token_file}: the token file is empty")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise AuthenticationError(f"no identity: set {TOKEN_ENV} or pass --token-file with your user token "
                                  "(tokens come from `primeguard users add` or `users bootstrap`)")
    return token


def acting_user(store: Any, token_file: Path | None) -> Any:
    """The :class:`~primeguard.domain.identity.Actor` holding the caller's token (raises AuthenticationError)."""
    from primeguard.store.identity import resolve_token

    token = read_token(token_file)
    with store.session(readonly=True) as s:
        return resolve_token(s, token)


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
        table.add_row(Text(str(k)), Text(str(v)))
    table.add_row("config", Text(str(state["config"])))
    console.print(table)
    say(f"stop with: primeguard sandbox down --dir {workdir}")


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
    progress: bool = typer.Option(None, "--progress/--no-progress",
                                  help="Progress lines on stderr (default: when stderr is a terminal)"),
) -> None:
    """Collect every venue once and print collateral per wallet and per client."""
    from primeguard.cli.render import render_sweep
    from primeguard.config import load_config
    from primeguard.pipeline.reports import sweep_report

    cfg = load_config(config)
    report = asyncio.run(sweep_report(cfg, config_dir=config.parent, progress=_progress(progress)))
    if as_json:
        emit_json(report)
    else:
        render_sweep(console, report)


@app.command()
@friendly
def capabilities(
    config: Path = typer.Option(..., "--config", help="Agent config YAML"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
    progress: bool = typer.Option(None, "--progress/--no-progress",
                                  help="Progress lines on stderr (default: when stderr is a terminal)"),
) -> None:
    """Who can move what: API keys, dYdX authenticators, approvals, Safe owners and modules."""
    from primeguard.cli.render import render_capabilities
    from primeguard.config import load_config
    from primeguard.pipeline.reports import capabilities_report

    cfg = load_config(config)
    cursor = Path(cfg.scan.cursor_file) if cfg.scan.cursor_file else None
    if cursor is not None and not cursor.is_absolute():
        cursor = config.parent / cursor
    rt = _runtime(config)
    try:  # the policy in force names the known EIP-7702 delegates (the config's list is deprecated)
        report = asyncio.run(capabilities_report(cfg, cursor_path=cursor, policy=rt.policy(),
                                                 progress=_progress(progress)))
    finally:
        rt.close()
    if as_json:
        emit_json(report)
    else:
        render_capabilities(console, report)


@app.command()
@friendly
def chains(
    config: Path = typer.Option(..., "--config", help="Agent config YAML"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
) -> None:
    """Each chain's batched-read mode (batch_mode: detected from the node, or as configured) and why."""
    from primeguard.config import load_config
    from primeguard.venues.evm.collect import chain_batch_modes

    rows = asyncio.run(chain_batch_modes(load_config(config)))
    if as_json:
        emit_json({"schema": "primeguard.chains/1", "chains": rows})
        return
    table = Table("chain", "chain id", "requested", "mode", "why")
    for r in rows:
        table.add_row(Text(str(r["chain"])), str(r["chain_id"]), str(r["requested"]),
                      Text(str(r["mode"] or "unreachable")), Text(str(r["error"] or r["reason"])))
    console.print(table)


@app.command()
@friendly
def demo(
    once: bool = typer.Option(False, "--once", help="One sweep over the demo world, then exit"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (with --once)"),
    scenario: Path = typer.Option(None, "--scenario", help="Scenario YAML (default: the demo world)"),
    port: int = typer.Option(8765, "--port", help="Dashboard port"),
    sweep_every: float = typer.Option(5.0, "--sweep-every", help="Seconds between sweeps"),
) -> None:
    """The sandbox world guarded end to end: chains, vaults, the daemon and the dashboard."""
    import tempfile

    from primeguard.cli.demo import run_demo, sweep_once
    from primeguard.sandbox.scenario import load_scenario
    from primeguard.sandbox.toolchain import project_root

    path = scenario or project_root() / "infra" / "scenarios" / "demo.yaml"
    world = load_scenario(path)
    workdir = Path(tempfile.mkdtemp(prefix="primeguard-demo-"))
    if once:
        report = sweep_once(world, workdir)
        if as_json:
            emit_json(report)
        else:
            from primeguard.cli.render import render_once

            render_once(console, report)
        return
    run_demo(world, workdir, port=port, sweep_every_s=sweep_every, console=console)


@app.command()
@friendly
def drill(
    scenario: Path = typer.Option(..., "--scenario", help="Drill scenario YAML (a sandbox world plus drill.steps)"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (schema primeguard.drill/1)"),
) -> None:
    """Rehearse the contingency ladder on a throwaway sandbox: every ladder action automatic, the
    scripted price path and outages played step by step; prints the timeline and each venue's end state."""
    from primeguard.cli.drill import load_drill, render, run_drill

    report = run_drill(load_drill(scenario))  # a bad file raises before anything starts
    if as_json:
        emit_json(report)
    else:
        render(report, say)


@app.command()
@friendly
def run(
    config: Path = typer.Option(..., "--config", help="Agent config YAML"),
    sweep_every: float = typer.Option(10.0, "--sweep-every", help="Seconds between full sweeps"),
    scan_every: float = typer.Option(300.0, "--scan-every", help="Seconds between capability scans"),
    destinations_every: float = typer.Option(60.0, "--destinations-every",
                                             help="Seconds between destination drift checks (vaults, address books)"),
    health_port: int = typer.Option(None, "--health-port", help="Serve /healthz and /metrics on this port"),
    replica: str = typer.Option(None, "--replica", help="Replica id (several replicas share one PostgreSQL)"),
    shards: int = typer.Option(1, "--shards", help="Split the book into this many leased shards"),
    lease_ttl: float = typer.Option(15.0, "--lease-ttl", help="Seconds before a dead replica's shards move"),
) -> None:
    """Run the guardian daemon until SIGTERM."""
    import logging

    from primeguard.app.runtime import Runtime
    from primeguard.daemon.guardian import Guardian

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    guardian = Guardian.from_runtime(Runtime.from_config(config), replica_id=replica, shards=shards,
                                     lease_ttl_s=lease_ttl)
    asyncio.run(guardian.run(sweep_every_s=sweep_every, scan_every_s=scan_every, health_port=health_port,
                             destinations_every_s=destinations_every))


audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
@friendly
def audit_verify(
    config: Path = typer.Option(None, "--config", help="Agent config YAML (its store)"),
    store_url: str = typer.Option(None, "--store", help="Store URL instead of a config"),
    anchor: list[Path] = typer.Option(
        [], "--anchor", help="Anchor file (JSON lines, or a log with audit-anchor lines); repeatable"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check every audit entry's hash and link, every audited row against its entry, and (with
    --anchor) that the chain contains every anchored head; exit 1 if anything is wrong."""
    from primeguard.store import audit
    from primeguard.store.db import open_store

    anchors = []
    if anchor:
        from primeguard.store.anchors import read_anchors

        for path in anchor:
            anchors.extend(read_anchors(path))
    if store_url is not None:
        store = open_store(store_url)
    else:
        from primeguard.app.runtime import Runtime

        if config is None:
            raise typer.BadParameter("give --config or --store")
        store = Runtime.from_config(config, migrate=False).store
    result = audit.verify(store, anchors=anchors)
    if as_json:
        emit_json(result.as_dict())
    else:
        say(f"audit chain {'OK' if result.ok else 'BROKEN'}: {result.checked} entries checked"
            + (f", {result.anchors_checked} anchor(s) matched" if anchors and result.ok else "")
            + ("" if result.ok else f"; first broken at seq {result.first_broken_seq}: {result.reason}"))
        for p in result.problems[:50]:
            say(f"  {p.table} {p.row_id}: {p.reason}")
        if result.problems_total > 50:
            say(f"  ... and {result.problems_total - 50} more (--json lists up to 1000)")
    if not result.ok:
        raise typer.Exit(1)


def anchors_after(fn: F) -> F:
    """After a command that wrote to the store succeeds, publish the audit head to the config's
    anchor sinks (``audit.anchors.after_cli_writes``). A failed anchor is a warning: the write stands."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        config = kwargs.get("config")
        if isinstance(config, Path):
            _publish_anchor(config)
        return out

    return wrapper  # type: ignore[return-value]


def _publish_anchor(config: Path) -> None:
    import logging

    from primeguard.app.runtime import Runtime
    from primeguard.config import load_config

    try:
        cfg = load_config(config)
        anchors = cfg.audit.anchors
        if not anchors.sinks or not anchors.after_cli_writes:
            return
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        rt = Runtime.assemble(cfg, config.parent.resolve(), migrate=False)
        try:
            _, failures = rt.anchors.anchor(rt.store, source="cli")
        finally:
            rt.close()
    except PrimeguardError as exc:
        failures = [f"audit anchor not published: {exc}"]
    for f in failures:
        err.print(f"[yellow]warning:[/yellow] {f}", markup=True, highlight=False)


policy_app = typer.Typer(help="Compliance: lint, test, diff, explain, propose and approve policies.",
                         no_args_is_help=True)
app.add_typer(policy_app, name="policy")


def _finish(result: Any, as_json: bool) -> None:
    """Print a policy CommandResult and exit with its code."""
    if as_json:
        emit_json(result.data)
    else:
        console.print(result.text, markup=False, highlight=False)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


@policy_app.command("lint")
@friendly
def policy_lint(policy_dir: Path = typer.Argument(Path("policies")), as_json: bool = typer.Option(False, "--json")
                ) -> None:
    """file:line errors, unknown references, bad checksums, expired entries, dead or contradictory rules."""
    from primeguard.policy.commands import lint_command

    _finish(lint_command(policy_dir), as_json)


@policy_app.command("test")
@friendly
def policy_test(policy_dir: Path = typer.Argument(Path("policies")), as_json: bool = typer.Option(False, "--json")
                ) -> None:
    """Run the *_test.yaml cases beside each policy file; print rule coverage."""
    from primeguard.policy.commands import run_tests_command

    _finish(run_tests_command(policy_dir), as_json)


@policy_app.command("diff")
@friendly
def policy_diff(old: Path = typer.Argument(...), new: Path = typer.Argument(...),
                as_json: bool = typer.Option(False, "--json")) -> None:
    """What changes in effect between two policy directories, in words."""
    from primeguard.policy.commands import diff_command

    _finish(diff_command(old, new), as_json)


@policy_app.command("explain")
@friendly
def policy_explain(policy_dir: Path = typer.Argument(...), input_file: Path = typer.Argument(...),
                   as_json: bool = typer.Option(False, "--json")) -> None:
    """Why a decision came out as it did (a withdrawal input, or a recorded decision)."""
    from primeguard.policy.commands import explain_command

    _finish(explain_command(policy_dir, input_file), as_json)


def _version_store(config: Path) -> Any:
    return _runtime(config).versions()


@policy_app.command("propose")
@friendly
@anchors_after
def policy_propose(
    policy_dir: Path = typer.Argument(...),
    config: Path = typer.Option(..., "--config"),
    token_file: Path = typer.Option(None, "--token-file", help=TOKEN_FILE_HELP),
    note: str = typer.Option("", "--note"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Propose the files in POLICY_DIR as a new content-hashed version (inactive until approved)."""
    from datetime import UTC, datetime

    from primeguard.policy.loader import read_policy_dir
    from primeguard.policy.versions import propose

    versions = _version_store(config)
    who = acting_user(versions.store, token_file)
    v = propose(versions, read_policy_dir(policy_dir), proposer=who.name, proposer_id=who.user_id, role=who.role,
                now=datetime.now(UTC), note=note)
    data = v.meta()
    if as_json:
        emit_json(data)
    else:
        say(f"proposed policy version {v.hash[:12]} ({v.state.value}) as {who.name}; a different compliance "
            f"user must approve it: primeguard policy approve {v.hash[:12]} --config {config}")


@policy_app.command("approve")
@friendly
@anchors_after
def policy_approve(
    ref: str = typer.Argument(..., help="Version hash or unique prefix"),
    config: Path = typer.Option(..., "--config"),
    token_file: Path = typer.Option(None, "--token-file", help=TOKEN_FILE_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Approve and activate a proposed version (a compliance user, never its proposer)."""
    from datetime import UTC, datetime

    from primeguard.policy.versions import approve

    versions = _version_store(config)
    who = acting_user(versions.store, token_file)
    v = approve(versions, ref, approver=who.name, approver_id=who.user_id, role=who.role, now=datetime.now(UTC))
    if as_json:
        emit_json(v.meta())
    else:
        say(f"policy version {v.hash[:12]} is now active (approved by {v.approved_by})")


withdraw_app = typer.Typer(help="On-chain withdrawals out of collateral vaults.", no_args_is_help=True)
app.add_typer(withdraw_app, name="withdraw")


def _withdrawal_service(config: Path) -> Any:
    return _runtime(config).withdrawals()


def _print_result(result: Any, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_json())
        return
    console.print(f"withdrawal {escape(result.withdrawal_id)}: [bold]{escape(result.state)}[/bold]"
                  + (f" tx {escape(str(result.tx_hash))}" if result.tx_hash else ""), highlight=False)
    if result.decision is not None:
        say(f"  {result.decision.outcome.value} ({', '.join(r.value for r in result.decision.reasons)}): "
            f"{result.decision.explanation}")
    if result.error:
        say(f"  {result.error}")


@withdraw_app.command("request")
@friendly
@anchors_after
def withdraw_request(
    config: Path = typer.Option(..., "--config"),
    account: str = typer.Option(..., "--account", help="Vault account id"),
    asset: str = typer.Option(..., "--asset"),
    amount: str = typer.Option(..., "--amount", help="Whole units, e.g. 1500.25"),
    to: str = typer.Option(..., "--to", help="Destination (EIP-55 checksummed)"),
    token_file: Path = typer.Option(None, "--token-file", help=TOKEN_FILE_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Ask for a withdrawal as the token's (treasury) user; the policy decides at once."""
    svc = _withdrawal_service(config)
    who = acting_user(svc.store, token_file)
    _print_result(svc.request(account_id=account, asset=asset, amount=amount, destination=to, requested_by=who),
                  as_json)


@withdraw_app.command("approve")
@friendly
@anchors_after
def withdraw_approve(
    withdrawal_id: str = typer.Argument(...),
    config: Path = typer.Option(..., "--config"),
    token_file: Path = typer.Option(None, "--token-file", help=TOKEN_FILE_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Approve a withdrawal that needs more eyes, as the token's user (never its requester)."""
    svc = _withdrawal_service(config)
    who = acting_user(svc.store, token_file)
    _print_result(svc.approve(withdrawal_id, approver=who), as_json)


@withdraw_app.command("execute")
@friendly
@anchors_after
def withdraw_execute(
    withdrawal_id: str = typer.Argument(...),
    config: Path = typer.Option(..., "--config"),
    token_file: Path = typer.Option(None, "--token-file", help=TOKEN_FILE_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Re-check (policy, and that the request is still what was approved), sign with the treasury
    keystore, broadcast and confirm (or resume after a crash). Treasury or admin."""
    svc = _withdrawal_service(config)
    who = acting_user(svc.store, token_file)
    _print_result(svc.execute(withdrawal_id, actor=who), as_json)


@withdraw_app.command("follow")
@friendly
@anchors_after
def withdraw_follow(
    withdrawal_id: str = typer.Argument(None, help="One withdrawal; default: every broadcast CEX withdrawal"),
    config: Path = typer.Option(..., "--config"),
    token_file: Path = typer.Option(None, "--token-file", help=TOKEN_FILE_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Read broadcast CEX withdrawals back from their venue and record where they ended: confirmed
    (with the tx hash), failed (with the venue's reason), still pending, or unknown (a venue status
    primeguard cannot read: a blind-spot finding, never a success). Treasury or admin."""
    svc = _withdrawal_service(config)
    who = acting_user(svc.store, token_file)
    results = [svc.follow(withdrawal_id, actor=who)] if withdrawal_id else svc.follow_all(actor=who)
    if as_json:
        emit_json({"schema": "primeguard.withdrawals_followed/1", "withdrawals": [r.to_json() for r in results]})
        return
    if not results:
        say("no broadcast CEX withdrawal to follow")
    for r in results:
        _print_result(r, False)


@withdraw_app.command("list")
@friendly
def withdraw_list(
    config: Path = typer.Option(..., "--config"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Withdrawals and their states, newest first."""
    from primeguard.domain.money import MAX_AMOUNT_CHARS, display_amount
    from primeguard.store import repos

    svc = _withdrawal_service(config)
    with svc.store.session(readonly=True) as s:
        rows = [{"id": w.id, "client": w.client_id, "account": w.account_id, "asset": w.asset,
                 "amount": display_amount(w.amount, max_chars=2 * MAX_AMOUNT_CHARS),
                 "destination": w.destination, "state": w.state, "requested_by": w.requested_by,
                 "requested_at": w.requested_at.isoformat(), "tx_hash": w.tx_hash}
                for w in repos.list_withdrawals(s)]
    if as_json:
        emit_json({"schema": "primeguard.withdrawals/1", "withdrawals": rows})
        return
    t = Table(title="withdrawals")
    for col in ("id", "client", "asset", "amount", "destination", "state", "requested_by"):
        t.add_column(col)
    for r in rows:
        t.add_row(*(Text(str(v)) for v in (r["id"][:12], r["client"], r["asset"], display_amount(r["amount"]),
                                            r["destination"], r["state"], r["requested_by"])))
    console.print(t)


@app.command()
@friendly
def web(
    config: Path = typer.Option(..., "--config", help="Agent config YAML (its store and policies)"),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8765, "--port"),
    secure_cookies: bool = typer.Option(False, "--secure-cookies", help="Behind TLS: mark cookies Secure"),
) -> None:
    """Serve the dashboard and JSON API over the daemon's store."""
    from primeguard.web.server import serve

    rt = _runtime(config)
    serve(rt.store_url, host=host, port=port, withdrawals=rt.withdrawals(), policy_dir=rt.policy_dir,
          secure_cookies=secure_cookies, destinations=rt.destinations())


users_app = typer.Typer(help="Dashboard and API users (tokens are shown once, stored hashed).",
                        no_args_is_help=True)
app.add_typer(users_app, name="users")


def _store_for(config: Path) -> Any:
    return _runtime(config).store


@users_app.command("bootstrap")
@friendly
@anchors_after
def users_bootstrap(name: str = typer.Argument(...), config: Path = typer.Option(..., "--config")) -> None:
    """Create the first user (an admin) and print its token once; refused once any user exists."""
    from primeguard.store.identity import bootstrap_admin

    with _store_for(config).session() as s:
        who, token = bootstrap_admin(s, name)
    say(f"admin {who.name} created (the first user); token (shown once): {token}")


def _admin(config: Path, token_file: Path | None) -> tuple[Any, Any]:
    from primeguard.domain.identity import Perm

    store = _store_for(config)
    who = acting_user(store, token_file)
    who.require(Perm.MANAGE_USERS)
    return store, who


@users_app.command("add")
@friendly
@anchors_after
def users_add(name: str = typer.Argument(...), role: str = typer.Option(..., "--role"),
              config: Path = typer.Option(..., "--config"),
              token_file: Path = typer.Option(None, "--token-file", help=TOKEN_FILE_HELP)) -> None:
    """Create a user (viewer, treasury, compliance, admin) and print its token once. Admins only."""
    from primeguard.store import repos

    store, who = _admin(config, token_file)
    with store.session() as s:
        row, token = repos.create_user(s, name, role, actor=who.name, actor_id=who.user_id)
    say(f"user {row.name} ({row.role}) created; token (shown once): {token}")


@users_app.command("revoke")
@friendly
@anchors_after
def users_revoke(name: str = typer.Argument(...), config: Path = typer.Option(..., "--config"),
                 token_file: Path = typer.Option(None, "--token-file", help=TOKEN_FILE_HELP)) -> None:
    """Revoke a user's token at once (sessions end on their next request). Admins only."""
    from primeguard.store import repos

    store, who = _admin(config, token_file)
    with store.session() as s:
        done = repos.revoke_user(s, name, actor=who.name, actor_id=who.user_id)
    say(f"user {name} revoked" if done else f"no active user {name}")


@users_app.command("rotate")
@friendly
@anchors_after
def users_rotate(name: str = typer.Argument(...), config: Path = typer.Option(..., "--config"),
                 token_file: Path = typer.Option(None, "--token-file", help=TOKEN_FILE_HELP)) -> None:
    """Replace a user's token; the new one is printed once. Admins only."""
    from primeguard.store import repos

    store, who = _admin(config, token_file)
    with store.session() as s:
        token = repos.rotate_token(s, name, actor=who.name, actor_id=who.user_id)
    say(f"user {name}: new token (shown once): {token}")


actions_app = typer.Typer(help="Playbook actions waiting for a person.", no_args_is_help=True)
app.add_typer(actions_app, name="actions")


@actions_app.command("list")
@friendly
def actions_list(config: Path = typer.Option(..., "--config"), state: str = typer.Option(None, "--state"),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """Playbook actions, newest first."""
    from primeguard.store import repos

    with _store_for(config).session(readonly=True) as s:
        rows = [{"id": a.id, "client": a.client_id, "kind": a.kind, "mode": a.mode, "state": a.state,
                 "approved_by": a.approved_by} for a in repos.list_actions(s, state=state)]
    if as_json:
        emit_json({"schema": "primeguard.actions/1", "actions": rows})
        return
    t = Table(title="playbook actions")
    for col in ("id", "client", "kind", "mode", "state", "approved_by"):
        t.add_column(col)
    for r in rows:
        t.add_row(*(Text(str(r[c] or "")) for c in ("id", "client", "kind", "mode", "state", "approved_by")))
    console.print(t)


@actions_app.command("approve")
@friendly
@anchors_after
def actions_approve(action_id: str = typer.Argument(...), config: Path = typer.Option(..., "--config"),
                    token_file: Path = typer.Option(None, "--token-file", help=TOKEN_FILE_HELP),
                    as_json: bool = typer.Option(False, "--json")) -> None:
    """Approve a proposed needs-approval action as the token's user (compliance or admin; never its
    proposer). The daemon executes it."""
    from primeguard.playbooks.engine import Playbook
    from primeguard.store import repos
    from primeguard.store.errors import NotFound

    store = _store_for(config)
    who = acting_user(store, token_file)
    with store.session(readonly=True) as s:
        if repos.get_action(s, action_id) is None:
            raise NotFound(f"action {action_id} not found")
    row = Playbook(store, {}).approve(action_id, approver=who)
    if as_json:
        emit_json({"id": row.id, "state": row.state, "approved_by": row.approved_by})
    else:
        say(f"action {row.id} approved by {row.approved_by}; the daemon executes it")


@actions_app.command("ack")
@friendly
@anchors_after
def actions_ack(client_id: str = typer.Argument(..., help="the client that acknowledged its margin call"),
                config: Path = typer.Option(..., "--config"),
                note: str = typer.Option("", "--note", help="how and what the client acknowledged"),
                token_file: Path = typer.Option(None, "--token-file", help=TOKEN_FILE_HELP),
                as_json: bool = typer.Option(False, "--json")) -> None:
    """Record a client's acknowledgement of its margin call as the token's user (treasury,
    compliance or admin); audited. The deadline stands: an acknowledgement never stops the clock."""
    from primeguard.domain.identity import Perm
    from primeguard.store import repos

    store = _store_for(config)
    who = acting_user(store, token_file)
    who.require(Perm.RECORD_ACK)
    with store.session() as s:
        row = repos.acknowledge_margin_call(s, client_id, actor_id=who.user_id, note=note)
        out = {"client_id": row.client_id, "state": row.state,
               "deadline": row.deadline.isoformat() if row.deadline else None,
               "acknowledged_at": row.ack_at.isoformat() if row.ack_at else None, "acknowledged_by": row.ack_by}
    if as_json:
        emit_json(out)
    else:
        due = f"; the deadline stands: {out['deadline']}" if out["deadline"] else ""
        say(f"{client_id}: margin call acknowledgement recorded by {out['acknowledged_by']} ({out['state']}){due}")


loans_app = typer.Typer(help="Client loans: what a new draw would do.", no_args_is_help=True)
app.add_typer(loans_app, name="loans")


@loans_app.command("draw-check")
@friendly
def loans_draw_check(client: str = typer.Argument(...), amount: str = typer.Option(..., "--amount",
                     help="Units of the loan's asset, e.g. 250000"),
                     config: Path = typer.Option(..., "--config"), as_json: bool = typer.Option(False, "--json")
                     ) -> None:
    """Would the policy let CLIENT draw AMOUNT more of its loan now? A fresh collection, the client
    revalued with the draw (LTV, loan / own collateral, stress) and the policy's decision. Reads
    only; exit code 1 when the draw is refused."""
    import uuid
    from datetime import UTC, datetime

    from primeguard.custody.context import LiveContext
    from primeguard.domain.errors import InputError
    from primeguard.domain.money import decimal_str, parse_amount
    from primeguard.policy.engine import deny_without_policy, evaluate_draw
    from primeguard.policy.inputs import DrawRequest

    rt = _runtime(config)
    loan = next((c.loan for c in rt.cfg.clients if c.id == client), None)
    if loan is None:
        raise InputError(f"client {client!r} has no loan in the config: nothing to draw on")
    qty, _ = parse_amount(amount, 18, what="amount")
    policy = rt.policy()
    req = DrawRequest(f"draw-{uuid.uuid4().hex[:12]}", client, qty, "cli", datetime.now(UTC))
    ctx = LiveContext(rt.cfg, rt.store, policy).draw(req)
    checks: list[dict[str, Any]] = []
    if policy is None:
        decision = deny_without_policy(req.id)
    else:
        ev = evaluate_draw(policy, req, ctx)
        decision = ev.decision
        checks = [{"rule": c.rule_id, "status": c.status, "reason": None if c.reason is None else c.reason.value,
                   "text": c.text} for c in ev.checks]
    out = {"schema": "primeguard.draw_check/1", "client": client, "amount": decimal_str(qty), "asset": loan.asset,
           "decision": {"outcome": decision.outcome.value, "reasons": [r.value for r in decision.reasons],
                        "rules": list(decision.rule_ids), "explanation": decision.explanation,
                        "policy_hash": decision.policy_hash},
           "checks": checks,
           "numbers": {k: None if v is None else decimal_str(v) for k, v in (
               ("ltv", ctx.ltv), ("post_ltv", ctx.post_ltv), ("post_loan_to_collateral", ctx.post_loan_to_collateral),
               ("post_stress_shortfall", ctx.post_stress_shortfall))}}
    if as_json:
        emit_json(out)
    else:
        say(f"draw of {decimal_str(qty)} {loan.asset} for {client}: {decision.outcome.value} "
            f"({', '.join(r.value for r in decision.reasons)})")
        say(f"  {decision.explanation}")
    if not decision.allowed:
        raise typer.Exit(1)


tiers_app = typer.Typer(help="Financing tiers earned by the track record.", no_args_is_help=True)
app.add_typer(tiers_app, name="tiers")


@tiers_app.command("review")
@friendly
def tiers_review(config: Path = typer.Option(..., "--config"), as_json: bool = typer.Option(False, "--json")
                 ) -> None:
    """Each client's track record (days without a margin call, worst drawdown, realised PnL) from the
    stored history against the policy's tier requirements; proposes promotions and demotions.
    Read-only: a change of tier goes through ``policy propose`` and a compliance approval."""
    from datetime import UTC, datetime

    from primeguard.app.tiers import review_tiers

    rt = _runtime(config)
    report = review_tiers(rt.cfg, rt.store, rt.policy(), datetime.now(UTC))
    if as_json:
        emit_json(report.to_json_dict())
        return
    t = Table(title=f"tier review (policy {report.policy_hash[:12]}, record over at most {report.lookback_days} days)")
    for col in ("client", "tier", "days", "worst drawdown", "realised PnL", "proposal", "why"):
        t.add_column(col)
    for r in report.reviews:
        rec = r.record
        proposal = "hold" if r.action == "hold" else f"{r.action} to {r.proposed_tier}"
        t.add_row(*(Text(x) for x in (r.client, r.tier, str(int(rec.days)), _fraction_pct(rec.worst_drawdown),
                                      "-" if rec.realised_pnl is None else f"{rec.realised_pnl:,.2f}", proposal,
                                      "; ".join(r.why))))
    console.print(t)


def _fraction_pct(x: Any) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def _register_destinations() -> None:
    from primeguard.cli.destinations import register

    register(app, friendly=friendly, anchors_after=anchors_after, acting_user=acting_user, emit_json=emit_json,
             say=say, store_for=_store_for)


_register_destinations()


def main() -> None:  # pragma: no cover - console entry
    app()
