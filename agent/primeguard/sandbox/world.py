"""The whole sandbox: anvil chains + venue simulators + the agent config that points at them.

:class:`Sandbox` is used in-process by tests and by ``primeguard demo``; ``primeguard sandbox up``
runs it in a detached host process (:mod:`primeguard.sandbox.host`) and ``down`` stops exactly it.
Nothing starts before the scenario validates.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from web3 import Web3

from primeguard.config.loader import load_config
from primeguard.config.schema import PrimeguardConfig
from primeguard.safeyaml import dump_yaml
from primeguard.sandbox.anvil import AnvilNode, start_anvil
from primeguard.sandbox.chain import DeployedChain, build_chain, set_feed_round
from primeguard.sandbox.scenario import EventScenario, Scenario


@dataclass
class Sandbox:
    """A running sandbox world. Use as a context manager or call ``start``/``stop``."""

    scenario: Scenario
    workdir: Path
    policy_dir: str | None = None
    store_url: str | None = None
    chains: dict[str, DeployedChain] = field(default_factory=dict)
    cex: Any = None
    dydx: Any = None
    config_path: Path | None = None
    urls: dict[str, str] = field(default_factory=dict)
    on_spawn: Callable[[int], None] | None = None  # told each child process id as it starts
    _nodes: list[AnvilNode] = field(default_factory=list)  # every anvil started, deployed or not
    _events: threading.Thread | None = None
    _stop_events: threading.Event = field(default_factory=threading.Event)
    # A scenario loan without a start starts here (the agent config requires one).
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def start(self, *, run_events: bool = False) -> Path:
        """Start everything, write ``config.yaml`` into ``workdir``, return its path. On any failure
        everything started so far (anvil nodes included) is stopped before the error propagates."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            for chain in self.scenario.chains:
                node = start_anvil(chain_id=chain.chain_id, block_time=chain.block_time_s,
                                   log_dir=self.workdir / "logs", on_spawn=self.on_spawn)
                self._nodes.append(node)  # before building: a failed build must still stop it
                self.chains[chain.id] = build_chain(node, chain, self.scenario)
            if any(c.cex for c in self.scenario.clients):
                from primeguard.sandbox.cex.server import CexSimulators

                self.cex = CexSimulators(self.scenario)
                self.urls.update({f"cex:{k}": v for k, v in self.cex.start().items()})
            if any(c.dydx for c in self.scenario.clients):
                from primeguard.sandbox.dydx.server import DydxSimulators

                self.dydx = DydxSimulators(self.scenario)
                self.urls.update({f"dydx:{k}": v for k, v in self.dydx.start().items()})
            self.config_path = self._write_config()
        except BaseException:
            self.stop()
            raise
        if run_events:
            self.start_events()
        return self.config_path

    def start_events(self) -> None:
        """Play the scenario's scripted events (price moves, outages) on a background thread."""
        if self.scenario.events and self._events is None:
            self._events = threading.Thread(target=self._run_events, name="sandbox-events", daemon=True)
            self._events.start()

    def stop(self) -> None:
        """Stop the simulators and every anvil this sandbox started (idempotent)."""
        self._stop_events.set()
        for sim in (self.cex, self.dydx):
            if sim is not None:
                sim.stop()
        for node in [*self._nodes, *(d.node for d in self.chains.values() if d.node not in self._nodes)]:
            node.stop()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- config ---------------------------------------------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        secrets_dir = self.workdir / "secrets"
        secrets_dir.mkdir(mode=0o700, exist_ok=True)
        chains, tokens, feeds, wallets, vaults = [], [], [], [], []
        for cid, d in self.chains.items():
            chains.append({"id": cid, "chain_id": d.chain.chain_id, "rpc_url": d.node.rpc_url,
                           "ws_url": d.node.ws_url, "batch_reader": d.batch_reader,
                           "call_gas_cap": 100_000_000, "max_block_age_s": None})
            for sym, (addr, dec, asset) in d.tokens.items():
                tokens.append({"symbol": sym, "chain": cid, "address": addr, "decimals": dec, "asset": asset})
            for asset, (addr, dec, hb) in d.feeds.items():
                feeds.append({"asset": asset, "chain": cid, "address": addr, "decimals": dec, "heartbeat_s": hb})
            for v in d.vaults:
                # Listed once: the config counts a vault's balances as a contract wallet of its own.
                vaults.append({"id": f"{v.client}-vault-{cid}", "client": v.client, "chain": cid,
                               "address": v.address})
            counters: dict[str, int] = {}
            for w in d.wallets:
                counters[w["client"]] = counters.get(w["client"], 0) + 1
                wallets.append({"id": f"{w['client']}-{cid}-{counters[w['client']]}", "client": w["client"],
                                "chain": cid, "address": w["address"], "kind": w["kind"], "label": w["label"]})
        clients = []
        for c in self.scenario.clients:
            entry: dict[str, Any] = {"id": c.id, "name": c.name or c.id, "tier": c.tier}
            if c.loan is not None:
                entry["loan"] = c.loan.model_dump(mode="json", exclude_none=True)
                entry["loan"].setdefault("start", self.started_at.isoformat())
            clients.append(entry)
        cfg: dict[str, Any] = {
            "version": 1,
            "policy_dir": self.policy_dir or str(_repo_policies()),
            "store": {"url": self.store_url or f"sqlite:///{self.workdir / 'primeguard.db'}"},
            "chains": chains, "tokens": tokens, "feeds": feeds, "clients": clients, "wallets": wallets,
            "cex_accounts": [], "dydx_accounts": [], "vaults": vaults,
        }
        if vaults:
            cfg["custody"] = self._write_keystores(secrets_dir)
        oracles = [{"chain": cid, "address": d.sanctions_oracle} for cid, d in self.chains.items()
                   if getattr(d, "sanctions_oracle", None)]
        if oracles:
            cfg["screening"] = {"oracles": oracles, "ttl_s": 60}
        if self.cex is not None:
            cfg["cex_accounts"] = [a.model_dump(mode="json", exclude_none=True)
                                   for a in self.cex.config_accounts(secrets_dir)]
        if self.dydx is not None:
            cfg["dydx_accounts"] = [a.model_dump(mode="json", exclude_none=True)
                                    for a in self.dydx.config_accounts()]
        return cfg

    def _write_keystores(self, secrets_dir: Path) -> dict[str, Any]:
        """Encrypted keystores for the sandbox treasury and guardian keys (throwaway keys), with a
        random password in a 0600 file; production configs take the password from the environment."""
        import secrets as pysecrets

        from eth_account import Account as EthAccount

        from primeguard.sandbox.chain import derived_account
        from primeguard.sandbox.vaults import COMPLIANCE_KEY_INDEX, GUARDIAN_KEY_INDEX, TREASURY_KEY_INDEX

        pw_file = secrets_dir / "keystore-password"
        if not pw_file.exists():
            pw_file.write_text(pysecrets.token_urlsafe(24))
            pw_file.chmod(0o600)
        password = pw_file.read_text()
        paths = {}
        for name, index in (("treasury", TREASURY_KEY_INDEX), ("guardian", GUARDIAN_KEY_INDEX),
                            ("compliance", COMPLIANCE_KEY_INDEX)):
            path = secrets_dir / f"{name}.keystore.json"
            if not path.exists():
                # Light scrypt parameters: sandbox keys only, and tests open them many times.
                blob = EthAccount.encrypt(derived_account(index)[1], password, kdf="scrypt", iterations=2**10)
                path.write_text(json.dumps(blob))
                path.chmod(0o600)
            paths[name] = str(path)
        return {"treasury_keystore": paths["treasury"], "guardian_keystore": paths["guardian"],
                "compliance_keystore": paths["compliance"], "password": {"file": str(pw_file)}}

    def _write_config(self) -> Path:
        path = self.workdir / "config.yaml"
        path.write_text("# written by primeguard sandbox: local throwaway endpoints\n"
                        + dump_yaml(self.config_dict()))
        load_config(path)  # what we write must load: fail here, not in the agent
        return path

    def config(self) -> PrimeguardConfig:
        assert self.config_path is not None
        return load_config(self.config_path)

    # --- scripted world changes ------------------------------------------------------------------

    def set_price(self, asset: str, answer: Decimal, *, chain: str = "ethereum", age_s: int = 0) -> None:
        """Write a new oracle round (one transaction, mined at once on auto-mine chains)."""
        d = self.chains[chain]
        addr, decimals, _ = d.feeds[asset]
        from primeguard.venues.evm.artifacts import contract_artifact

        w3 = Web3(Web3.HTTPProvider(d.node.rpc_url))
        agg = w3.eth.contract(address=addr, abi=contract_artifact("SandboxAggregator")["abi"])
        set_feed_round(agg, answer, decimals, d.deployer, age_s=age_s)
        if self.dydx is not None and hasattr(self.dydx, "set_oracle_price"):
            self.dydx.set_oracle_price(f"{asset}-USD", answer)

    def refresh_prices(self) -> None:
        """Post every chain feed's latest answer again as a new round updated now, as a feed's
        heartbeat does (a slow test must not see its prices go stale between two steps)."""
        from primeguard.venues.evm.artifacts import contract_artifact

        abi = contract_artifact("SandboxAggregator")["abi"]
        for d in self.chains.values():
            w3 = Web3(Web3.HTTPProvider(d.node.rpc_url))
            for addr, decimals, _hb in d.feeds.values():
                agg = w3.eth.contract(address=addr, abi=abi)
                answer = Decimal(int(agg.functions.latestRoundData().call()[1])).scaleb(-decimals)
                set_feed_round(agg, answer, decimals, d.deployer)

    def apply_event(self, ev: EventScenario) -> None:
        if ev.kind == "price" and ev.asset and ev.answer is not None:
            self.set_price(ev.asset, ev.answer, chain=ev.chain)
        elif ev.kind in ("outage", "recover") and ev.venue:
            from primeguard.sandbox.faults import FaultConfig

            faults = FaultConfig(down=ev.kind == "outage")
            for sim in (self.cex, self.dydx):
                if sim is not None:
                    try:
                        sim.set_faults(ev.venue, faults)
                    except KeyError:
                        continue

    def _run_events(self) -> None:
        start = time.monotonic()
        for ev in sorted(self.scenario.events, key=lambda e: e.at_s):
            if self._stop_events.wait(max(0.0, start + ev.at_s - time.monotonic())):
                return
            self.apply_event(ev)

    def endpoints(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"chain:{cid}": d.node.rpc_url for cid, d in self.chains.items()}
        out.update(self.urls)
        return out

    def pids(self) -> list[int]:
        return [os.getpid(), *(d.node.pid for d in self.chains.values())]


def _repo_policies() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "policies").is_dir() and (parent / "pyproject.toml").exists():
            return parent / "policies"
    return Path("policies").resolve()


def anvil_nodes(sandbox: Sandbox) -> list[AnvilNode]:
    return [d.node for d in sandbox.chains.values()]
