"""``primeguard demo``: bring up the sandbox world, the guardian daemon and the dashboard, and play
the scenario's scripted events (a price crash) so the ladder can be watched at work."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from primeguard.cli.drill import ClientInbox
from primeguard.cli.render import plain_row
from primeguard.config.loader import load_config
from primeguard.config.schema import PrimeguardConfig
from primeguard.daemon.guardian import Guardian
from primeguard.safeyaml import dump_yaml
from primeguard.sandbox.scenario import Scenario
from primeguard.sandbox.world import Sandbox
from primeguard.store import repos

DEMO_USERS = (("tom", "treasury"), ("tina", "treasury"), ("carol", "compliance"), ("dave", "compliance"),
              ("vic", "viewer"), ("ann", "admin"))
SCHEMA = "primeguard.demo/1"


def _report(g: Guardian, out: Any) -> dict[str, Any]:
    ev = out.evaluation
    clients = []
    for cid, v in sorted(ev.valuations.items()):
        body = v.to_json()
        body["ladder"] = ev.ladder[cid].to_json()
        body["stress"] = ev.stress.get(cid, [])
        clients.append(body)
    findings = {}
    for f in [*out.observation.findings, *[f for s in out.observation.snapshots for f in s.findings], *ev.findings]:
        findings[f.key] = f.to_json()
    return {"schema": SCHEMA, "taken_at": out.observation.taken_at.isoformat(), "sweep_seconds": round(out.seconds, 4),
            "clients": clients, "findings": sorted(findings.values(), key=lambda x: (x["severity"], x["code"]))}


def sweep_once(world: Scenario, workdir: Path) -> dict[str, Any]:
    logging.disable(logging.CRITICAL)  # the report carries the findings; no log lines
    with Sandbox(world, workdir) as sb:
        g = Guardian(sb.config(), config_dir=sb.workdir)
        asyncio.run(g.capability_scan())
        return _report(g, asyncio.run(g.sweep("demo")))


def demo_config(sb: Sandbox, inbox: ClientInbox) -> PrimeguardConfig:
    """The sandbox's config with each client's webhook contact on ``inbox`` (``<inbox>/<client id>``),
    so the shipped plan's automatic margin-call notice reaches someone; written next to the
    sandbox's own config as ``demo-config.yaml`` and loaded (it validates, or this raises)."""
    data = sb.config_dict()
    inbox.route_clients(data)
    path = sb.workdir / "demo-config.yaml"
    path.write_text("# written by primeguard demo: local throwaway endpoints\n" + dump_yaml(data))
    return load_config(path)


def run_demo(world: Scenario, workdir: Path, *, port: int, sweep_every_s: float, console: Console) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    inbox = ClientInbox()  # the clients' side: their webhook endpoints, on this machine
    with Sandbox(world, workdir) as sb:
        # The shipped ladder_plan: margin-call notice automatic, halt levers need approval.
        cfg = demo_config(sb, inbox)
        g = Guardian(cfg, config_dir=sb.workdir)
        tokens = []
        with g.store.session() as s:
            for name, role in DEMO_USERS:
                if repos.get_user(s, name) is None:
                    _, token = repos.create_user(s, name, role, actor="demo")
                    tokens.append((name, role, token))
        web = _start_dashboard(g, port)
        console.print(f"sandbox: {', '.join(f'{k}={v}' for k, v in sb.endpoints().items())}", markup=False)
        console.print(f"dashboard: {web.url}  (log in with a token below)")
        users = Table(title="demo logins (throwaway tokens for this run)")
        for col in ("user", "role", "token"):
            users.add_column(col)
        for name, role, token in tokens:
            plain_row(users, name, role, token)
        console.print(users)
        console.print(f"store: {cfg.store.url}")
        console.print(f"client notices (margin calls) go to {inbox.url}/<client id>", markup=False)
        console.print("scripted events: " + "; ".join(
            f"t+{e.at_s:.0f}s {e.kind} {e.asset or e.venue} {e.answer or ''} on {e.chain}" for e in world.events),
            markup=False)
        console.print("Ctrl-C stops everything.")
        sb.start_events()
        try:
            asyncio.run(g.run(sweep_every_s=sweep_every_s, scan_every_s=60))
        except KeyboardInterrupt:
            pass
        finally:
            if web is not None:
                web.stop()
            inbox.close()
            console.print(f"client notices received: {len(inbox.received)}")


def _start_dashboard(g: Guardian, port: int) -> Any:
    """The dashboard on the daemon's store, with the live withdrawal service and playbooks."""
    from primeguard.web.app import create_app
    from primeguard.web.server import BackgroundServer

    rt = g.runtime
    app = create_app(rt.store, withdrawals=rt.withdrawals(), playbook=rt.playbook, policy_dir=rt.policy_dir,
                     destinations=rt.destinations())
    server = BackgroundServer(app, "127.0.0.1", port)
    server.start()
    return server
