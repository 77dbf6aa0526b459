"""``primeguard allowlist propose|approve|status|sync|remove`` and ``primeguard screening import|lists``.

Thin: parse, call :mod:`primeguard.custody.destinations` / :mod:`primeguard.screening`, print. The
shared CLI plumbing (error handling, identity from the token, anchors, output) is handed in by
:func:`register` so this module never imports ``primeguard.cli`` (which runs as ``__main__``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from primeguard.domain.errors import InputError

TOKEN_HELP = "File holding your user token (mode 600); default: the PRIMEGUARD_TOKEN environment variable"  # noqa: S105 - help text


def _parse_time(text: str | None, default_days: int = 365) -> datetime:
    if not text:
        return datetime.now(UTC) + timedelta(days=default_days)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--expires: {text!r} is not an ISO date/time") from None
    if t.tzinfo is None:
        raise InputError("--expires: give a time zone (e.g. 2027-01-01T00:00:00Z)")
    return t


def register(app: typer.Typer, *, friendly: Any, anchors_after: Any, acting_user: Any, emit_json: Any, say: Any,
             store_for: Any) -> None:
    """Add the ``allowlist`` and ``screening`` command groups to ``app``."""
    allow = typer.Typer(help="Withdrawal destinations: policy, vault allowlists, venue address books.",
                        no_args_is_help=True)
    screen = typer.Typer(help="Sanctions screening: imported lists.", no_args_is_help=True)
    app.add_typer(allow, name="allowlist")
    app.add_typer(screen, name="screening")

    def service(config: Path) -> Any:
        from primeguard.app.runtime import Runtime

        return Runtime.from_config(config).destinations()

    def steps_out(steps: list[Any]) -> None:
        for st in steps:
            d = st.json()
            say(f"  {d['vault']} {d['asset']} {d['address']}: {d['action']} (on chain: {d['onchain']}"
                + (f", active from {d['eta']}" if d["eta"] else "") + ")" + (f" {d['detail']}" if d["detail"] else ""))

    @allow.command("propose")
    @friendly
    @anchors_after
    def propose_cmd(
        address: str = typer.Argument(...),
        config: Path = typer.Option(..., "--config"),
        client: str = typer.Option(..., "--client"),
        venue: str = typer.Option("evm", "--venue"),
        chain: str = typer.Option("ethereum", "--chain"),
        asset: list[str] = typer.Option(..., "--asset"),
        label: str = typer.Option(..., "--label"),
        expires: str = typer.Option(None, "--expires", help="ISO time; default one year"),
        entry_id: str = typer.Option(None, "--id"),
        token_file: Path = typer.Option(None, "--token-file", help=TOKEN_HELP),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Screen ADDRESS and propose a policy version adding it (a compliance user)."""
        svc = service(config)
        who = acting_user(svc.store, token_file)
        version, screening = svc.propose(who, client=client, venue=venue, chain=chain, assets=list(asset),
                                         address=address, label=label, expires_at=_parse_time(expires),
                                         entry_id=entry_id)
        if as_json:
            emit_json({"version": version.meta(), "screening": screening.json(svc.screener.advisory)})
        else:
            say(f"proposed policy version {version.hash[:12]} adding {address}; screening clear. A different "
                f"compliance user approves it: primeguard allowlist approve {version.hash[:12]} --config {config}")

    @allow.command("approve")
    @friendly
    @anchors_after
    def approve_cmd(
        ref: str = typer.Argument(..., help="Policy version hash or unique prefix"),
        config: Path = typer.Option(..., "--config"),
        token_file: Path = typer.Option(None, "--token-file", help=TOKEN_HELP),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Approve the version (never its proposer) and propose its destinations to the vaults."""
        svc = service(config)
        who = acting_user(svc.store, token_file)
        version, steps = svc.approve(who, ref)
        if as_json:
            emit_json({"version": version.meta(), "steps": [s.json() for s in steps]})
        else:
            say(f"policy version {version.hash[:12]} is active (approved by {who.name})")
            steps_out(steps)

    @allow.command("sync")
    @friendly
    @anchors_after
    def sync_cmd(
        config: Path = typer.Option(..., "--config"),
        apply: bool = typer.Option(False, "--apply", help="Send the proposals (default: dry run)"),
        token_file: Path = typer.Option(None, "--token-file", help=TOKEN_HELP),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Bring the vaults in line with the active policy: propose what is missing, follow
        pending destinations to active. A dry run unless --apply (then a compliance user)."""
        from primeguard.domain.errors import AuthorizationError

        svc = service(config)
        who = acting_user(svc.store, token_file)
        if apply and who.role not in ("compliance", "admin"):
            raise AuthorizationError(f"{who.name} ({who.role}) may not change vault allowlists")
        steps = svc.push(actor=who.name, dry_run=not apply)
        if as_json:
            emit_json({"dry_run": not apply, "steps": [s.json() for s in steps]})
        else:
            say(("dry run: " if not apply else "") + f"{len(steps)} destination(s) on vaults")
            steps_out(steps)

    @allow.command("remove")
    @friendly
    @anchors_after
    def remove_cmd(
        address: str = typer.Argument(...),
        config: Path = typer.Option(..., "--config"),
        client: str = typer.Option(None, "--client"),
        token_file: Path = typer.Option(None, "--token-file", help=TOKEN_HELP),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Remove ADDRESS at once from every vault and for the agent; propose the policy clean-up."""
        svc = service(config)
        who = acting_user(svc.store, token_file)
        r = svc.remove(who, address, client=client)
        data = {"address": r.address, "steps": r.steps, "policy_version": r.policy_version,
                "dropped_entries": r.dropped_entries, "note": r.note}
        if as_json:
            emit_json(data)
        else:
            say(f"{r.address} removed from {len(r.steps)} vault allowlist(s); withdrawals to it are denied")
            if r.policy_version:
                say(f"  policy clean-up proposed as {r.policy_version[:12]} (a second compliance user approves)")
            if r.note:
                say(f"  {r.note}")

    @allow.command("status")
    @friendly
    def status_cmd(
        config: Path = typer.Option(..., "--config"),
        venues: bool = typer.Option(True, "--venues/--no-venues", help="Read the venues' address books"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Per destination: policy state, each vault's on-chain state, venue address books, screening."""
        rows = service(config).status(venues=venues)
        if as_json:
            emit_json({"schema": "primeguard.allowlist/1", "destinations": rows})
            return
        for r in rows:
            pol = ", ".join(f"{p['entry']}={p['state']}" for p in r["policy"]) or "not in policy"
            vaults = ", ".join(f"{v['vault']}:{v['asset']}={v['state']}" for v in r["vaults"]) or "-"
            vens = ", ".join(f"{v['account']}={v['state']}" for v in r["venues"]) or "-"
            say(f"{r['address']}  policy: {pol}  vaults: {vaults}  venues: {vens}  screening: {r['screening']}")

    @screen.command("import")
    @friendly
    @anchors_after
    def import_cmd(
        file: Path = typer.Argument(..., help="OFAC SDN advanced XML (.xml) or CSV with an address column"),
        config: Path = typer.Option(..., "--config"),
        source: str = typer.Option(None, "--source", help="Name of the list (default: from the format)"),
        token_file: Path = typer.Option(None, "--token-file", help=TOKEN_HELP),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Import a sanctions list; replaces the previous import of the same source."""
        from primeguard.screening.lists import parse_list_file
        from primeguard.store import screening as repo

        store = store_for(config)
        who = acting_user(store, token_file)
        if who.role not in ("compliance", "admin"):
            from primeguard.domain.errors import AuthorizationError

            raise AuthorizationError(f"{who.name} ({who.role}) may not import screening lists")
        parsed = parse_list_file(file)  # everything is checked before anything is written
        name = source or ("ofac-sdn" if parsed.fmt == "sdn_xml" else file.stem)
        with store.session() as s:
            row = repo.import_list(s, source=name, fmt=parsed.fmt, source_date=parsed.source_date,
                                   sha256=parsed.sha256, addresses=parsed.addresses, actor=who.name)
            data = {"id": row.id, "source": row.source, "format": row.fmt, "source_date": row.source_date,
                    "count": row.count, "sha256": row.sha256}
        if as_json:
            emit_json(data)
        else:
            say(f"imported {data['count']} address(es) from {file.name} as {name}"
                + (f" (dated {data['source_date']})" if data["source_date"] else ""))

    @screen.command("lists")
    @friendly
    def lists_cmd(config: Path = typer.Option(..., "--config"), as_json: bool = typer.Option(False, "--json")
                  ) -> None:
        """Imported lists: source, format, date, count, when and by whom."""
        from primeguard.store import screening as repo

        with store_for(config).session(readonly=True) as s:
            rows = [{"id": r.id, "source": r.source, "format": r.fmt, "source_date": r.source_date,
                     "count": r.count, "imported_at": r.imported_at.isoformat(), "imported_by": r.imported_by}
                    for r in repo.lists(s)]
        if as_json:
            emit_json({"schema": "primeguard.screening_lists/1", "lists": rows})
        else:
            for r in rows:
                say(f"{r['id']} {r['source']} {r['format']} {r['source_date'] or '-'} {r['count']} "
                    f"{r['imported_at']} {r['imported_by']}")


__all__ = ["register"]
