"""Run the dYdX simulators: the indexer (aiohttp, on its own event-loop thread) and the node's
accountplus gRPC service (grpcio thread pool), on loopback and free ports.

    with DydxSimulators(scenario) as sims:
        urls = sims.start()            # {"indexer": "http://127.0.0.1:P", "node_grpc": "127.0.0.1:Q"}
        accounts = sims.config_accounts()
        sims.set_faults("dydx", FaultConfig(down=True))

Both servers work for sync and async callers alike: nothing runs on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import threading
from concurrent import futures
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import grpc
from aiohttp import web
from pydantic import ValidationError
from v4_proto.cosmos.auth.v1beta1 import query_pb2_grpc as auth_query_pb2_grpc
from v4_proto.cosmos.base.tendermint.v1beta1 import query_pb2_grpc as tendermint_query_pb2_grpc
from v4_proto.cosmos.tx.v1beta1 import service_pb2_grpc
from v4_proto.dydxprotocol.accountplus import query_pb2_grpc

from primeguard.config.schema import DydxAccountConfig
from primeguard.domain.errors import SandboxError
from primeguard.domain.model import Holder
from primeguard.sandbox.dydx.indexer import build_app
from primeguard.sandbox.dydx.node import AccountPlusQuery, AuthQuery, TendermintService, TxService
from primeguard.sandbox.dydx.scenario import DydxAuthenticatorScenario, DydxPerpScenario
from primeguard.sandbox.dydx.state import AuthRecord, ClosedPerp, DydxWorld, OrderRec, owner_secret
from primeguard.sandbox.faults import FaultConfig
from primeguard.sandbox.scenario import Scenario

FAULT_NAMES = ("dydx", "dydx-node")


class DydxSimulators:
    """The dYdX indexer and node simulators for one scenario, plus handles to change the world."""

    def __init__(self, scenario: Scenario, *, host: str = "127.0.0.1",
                 oracle_prices: dict[str, Decimal] | None = None) -> None:
        """Args:
            scenario: the sandbox world; its clients' ``dydx`` accounts are simulated.
            host: loopback address to bind.
            oracle_prices: market → price overrides (default: the scenario's feeds, ``ASSET-USD``).
        """
        self.scenario = scenario
        self.host = host
        self.world = DydxWorld(scenario, oracle_prices)
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._grpc: grpc.Server | None = None
        self._stopping = threading.Event()

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> dict[str, str]:
        """Start both servers (idempotent). Returns their endpoints."""
        with self._lock:
            if self._urls:
                return dict(self._urls)
            self._stopping.clear()
            try:
                indexer = self._start_indexer()
                node = self._start_node()
            except BaseException:
                self._stop_unlocked()
                raise
            self._urls = {"indexer": indexer, "node_grpc": node}
            return dict(self._urls)

    def _start_indexer(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        port = sock.getsockname()[1]
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            runner = web.AppRunner(build_app(self.world), access_log=None, shutdown_timeout=0.2)
            try:
                loop.run_until_complete(runner.setup())
                loop.run_until_complete(web.SockSite(runner, sock).start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(runner.cleanup())
                pending = asyncio.all_tasks(loop)  # handlers still sleeping in an injected timeout
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name="dydx-indexer-sim", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            raise SandboxError(f"dYdX indexer simulator did not start: {failure[0] if failure else 'timeout'}")
        return f"http://{self.host}:{port}"

    def _start_node(self) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="dydx-node-sim"))
        query = AccountPlusQuery(self.world, self._stopping)
        query_pb2_grpc.add_QueryServicer_to_server(query, server)
        service_pb2_grpc.add_ServiceServicer_to_server(TxService(self.world, self._stopping, query), server)
        auth_query_pb2_grpc.add_QueryServicer_to_server(AuthQuery(self.world, query), server)
        tendermint_query_pb2_grpc.add_ServiceServicer_to_server(TendermintService(self.world, query), server)
        port = server.add_insecure_port(f"{self.host}:0")
        if not port:
            raise SandboxError("dYdX node simulator could not bind a port")
        server.start()
        self._grpc = server
        return f"{self.host}:{port}"

    def stop(self) -> None:
        """Stop both servers (idempotent)."""
        with self._lock:
            self._stop_unlocked()

    def _stop_unlocked(self) -> None:
        self._stopping.set()
        if self._grpc is not None:
            self._grpc.stop(grace=0).wait(5)
            self._grpc = None
        if self._loop is not None and self._thread is not None:
            if self._loop.is_running():
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = None
        self._thread = None
        self._urls = {}

    def __enter__(self) -> DydxSimulators:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def urls(self) -> dict[str, str]:
        return dict(self._urls)

    # --- config ----------------------------------------------------------------------------------

    def config_accounts(self, *, timeout_s: float | None = None, max_age_s: int | None = None) -> list[
            DydxAccountConfig]:
        """Agent config entries pointing at the running simulators, one per scenario dYdX account."""
        if not self._urls:
            raise SandboxError("start the dYdX simulators before asking for their config")
        out: list[DydxAccountConfig] = []
        with self.world.lock:
            per_client: dict[str, int] = {}
            for st in self.world.order:
                per_client[st.client] = per_client.get(st.client, 0) + 1
            for st in self.world.order:
                acct_id = f"{st.client}-dydx" if per_client[st.client] == 1 else f"{st.client}-dydx-{st.index + 1}"
                extra: dict[str, Any] = {}
                if timeout_s is not None:
                    extra["timeout_s"] = timeout_s
                if max_age_s is not None:
                    extra["max_age_s"] = max_age_s
                out.append(DydxAccountConfig(
                    id=acct_id, client=st.client, address=st.address, subaccounts=tuple(sorted(st.subaccounts)),
                    indexer_url=self._urls["indexer"], node_grpc=self._urls["node_grpc"],
                    v3_stark_key_holders=tuple(Holder(h) for h in st.v3_holders), **extra,
                ))
        return out

    # --- faults ----------------------------------------------------------------------------------

    def set_faults(self, name: str, faults: FaultConfig) -> None:
        """Replace the faults of ``dydx`` (indexer) or ``dydx-node``. Other names: KeyError."""
        if name not in FAULT_NAMES:
            raise KeyError(name)
        self.world.faults[name].set(faults)

    def set_geo_blocked(self, blocked: bool = True) -> None:
        """Requests come from a restricted country: the indexer's address routes (addresses,
        positions, transfers) answer the geo-block 403; markets, height and time still answer."""
        with self.world.lock:
            self.world.geo_blocked = blocked

    def set_indexer_lag(self, seconds: float) -> None:
        """The indexer's latest processed block is ``seconds`` old."""
        with self.world.lock:
            self.world.lag_s = seconds

    # --- world changes ---------------------------------------------------------------------------

    def address_of(self, who: str, index: int = 0) -> str:
        """The dYdX address of a client (its ``index``-th account) or an address itself."""
        return self.world.resolve(who, index).address

    def set_oracle_price(self, market: str, price: Decimal) -> None:
        with self.world.lock:
            self.world.set_price(market, Decimal(price))

    def set_quote_balance(self, who: str, subaccount: int, usdc: Decimal) -> None:
        """Set a subaccount's signed USDC asset position (creates the subaccount if needed)."""
        with self.world.lock:
            self.world.sub(who, subaccount).usdc = Decimal(usdc)

    def set_equity(self, who: str, subaccount: int, equity: Decimal) -> None:
        """Move the USDC balance so that the subaccount's equity is ``equity`` at current prices."""
        with self.world.lock:
            sub = self.world.sub(who, subaccount)
            exposure = sum((size * self.world.price(m, entry) for m, (size, entry) in sub.perps.items()), Decimal(0))
            sub.usdc = Decimal(equity) - exposure

    def set_position(self, who: str, subaccount: int, market: str, size: Decimal,
                     entry_price: Decimal | None = None) -> None:
        """Open, change or (size 0) close a perpetual position."""
        with self.world.lock:
            sub = self.world.sub(who, subaccount)
            if Decimal(size) == 0:
                old = sub.perps.pop(market, None)
                if old is not None:
                    _, now = self.world.height()
                    sub.closed.append(ClosedPerp(market, old[0], old[1], self.world.price(market, old[1]),
                                                 sub.opened.pop(market, 0), now))
                return
            entry = Decimal(entry_price) if entry_price is not None else self.world.oracle.get(market)
            if entry is None:
                raise SandboxError(f"give an entry price for {market}: it has no oracle price")
            DydxPerpScenario(market=market, size=Decimal(size), entry_price=entry)  # validate
            if market not in sub.perps:
                sub.opened[market] = self.world.next_seq()
            sub.perps[market] = (Decimal(size), entry)
            if market not in self.world.oracle:
                self.world.set_price(market, entry)

    def set_authenticators(self, who: str, authenticators: list[DydxAuthenticatorScenario | dict[str, Any]]) -> None:
        """Replace an address's authenticators (scenario form)."""
        with self.world.lock:
            st = self.world.resolve(who)
            st.authenticators = {}
            for a in authenticators:
                self.add_authenticator(who, a)

    def add_authenticator(self, who: str, authenticator: DydxAuthenticatorScenario | dict[str, Any]) -> int:
        """MsgAddAuthenticator: store one authenticator, or refuse it as the chain's keeper would.

        Raises:
            SandboxError: the keeper refuses it (unsigned path, composite with fewer than two
                children, data over 1,024 bytes, unregistered type, undecodable sub-config) and
                ``bypass_keeper`` is not set, or the scenario form is invalid.
        """
        try:
            a = (authenticator if isinstance(authenticator, DydxAuthenticatorScenario)
                 else DydxAuthenticatorScenario.model_validate(authenticator))
        except ValidationError as exc:
            reasons = "; ".join(str(e.get("msg", "")) for e in exc.errors())
            raise SandboxError(f"authenticator refused: {reasons}") from exc
        with self.world.lock:
            st = self.world.resolve(who)
            st.authenticators[a.id] = self.world.record(st.address, a)
        return a.id

    def set_raw_authenticator(self, who: str, auth_id: int, auth_type: str, config: bytes) -> None:
        """Store exact bytes without the keeper's checks: plays a node that does not behave like
        dYdX (malformed or refused configs on purpose, for fail-closed tests)."""
        with self.world.lock:
            st = self.world.resolve(who)
            st.authenticators[auth_id] = AuthRecord(auth_id, auth_type, bytes(config))

    def owner_key_hex(self, who: str, index: int = 0) -> str:
        """The sandbox owner private key (hex) of a scenario account whose address was derived (the
        key that may sign anything for it). Raises KeyError for explicit scenario addresses."""
        st = self.world.resolve(who, index)
        if st.pubkey is None or st.index < 0:
            raise KeyError(f"{who!r} has an explicit address: the sandbox holds no owner key for it")
        return owner_secret(st.client, st.index).hex()

    def account_info(self, who: str) -> tuple[int, int]:
        """(account number, sequence) of an address or a client's first account."""
        with self.world.lock:
            st = self.world.resolve(who)
            return st.account_number, st.sequence

    def set_spread(self, spread: Decimal) -> None:
        """The simulated book quotes oracle ± ``spread`` (a fraction, e.g. 0.001 = 10 bp)."""
        with self.world.lock:
            self.world.spread = Decimal(spread)

    @property
    def chain_id(self) -> str:
        return self.world.chain_id

    def add_order(self, who: str, subaccount: int, market: str, side: str, size: Decimal, price: Decimal, *,
                  client_id: int, stateful: bool = False, ttl_blocks: int = 20, ttl_s: int = 3600) -> None:
        """Rest an order on the book (as if the client had placed it): short-term (good for
        ``ttl_blocks`` blocks) or stateful long-term (good for ``ttl_s`` seconds). It never fills."""
        if side not in ("BUY", "SELL"):
            raise SandboxError("side must be BUY or SELL")
        with self.world.lock:
            if market not in self.world.clob_ids:
                raise SandboxError(f"{market} has no clob pair in the sandbox")
            height, now = self.world.height()
            flags = 64 if stateful else 0
            cid = self.world.clob_ids[market]
            self.world.sub(who, subaccount).orders[(client_id, flags, cid)] = OrderRec(
                client_id=client_id, flags=flags, clob_pair_id=cid, market=market, side=side, size=Decimal(size),
                price=Decimal(price), ioc=False, reduce_only=False,
                good_til_block=None if stateful else height + ttl_blocks,
                good_til_block_time=int(now) + ttl_s if stateful else None, created_height=height,
                seq=self.world.next_seq())

    def open_orders(self, who: str, subaccount: int) -> list[OrderRec]:
        """Copies of the subaccount's open orders."""
        with self.world.lock:
            sub = self.world.resolve(who).subaccounts.get(subaccount)
            return [] if sub is None else [copy.copy(o) for o in sub.orders.values() if o.status == "OPEN"]

    def usdc(self, who: str, subaccount: int) -> Decimal:
        with self.world.lock:
            sub = self.world.resolve(who).subaccounts.get(subaccount)
            return Decimal(0) if sub is None else sub.usdc

    def positions(self, who: str, subaccount: int) -> dict[str, Decimal]:
        """market → signed size of the open perpetual positions."""
        with self.world.lock:
            sub = self.world.resolve(who).subaccounts.get(subaccount)
            return {} if sub is None else {m: s for m, (s, _) in sub.perps.items()}

    def remove_authenticator(self, who: str, auth_id: int) -> None:
        with self.world.lock:
            self.world.resolve(who).authenticators.pop(auth_id, None)

    def record_transfer(self, who: str, subaccount: int, *, amount: Decimal, recipient: str,
                        kind: str = "WITHDRAWAL", symbol: str = "USDC") -> None:
        """Add a row to ``/v4/transfers`` (shape of the indexer's transfer objects)."""
        with self.world.lock:
            st = self.world.resolve(who)
            height, now = self.world.height()
            st.transfers.append({
                "_number": subaccount, "_seq": self.world.next_seq(), "id": f"sim-{len(st.transfers) + 1}",
                "sender": {"address": st.address, "subaccountNumber": subaccount},
                "recipient": {"address": recipient}, "size": str(Decimal(amount)), "symbol": symbol,
                "type": kind, "createdAt": datetime.fromtimestamp(now, tz=UTC).isoformat().replace("+00:00", "Z"),
                "createdAtHeight": str(height), "transactionHash": f"{len(st.transfers) + 1:064X}",
            })
