"""``primeguard drill --scenario FILE [--json]``: rehearse the contingency ladder on the sandbox.

The drill starts the sandbox world of the scenario (anvil, CEX and dYdX simulators) with a
throwaway store in a temporary folder, puts every ladder action in ``automatic`` mode, then plays
the scenario's ``drill.steps``: each step moves oracle prices (chain feeds, CEX marks and dYdX
oracle together, so the venues agree) and takes venues down for that step, then sweeps. The
sweeps are the guardian's own (:meth:`primeguard.daemon.guardian.Guardian.sweep`): its ladder
proposes the rung's actions and its playbook runs the levers, exactly as the daemon would.

The report is a timeline (each step, each rung entered with its LTV, each lever per venue and
account with what it did and the outcome) and each venue's end state read from the venues
themselves: whether each client key is still usable (a real signed request with it), open
orders, positions, balances per account (the broker's accounts too: where collateral went),
dYdX authenticators, and whether each vault is paused. ``flatten_s`` is the time from the
observation that put a client at ``liquidate`` to every venue reading flat.

dYdX: the broker acts through the client's authenticator held by ``operator`` (the permissioned
key a client grants its prime broker); in the sandbox that key is the sandbox broker key
(:data:`BROKER_PUBKEY`), and freed USDC goes to the broker's own subaccount.

Errors: a bad scenario is a ConfigError with file:line before anything starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from primeguard.config.loader import load_config, load_yaml_model
from primeguard.config.schema import PrimeguardConfig
from primeguard.daemon.guardian import LADDER_ACTIONS, Guardian
from primeguard.safeyaml import dump_yaml
from primeguard.sandbox.scenario import Scenario
from primeguard.sandbox.world import Sandbox
from primeguard.store import repos
from primeguard.store.tables import ActionRow

SCHEMA = "primeguard.drill/1"
BROKER = "pb-broker"  # the sandbox broker's own dYdX account (owner key derived like a client's)
FAULT_VENUES = ("binance", "okx", "bybit", "dydx", "dydx-node")
LEVER_KINDS = tuple(sorted({k for kinds in LADDER_ACTIONS.values() for k in kinds}))
Price = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


def _broker_secret() -> bytes:
    from primeguard.sandbox.dydx.state import owner_secret

    return owner_secret(BROKER, 0)


def broker_pubkey() -> str:
    """Hex of the sandbox broker key's compressed public key (what a drill scenario's dYdX broker
    authenticator names in its ``SignatureVerification``)."""
    from coincurve import PrivateKey

    return bytes(PrivateKey(_broker_secret()).public_key.format(compressed=True)).hex()


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DrillStep(_M):
    """One step of the episode: set ``prices`` (asset → USD), keep ``outage`` venues down for the
    step (they come back at the next step unless listed again), then sweep ``sweeps`` times."""

    name: str = Field(min_length=1, max_length=80)
    prices: dict[str, Price] = Field(default_factory=dict)
    outage: tuple[str, ...] = ()
    sweeps: int = Field(default=1, ge=1, le=20)

    @field_validator("outage")
    @classmethod
    def _venues(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for venue in v:
            if venue not in FAULT_VENUES:
                raise ValueError(f"unknown venue {venue!r}; known: {', '.join(FAULT_VENUES)}")
        return v


class DrillPlan(_M):
    steps: tuple[DrillStep, ...] = Field(min_length=1, max_length=200)


class DrillScenario(Scenario):
    """A sandbox scenario plus the drill's episode (``drill.steps``) instead of timed ``events``."""

    drill: DrillPlan

    @model_validator(mode="after")
    def _episode(self) -> DrillScenario:
        if self.events:
            raise ValueError("a drill scripts its episode in drill.steps, not in events")
        priced = {f.asset for f in self.feeds}
        for step in self.drill.steps:
            for asset in step.prices:
                if asset not in priced:
                    raise ValueError(f"step {step.name!r}: no feed for {asset!r} (feeds: {', '.join(sorted(priced))})")
        return self


def load_drill(path: Path) -> DrillScenario:
    """Load and validate a drill scenario. Raises ConfigError with file:line; starts nothing."""
    return load_yaml_model(path, DrillScenario)


# --- the world and its config -------------------------------------------------------------------


class ClientInbox:
    """The clients' side of the drill: a local HTTP endpoint standing in for each client's webhook.
    Every notice posted to ``/<client id>`` is kept with the moment it arrived (monotonic clock)."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.received: list[tuple[float, str, dict[str, Any]]] = []
        inbox = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    doc = json.loads(body or b"{}")
                except ValueError:
                    doc = {"unreadable": True}
                inbox.received.append((time.monotonic(), self.path.strip("/").split("?")[0], doc))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def route_clients(self, config: dict[str, Any]) -> None:
        """Point each client of ``config`` (a config dict) at this inbox: its webhook contact is
        ``<inbox>/<client id>``."""
        for c in config.get("clients", []):
            c["contacts"] = {"webhook": {"value": f"{self.url}/{c['id']}"}}


def automatic_plan(source: Path, target: Path) -> Path:
    """A copy of the policy at ``source`` in ``target`` whose ladder-plan rungs all run ``automatic``
    (what a drill rehearses; capability steps keep their mode). Test files are left out. Returns
    ``target``."""
    import re

    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*_test.yaml"))
    for path in target.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if not re.search(r"^kind:\s*ladder_plan\s*$", text, re.M):
            continue
        head, sep, tail = text.partition("\ncapability:")
        path.write_text(re.sub(r"mode:\s*(dry_run|needs_approval|shadow)", "mode: automatic", head) + sep + tail,
                        encoding="utf-8")
    return target


def write_drill_config(sb: Sandbox, scn: Scenario, inbox: ClientInbox | None = None) -> Path:
    """Write ``drill-config.yaml`` next to the sandbox's config: each client's webhook contact on
    ``inbox`` (when given), and each dYdX account with an ``operator`` authenticator acted on with
    the sandbox broker key (freed USDC to the broker's subaccount 0), and the policy copied with
    its ladder plan in automatic mode (:func:`automatic_plan`; the plan says which levers run at
    which rung). Returns its path (it loads, or this raises)."""
    data = sb.config_dict()
    data["policy_dir"] = str(automatic_plan(Path(data["policy_dir"]), sb.workdir / "drill-policies"))
    if inbox is not None:
        inbox.route_clients(data)
    if data.get("dydx_accounts"):
        from primeguard.sandbox.dydx.state import derive_address

        key_file = sb.workdir / "secrets" / "dydx-broker.key"
        key_file.write_text(_broker_secret().hex())
        key_file.chmod(0o600)
        operators = _dydx_operator_authenticators(scn)
        for acct in data["dydx_accounts"]:
            auth_id = operators.get(acct["address"])
            if auth_id is None:
                continue
            acct["broker"] = {"key": {"file": str(key_file)}, "authenticator_id": auth_id,
                              "chain_id": sb.dydx.chain_id, "sweep_address": derive_address(BROKER, 0)}
    path = sb.workdir / "drill-config.yaml"
    path.write_text("# written by primeguard drill: local throwaway endpoints\n" + dump_yaml(data))
    load_config(path)
    return path


def _dydx_operator_authenticators(scn: Scenario) -> dict[str, int]:
    from primeguard.sandbox.dydx.state import derive_address

    out: dict[str, int] = {}
    for c in scn.clients:
        for i, acct in enumerate(c.dydx):
            auth = next((a for a in acct.authenticators if a.holder == "operator"), None)
            if auth is not None:
                out[acct.address or derive_address(c.id, i)] = auth.id
    return out


def set_prices(sb: Sandbox, prices: dict[str, Decimal]) -> None:
    """Move each asset's price everywhere at once: every chain feed for it (and the dYdX oracle)
    and every CEX market on it (mark and last), so the venues never disagree with the oracle."""
    for asset, price in prices.items():
        for cid, chain in sb.chains.items():
            if asset in chain.feeds:
                sb.set_price(asset, price, chain=cid)
        if sb.cex is not None:
            for venue in FAULT_VENUES[:3]:
                st = sb.cex.state(venue)
                if asset in st.markets:
                    st.set_price(asset, price)


def set_outages(sb: Sandbox, down: Iterable[str]) -> None:
    """Exactly the venues in ``down`` refuse every request (the others answer again)."""
    from primeguard.sandbox.faults import FaultConfig

    down = set(down)
    for venue in FAULT_VENUES:
        sim = sb.dydx if venue.startswith("dydx") else sb.cex
        if sim is not None:
            sim.set_faults(venue, FaultConfig(down=venue in down))


# --- the episode --------------------------------------------------------------------------------


def pct(ltv: Decimal | None) -> str:
    """An LTV as people read it: ``96.34 %`` (``unknown``, ``infinite`` when there is none)."""
    if ltv is None:
        return "unknown"
    if not ltv.is_finite():
        return "infinite"
    return f"{ltv * 100:.2f} %"


class Episode:
    """Plays a drill's steps on a running sandbox with a guardian over ``config_path``."""

    def __init__(self, sb: Sandbox, scn: DrillScenario, config_path: Path, inbox: ClientInbox | None = None) -> None:
        self.sb = sb
        self.inbox = inbox
        self._notices_seen = 0
        self.scn = scn
        self.cfg: PrimeguardConfig = load_config(config_path)
        self.config_dir = config_path.parent
        self.timeline: list[dict[str, Any]] = []
        self._reported: set[str] = set()
        self._t0 = time.monotonic()
        self.liquidate_at: float | None = None
        self.flat_at: float | None = None
        self._became_flat: float | None = None

    def _t(self, at: float | None = None) -> float:
        return round((at if at is not None else time.monotonic()) - self._t0, 3)

    async def run(self) -> dict[str, Any]:
        g = Guardian(self.cfg, config_dir=self.config_dir, action_modes=dict.fromkeys(LEVER_KINDS, "automatic"))
        try:
            for step in self.scn.drill.steps:
                set_prices(self.sb, step.prices)
                set_outages(self.sb, step.outage)
                self.timeline.append({"t_s": self._t(), "kind": "step", "step": step.name,
                                      "prices": {k: str(v) for k, v in step.prices.items()},
                                      "outage": list(step.outage)})
                for _ in range(step.sweeps):
                    await self._sweep(g, step.name)
            set_outages(self.sb, ())
            end = await end_state(self.sb, self.cfg, self.config_dir)
        finally:
            g.store.close()
        flatten = (None if self.liquidate_at is None or self.flat_at is None
                   else round(self.flat_at - self.liquidate_at, 4))
        return {"schema": SCHEMA, "scenario": self.scn.name, "clients": [c.id for c in self.scn.clients],
                "plan": {"mode": "automatic", "rungs": {s.label: list(k) for s, k in LADDER_ACTIONS.items()}},
                "timeline": self.timeline, "end_state": end, "flatten_s": flatten}

    async def _sweep(self, g: Guardian, step: str) -> None:
        t_start = time.monotonic()
        watch = asyncio.create_task(self._watch_flat()) if self.flat_at is None else None
        try:
            out = await g.sweep("drill")
        finally:
            if watch is not None:
                watch.cancel()
        obs = out.observation
        seen = [*obs.findings, *(f for snap in obs.snapshots for f in snap.findings), *out.evaluation.findings]
        blind = sorted({f.subject for f in seen if f.is_blind_spot})
        if blind:
            self.timeline.append({"t_s": self._t(t_start), "kind": "blind", "step": step, "accounts": blind})
        for m in out.evaluation.moves:
            self.timeline.append({"t_s": self._t(t_start), "kind": "rung", "step": step, "client": m.client_id,
                                  "at": out.observation.taken_at.isoformat(), "from": m.previous.state.label,
                                  "to": m.current.state.label, "ltv": pct(m.ltv)})
            if m.current.state.label == "liquidate" and self.liquidate_at is None:
                self.liquidate_at = t_start
        with g.store.session(readonly=True) as s:
            actions = sorted(repos.list_actions(s, limit=1000), key=run_order)
        for a in actions:
            if a.id in self._reported or a.state not in ("done", "failed"):
                continue
            self._reported.add(a.id)
            self.timeline.extend({"t_s": self._t(), "step": step, **e, "kind": "lever"}
                                 for e in lever_entries(a, self.cfg))
        if self.inbox is not None:
            for at, client, doc in self.inbox.received[self._notices_seen:]:
                self.timeline.append({"t_s": self._t(at), "kind": "notice", "step": step, "client": client,
                                      "ltv": pct(_dec(doc.get("ltv"))), "deadline": doc.get("deadline"),
                                      "schema": doc.get("schema")})
            self._notices_seen = len(self.inbox.received)
        if self.liquidate_at is not None and self.flat_at is None and is_flat(self.sb, self.cfg):
            self.flat_at = self._became_flat or time.monotonic()

    async def _watch_flat(self) -> None:
        """While a sweep runs: the first moment every venue reads flat after it did not (polled
        every 10 ms from the simulators' state)."""
        self._became_flat = None
        was_flat = is_flat(self.sb, self.cfg)
        while True:
            await asyncio.sleep(0.01)
            flat = is_flat(self.sb, self.cfg)
            if flat and not was_flat:
                self._became_flat = time.monotonic()
                return
            was_flat = flat


def _dec(value: Any) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except ArithmeticError:
        return None


def run_order(a: ActionRow) -> tuple[Any, ...]:
    """The order the playbook runs actions proposed together (see ``Playbook.run_ready``)."""
    return (a.created_at, not a.kind.startswith("liquidate_"), a.id)


def _venue_of(cfg: PrimeguardConfig) -> dict[str, str]:
    venues: dict[str, str] = {a.id: a.venue for a in cfg.cex_accounts}
    venues.update({a.id: "dydx" for a in cfg.dydx_accounts})
    venues.update({v.id: f"evm:{v.chain}" for v in cfg.vaults})
    return venues


def lever_entries(action: ActionRow, cfg: PrimeguardConfig) -> list[dict[str, Any]]:
    """What an action did, one entry per venue account and lever, in words (``action``: its kind;
    ``lever``: the venue lever, e.g. ``close_all_positions``): ``did`` lists each
    item (``target: status (detail)``); ``outcome`` is done / already_done / failed / refused.
    Reads the levers' own reports (``result.reports``, ``result.vaults``), so new lever kinds
    reporting the same way show up without change here."""
    venues = _venue_of(cfg)
    base = {"action_id": action.id, "action": action.kind, "client": action.client_id}
    result = dict(action.result or {})
    out: list[dict[str, Any]] = []
    if action.state == "failed" and not result.get("reports"):
        return [{**base, "venue": "-", "account": "-", "lever": action.kind, "did": [],
                 "outcome": "failed", "error": str(action.error or "")[:500]}]
    for r in result.get("reports") or []:
        acct = str(r.get("account", "-"))
        venue = str(r.get("venue") or venues.get(acct, "-"))
        if "items" in r:  # CEX lever report
            did = [f"{i['target']}: {i['status']}" + (f" ({i['detail']})" if i.get("detail") else "")
                   for i in r["items"]]
            outcome = "failed" if not r.get("ok", True) else ("done" if r.get("changed") else "already_done")
        else:  # dYdX lever result
            did = [f"{t}: done" for t in r.get("done", [])] + [f"{t}: not done" for t in r.get("not_done", [])]
            if r.get("reason"):
                did.append(str(r["reason"]))
            outcome = {"nothing_to_do": "already_done"}.get(str(r.get("status")), str(r.get("status")))
        out.append({**base, "venue": venue, "account": acct, "lever": str(r.get("lever", action.kind)),
                    "did": did or ["nothing to do"], "outcome": outcome})
    for vault_id, what in (result.get("vaults") or {}).items():
        out.append({**base, "venue": venues.get(vault_id, "evm"), "account": vault_id, "lever": "pause_vault",
                    "did": [f"vault: {what}"], "outcome": "already_done" if what == "already_paused" else "done"})
    if not out:  # e.g. the margin-call notice
        did = [f"{k}: {v}" for k, v in result.items() if v is not None and k != "episode"]
        if "ltv" in result:
            did = [f"LTV {pct(Decimal(str(result['ltv'])))}" if d.startswith("ltv:") else d for d in did]
        out.append({**base, "venue": "client", "account": action.client_id, "lever": action.kind,
                    "did": did or ["recorded"], "outcome": "done"})
    return out


# --- end state, read from the venues ------------------------------------------------------------


def is_flat(sb: Sandbox, cfg: PrimeguardConfig) -> bool:
    """No open order and no position on any client CEX or dYdX account (read from the simulators)."""
    rows = [_cex_row(sb, a) for a in cfg.cex_accounts]
    rows += [_dydx_row(sb, d.id, d.address, d.subaccounts, "client") for d in cfg.dydx_accounts]
    return all(not v["open_orders"] and not v["positions"] for v in rows)


async def end_state(sb: Sandbox, cfg: PrimeguardConfig, config_dir: Path | None, *,
                    probe_keys: bool = True) -> dict[str, Any]:
    """Each venue account as the venue sees it now (see the module docstring). With ``probe_keys``
    each client key is tried with a real signed balance request: ``usable`` is whether it answered."""
    venues: list[dict[str, Any]] = []
    for a in cfg.cex_accounts:
        row = _cex_row(sb, a)
        if probe_keys:
            row["client_keys"] = await _probe_client_keys(a, config_dir)
        venues.append(row)
    if sb.cex is not None:
        for venue in sorted({a.venue for a in cfg.cex_accounts}):
            st = sb.cex.state(venue)
            with st.lock:
                venues.append({"venue": venue, "account": "broker-master", "role": "broker", "open_orders": [],
                               "positions": [], "balances": _cex_balances(st.master)})
    for d in cfg.dydx_accounts:
        venues.append(_dydx_row(sb, d.id, d.address, d.subaccounts, "client"))
        if d.broker is not None and d.broker.sweep_address:
            venues.append(_dydx_row(sb, "broker", d.broker.sweep_address, (d.broker.sweep_subaccount,), "broker"))
    for v in cfg.vaults:
        venues.append(await asyncio.to_thread(_vault_row, sb, v.id, v.chain, v.address))
    return {"venues": venues}


def _cex_row(sb: Sandbox, a: Any) -> dict[str, Any]:
    st = sb.cex.state(a.venue)
    with st.lock:
        sub = st.sub_by_name(a.sub_account or "")
        if sub is None:
            return {"venue": a.venue, "account": a.id, "role": "client", "open_orders": ["sub-account not found"],
                    "positions": [], "balances": {}}
        return {"venue": a.venue, "account": a.id, "role": "client",
                "open_orders": [f"{o.market} {o.symbol} {o.side} {o.amount} @ {o.price}" for o in sub.open_orders()],
                "positions": [f"{p.base} {p.size}" for p in sub.positions.values() if p.size != 0],
                "balances": _cex_balances(sub), "sub_account_frozen": sub.frozen}


def _cex_balances(acct: Any) -> dict[str, dict[str, str]]:
    wallets = {"spot": acct.spot, "futures": acct.futures}
    out = {name: {k: str(v) for k, v in held.items() if v} for name, held in wallets.items()}
    return {k: v for k, v in out.items() if v}


async def _probe_client_keys(account: Any, config_dir: Path | None) -> list[dict[str, Any]]:
    from primeguard.domain.model import Holder
    from primeguard.venues.cex.client import CexClientPool

    out: list[dict[str, Any]] = []
    async with CexClientPool(base_dir=config_dir, rate_limit_ms=1) as pool:
        for cred in (c for c in account.credentials if c.holder == Holder.CLIENT):
            ex = pool.exchange(account, cred.id)
            try:
                await ex.fetch_balance()
                out.append({"key": cred.id, "usable": True, "answer": "balance read"})
            except Exception as exc:  # the venue's refusal is the point: report it, never raise
                out.append({"key": cred.id, "usable": False, "answer": f"{type(exc).__name__}: {exc}"[:200]})
    return out


def _dydx_row(sb: Sandbox, account_id: str, address: str, subaccounts: Iterable[int], role: str) -> dict[str, Any]:
    from primeguard.sandbox.dydx.server import DydxSimulators

    sims: DydxSimulators = sb.dydx
    with sims.world.lock:
        st = sims.world.addresses.get(address)
        auths = [] if st is None else [{"id": a.id, "type": a.type, "holder": a.holder}
                                       for a in sorted(st.authenticators.values(), key=lambda a: a.id)]
        subs = {} if st is None else st.subaccounts
        orders = [f"{n}:{o.market} {o.side} {o.size} @ {o.price}" for n in subaccounts if n in subs
                  for o in subs[n].orders.values() if o.status == "OPEN"]
        positions = [f"{n}:{m} {s}" for n in subaccounts if n in subs for m, (s, _) in subs[n].perps.items() if s]
        balances = {f"subaccount {n}": {"USDC": str(subs[n].usdc)} for n in subaccounts if n in subs}
    row: dict[str, Any] = {"venue": "dydx", "account": account_id, "role": role, "open_orders": orders,
                           "positions": positions, "balances": balances}
    if role == "client":
        row["authenticators"] = auths
    return row


_BALANCE_OF: list[dict[str, Any]] = [{"type": "function", "name": "balanceOf", "stateMutability": "view",
                "inputs": [{"name": "owner", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]}]


def _vault_row(sb: Sandbox, vault_id: str, chain: str, address: str) -> dict[str, Any]:
    from web3 import Web3

    from primeguard.custody.vault import vault_abi

    d = sb.chains[chain]
    w3 = Web3(Web3.HTTPProvider(d.node.rpc_url))
    vault = w3.eth.contract(address=Web3.to_checksum_address(address), abi=vault_abi())
    balances: dict[str, str] = {}
    for sym, (token, decimals, _asset) in d.tokens.items():
        erc20 = w3.eth.contract(address=Web3.to_checksum_address(token), abi=_BALANCE_OF)
        raw = erc20.functions.balanceOf(vault.address).call()
        if raw:
            balances[sym] = str(Decimal(raw).scaleb(-decimals))
    return {"venue": f"evm:{chain}", "account": vault_id, "role": "client", "open_orders": [], "positions": [],
            "balances": {"vault": balances} if balances else {}, "paused": bool(vault.functions.paused().call())}


# --- the command ---------------------------------------------------------------------------------


def run_drill(scn: DrillScenario, *, workdir: Path | None = None) -> dict[str, Any]:
    """Start the sandbox world of ``scn`` in a throwaway folder (``workdir``, or a temporary one
    removed afterwards), play the episode, stop everything, and return the report (schema
    ``primeguard.drill/1``)."""
    own = workdir is None
    folder = workdir or Path(tempfile.mkdtemp(prefix="primeguard-drill-"))
    logging.disable(logging.CRITICAL)  # the report says what failed; no log lines on the way
    try:
        sb = Sandbox(scn, folder, store_url=f"sqlite:///{folder / 'drill.db'}")
        inbox = ClientInbox()
        try:
            with sb:
                path = write_drill_config(sb, scn, inbox)
                return asyncio.run(Episode(sb, scn, path, inbox).run())
        finally:
            inbox.close()
    finally:
        logging.disable(logging.NOTSET)
        if own:
            shutil.rmtree(folder, ignore_errors=True)


def render(report: dict[str, Any], say: Any) -> None:
    """The report for people: the timeline, then each venue's end state."""
    say(f"drill {report['scenario']} (plan: every ladder action automatic)")
    for e in report["timeline"]:
        t = f"t+{e['t_s']:7.2f}s"
        if e["kind"] == "step":
            moves = ", ".join(f"{k} {v}" for k, v in e["prices"].items()) or "prices unchanged"
            down = f"; down: {', '.join(e['outage'])}" if e["outage"] else ""
            say(f"{t}  step {e['step']}: {moves}{down}")
        elif e["kind"] == "blind":
            say(f"{t}    blind spot: {', '.join(e['accounts'])}")
        elif e["kind"] == "notice":
            due = f", deadline {e['deadline']}" if e.get("deadline") else ""
            say(f"{t}    {e['client']} received the margin-call notice (LTV {e['ltv']}{due})")
        elif e["kind"] == "rung":
            say(f"{t}    {e['client']}: {e['from']} -> {e['to']} at LTV {e['ltv']}")
        else:
            say(f"{t}    lever {e['action']} on {e['venue']} {e['account']} ({e['lever']}): {e['outcome']}")
            for d in e["did"]:
                say(f"               - {d}")
            if e.get("error"):
                say(f"               - {e['error']}")
    say("end state:")
    for v in report["end_state"]["venues"]:
        parts = [f"{v['venue']} {v['account']} ({v['role']}):"]
        if "client_keys" in v:
            parts.append("client keys " + ", ".join(
                f"{k['key']} {'USABLE' if k['usable'] else 'refused'}" for k in v["client_keys"]))
        if "authenticators" in v:
            parts.append("authenticators " + (", ".join(f"{a['id']} ({a['holder']})" for a in v["authenticators"])
                                              or "none"))
        if "paused" in v:
            parts.append("paused" if v["paused"] else "NOT PAUSED")
        if v["role"] == "client" and "paused" not in v:
            parts.append(f"open orders {len(v['open_orders'])}, positions {len(v['positions'])}"
                         + (f" ({'; '.join(v['positions'])})" if v["positions"] else ""))
        bal = "; ".join(f"{k} " + ", ".join(f"{a} {q}" for a, q in b.items()) for k, b in v["balances"].items())
        parts.append(f"balances {bal or 'none'}")
        say("  " + " ".join(parts))
    if report["flatten_s"] is not None:
        say(f"liquidate rung -> every venue flat: {report['flatten_s']:.3f} s")
