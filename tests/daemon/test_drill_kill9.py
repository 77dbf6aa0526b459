"""kill -9 the daemon at lever steps of the drill's crash episode (margin call, then straight to
liquidate: every halt and liquidate lever on Binance, OKX, Bybit, dYdX and the vault), restarting it
each time; then run every lever again. By default one kill per write mechanism (see ``KILL_POINTS``);
``PRIMEGUARD_DRILL_KILL_ALL=1`` kills at every lever step.

The daemon freezes itself at each named lever step in turn (``PRIMEGUARD_PAUSE_DIR``, see
:mod:`primeguard.venues.checkpoints`), the test sees the step in the pause file, sends SIGKILL and
restarts it. Exactly once is checked on the venues themselves: one reduce-only close per position
carrying the client order id derived from the action, one key-disabling write and one write per
transfer endpoint per exchange, one accepted dYdX transaction per close, transfer and removed
authenticator, one ``Paused`` event; and in the store: one action per kind, all done.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from v4_proto.cosmos.tx.v1beta1.tx_pb2 import TxBody, TxRaw
from web3 import Web3

from primeguard.app.runtime import Runtime
from primeguard.cli.drill import ClientInbox, DrillScenario, end_state, load_drill, set_prices, write_drill_config
from primeguard.config.loader import load_config
from primeguard.custody.vault import vault_abi
from primeguard.sandbox.world import Sandbox
from primeguard.store import audit, repos
from primeguard.store.db import open_store
from primeguard.venues.cex.levers import client_order_id
from tests.waiting import wait_until

pytestmark = [pytest.mark.chain, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
CRASH = REPO / "infra" / "scenarios" / "drill-crash.yaml"
CLIENT = "kestrel"
KINDS = {"margin_call", "halt_vault", "halt_cex", "halt_dydx", "liquidate_cex", "liquidate_dydx"}
# The venue writes that change a key or move funds: each must happen once.
KEY_WRITES = {"binance": "POST /sapi/v2/sub-account/subAccountApi/ipRestriction",
              "okx": "POST /api/v5/users/subaccount/delete-apikey",
              "bybit": "POST /v5/user/delete-sub-api"}
TRANSFER_WRITES = ("POST /sapi/v1/asset/transfer", "POST /sapi/v1/sub-account/transfer/subToMaster",
                   "POST /api/v5/asset/transfer", "POST /v5/asset/transfer/universal-transfer")
# Each sub-account's one position: the unified symbol and the venue's own instrument id (the close's
# client order id is derived from the action id and the leg's key, whichever form the venue uses).
POSITIONS = {"binance": ("ETH/USDT:USDT", "ETHUSDT"), "okx": ("BTC/USDT:USDT", "BTC-USDT-SWAP"),
             "bybit": ("ETH/USDT:USDT", "ETHUSDT")}
DEADLINE_S = 180.0
# Where the daemon is killed. Each restart costs a daemon start and a sweep, so by default once per
# write mechanism, each right after the write was done on the venue and before anything recorded it:
# a CEX order (the Binance close), a CEX transfer (the OKX sweep to the master), a key disabled (the
# Bybit halt), a dYdX transaction (the USDC transfer), the vault pause sent but not yet mined, and a
# whole action done on the venues but not yet in the store. PRIMEGUARD_DRILL_KILL_ALL=1 kills at
# every lever step instead (starts, each step of each lever, each recording: ~35 restarts).
KILL_POINTS = frozenset({
    "liquidate/liquidate_cex/kestrel-binance/close_all_positions",
    "liquidate/liquidate_cex/kestrel-okx/sweep_to_master",
    "liquidate/halt_cex/kestrel-bybit/disable_client_keys",
    "liquidate/liquidate_dydx/kestrel-dydx/transfer_usdc",
    "liquidate/halt_vault/kestrel-vault-ethereum/pause-sent",
    "liquidate/liquidate_cex/recording",
})
KILL_ALL = bool(os.environ.get("PRIMEGUARD_DRILL_KILL_ALL"))
KILL_AT = "^(" + "|".join(re.escape(p) for p in sorted(KILL_POINTS)) + ")$"


def _prices(scn: DrillScenario, name: str) -> dict[str, Any]:
    return next(s.prices for s in scn.drill.steps if s.name == name)


class Daemon:
    """``primeguard run`` on the drill config, restarted after each kill; its log is kept."""

    def __init__(self, cfg_path: Path, pause_dir: Path, log: Path) -> None:
        self.cfg_path, self.pause_dir, self.log = cfg_path, pause_dir, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        env = {**os.environ, "PRIMEGUARD_PAUSE_DIR": str(self.pause_dir)}
        if not KILL_ALL:
            env["PRIMEGUARD_PAUSE_MATCH"] = KILL_AT
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "primeguard.cli", "run", "--config", str(self.cfg_path), "--sweep-every", "0.5",
                 "--scan-every", "3600"], stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def paused(self) -> list[str]:
        path = self.pause_dir / "paused"
        return path.read_text().splitlines() if path.exists() else []

    def kill9_and_restart(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self.kills += 1
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def _actions(store: Any) -> list[Any]:
    with store.session(readonly=True) as s:
        return repos.list_actions(s, client_id=CLIENT, limit=100)


def _run_killing(daemon: Daemon, goal: Any, what: str) -> Any:
    """Until ``goal()`` holds: each time the daemon freezes at a new lever step, kill -9 it and
    restart it. Returns what ``goal`` returned."""
    while True:
        seen = len(daemon.paused())
        got = wait_until(lambda seen=seen: goal() or len(daemon.paused()) > seen, deadline_s=DEADLINE_S,
                         what=f"{what} or a new lever step (log: {daemon.log})")
        if len(daemon.paused()) > seen:
            daemon.kill9_and_restart()
            continue
        return got


def _venue_counts(sb: Sandbox, vault: Any) -> dict[str, Any]:
    """Every write that the levers make, counted from the venues' own records."""
    out: dict[str, Any] = {}
    for venue, path in KEY_WRITES.items():
        st = sb.cex.state(venue)
        with st.lock:
            out[f"{venue}:key_writes"] = st.by_path[path]
            out[f"{venue}:transfers"] = {p: st.by_path[p] for p in TRANSFER_WRITES if st.by_path[p]}
            sub = next(a for a in st.accounts.values() if a.client == CLIENT)
            out[f"{venue}:reduce_only"] = sorted(o.client_id for o in sub.orders if o.reduce_only)
    with sb.dydx.world.lock:
        msgs = Counter(m.type_url for raw in sb.dydx.world.txs.values()
                       for m in TxBody.FromString(TxRaw.FromString(raw).body_bytes).messages)
    out["dydx:txs"] = dict(msgs)
    out["vault:paused_events"] = len(vault.events.Paused().get_logs(from_block=0))
    return out


def test_kill9_at_every_lever_step_then_levers_again(tmp_path: Path) -> None:
    scn = load_drill(CRASH)
    sb = Sandbox(scn, tmp_path / "world", store_url=f"sqlite:///{tmp_path / 'k.db'}")
    pause_dir = tmp_path / "pause"
    pause_dir.mkdir()
    daemon: Daemon | None = None
    inbox = ClientInbox()
    try:
        sb.start()
        cfg_path = write_drill_config(sb, scn, inbox)
        store = open_store(f"sqlite:///{tmp_path / 'k.db'}", migrate=True)
        daemon = Daemon(cfg_path, pause_dir, tmp_path / "daemon.log")
        daemon.start()

        def ladder(state: str) -> Any:
            with store.session(readonly=True) as s:
                row = repos.latest_metric(s, CLIENT)
            return row is not None and row.ladder_state == state

        def done(kinds: set[str]) -> Any:
            rows = _actions(store)
            finished = {a.kind for a in rows if a.state == "done"}
            return rows if kinds <= finished and not any(a.state == "executing" for a in rows) else None

        _run_killing(daemon, lambda: ladder("normal"), "a first sweep")
        set_prices(sb, _prices(scn, "margin call"))
        _run_killing(daemon, lambda: done({"margin_call"}), "the margin call done")
        assert {client for _, client, _ in inbox.received} == {CLIENT}  # told (at least once) on its own route
        set_prices(sb, _prices(scn, "liquidate"))
        rows = _run_killing(daemon, lambda: done(KINDS), "every ladder action done")
        daemon.stop()

        # every chosen lever step was a kill point (all of them with PRIMEGUARD_DRILL_KILL_ALL=1)
        paused = daemon.paused()
        assert daemon.kills == len(paused) and len(set(paused)) == len(paused)
        if KILL_ALL:
            for kind in KINDS:
                assert any(f"/{kind}/" in p and p.endswith("/recording") for p in paused), kind
            assert set(paused) >= KILL_POINTS, KILL_POINTS - set(paused)
        else:
            assert set(paused) == KILL_POINTS, set(paused) ^ KILL_POINTS

        # the store: one action per kind, all done, nothing failed; the audit chain verifies
        assert Counter(a.kind for a in rows) == Counter(KINDS), [(a.kind, a.state) for a in rows]
        assert {a.state for a in rows} == {"done"}, [(a.kind, a.state, a.error) for a in rows]
        assert audit.verify(store).ok

        # the venues: each effect exactly once
        w3 = Web3(Web3.HTTPProvider(sb.chains["ethereum"].node.rpc_url))
        vault_addr = next(v.address for v in sb.config().vaults)
        vault = w3.eth.contract(address=Web3.to_checksum_address(vault_addr), abi=vault_abi())
        counts = _venue_counts(sb, vault)
        liq = next(a for a in rows if a.kind == "liquidate_cex")
        for venue, (symbol, venue_id) in POSITIONS.items():
            assert counts[f"{venue}:key_writes"] == 1, (venue, counts)
            assert counts[f"{venue}:transfers"] and set(counts[f"{venue}:transfers"].values()) == {1}, (venue, counts)
            derived = {client_order_id(liq.id, symbol), client_order_id(liq.id, venue_id)}
            assert len(counts[f"{venue}:reduce_only"]) == 1, (venue, counts)
            assert counts[f"{venue}:reduce_only"][0] in derived, (venue, counts, derived)
        assert counts["dydx:txs"] == {"/dydxprotocol.clob.MsgPlaceOrder": 1,
                                      "/dydxprotocol.sending.MsgCreateTransfer": 1,
                                      "/dydxprotocol.accountplus.MsgRemoveAuthenticator": 1}, counts
        assert counts["vault:paused_events"] == 1

        cfg = load_config(cfg_path)
        before = asyncio.run(end_state(sb, cfg, cfg_path.parent, probe_keys=False))
        assert all(not v["open_orders"] and not v["positions"] for v in before["venues"]), before

        # running the levers again changes nothing: each reports nothing left to do, no venue write
        rt = Runtime.from_config(cfg_path)
        try:
            for a in rows:
                if a.kind == "margin_call":
                    continue
                result = asyncio.run(rt.levers[a.kind](a))
                for r in result.get("reports", []):
                    statuses = {i["status"] for i in r["items"]} if "items" in r else {r["status"]}
                    assert statuses <= {"already_done", "nothing_to_do"}, (a.kind, r)
                for vault_id, what in (result.get("vaults") or {}).items():
                    assert what == "already_paused", (vault_id, what)
        finally:
            rt.close()
        assert _venue_counts(sb, vault) == counts
        after = asyncio.run(end_state(sb, cfg, cfg_path.parent, probe_keys=False))
        assert after == before
    finally:
        if daemon is not None:
            daemon.stop()
        sb.stop()
        inbox.close()

