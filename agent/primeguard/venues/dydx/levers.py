"""Circuit-breaker levers on a client's dYdX v4 account, sent as node transactions through
dydx-v4-client (``Builder`` signs, ``NodeClient.broadcast`` sends) with the broker's key:

- :func:`cancel_open_orders`: ``MsgCancelOrder`` for every open short-term and stateful order;
- :func:`close_positions`: a reduce-only short-term IOC ``MsgPlaceOrder`` per perpetual position,
  limit at oracle ± the slippage cap (never worse): the book fills it or it is removed unfilled;
- :func:`remove_authenticators`: ``MsgRemoveAuthenticator`` for the client's authenticators (never
  the broker's own);
- :func:`transfer_free_usdc`: ``MsgCreateTransfer`` of each subaccount's free USDC to the broker's
  subaccount.

Why a subaccount transfer and not ``MsgWithdrawFromSubaccount``: the money stays on the dYdX chain,
lands as collateral in the broker's own subaccount in the same block (where the broker can use it
to offset or close exposure at once), is refused by the chain when it would leave the client's
subaccount undercollateralized, and shows on both sides in the indexer (TRANSFER_OUT / TRANSFER_IN)
for reconciliation. A withdrawal lands in the broker's bank balance, which then needs a second
deposit before it is usable as collateral.

Which key acts: ``DydxAccountConfig.broker`` (a secret: mnemonic or hex private key). With
``authenticator_id`` the transaction selects that ``x/accountplus`` authenticator of the client's
account (``TxExtension.selected_authenticators``) — the permissioned key a client grants its prime
broker; without it the key must be the account's owner key.

Every lever re-reads the state (indexer for orders, positions and balances; node for
authenticators, account number and sequence) before acting, so a second run finds nothing to do.
Closing orders use client ids derived from the action id. Before sending, a lever checks that the
broker's authenticator admits the message for that subaccount and market; when it does not, the
lever sends nothing for that item and answers ``refused`` with ``why="no_power"`` and the items it
could not do (the caller raises a critical finding). The lever never logs, stores or returns the
key.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path as FsPath
from typing import Any, Literal

import grpc
from dydx_v4_client.key_pair import KeyPair
from dydx_v4_client.node.builder import Builder, TxOptions
from dydx_v4_client.node.client import NodeClient
from dydx_v4_client.node.message import cancel_order, order_id, remove_authenticator, subaccount, transfer
from dydx_v4_client.wallet import Wallet
from v4_proto.cosmos.tx.v1beta1.tx_pb2 import Fee
from v4_proto.dydxprotocol.clob.order_pb2 import Order
from v4_proto.dydxprotocol.clob.tx_pb2 import MsgPlaceOrder

from primeguard.config.loader import resolve_secret
from primeguard.config.schema import DydxAccountConfig, PrimeguardConfig
from primeguard.domain.errors import (
    ConfigError,
    VenueBadResponse,
    VenueError,
    VenueRateLimited,
    VenueUnavailable,
)
from primeguard.domain.money import to_decimal
from primeguard.venues.checkpoints import checkpoint, step_name
from primeguard.venues.dydx.analysis import AuthenticatorConfigError, expand_paths, parse_authenticator
from primeguard.venues.dydx.indexer import IndexerReader
from primeguard.venues.dydx.node import DeadlineInterceptor, RawAuthenticator, list_authenticators

VENUE = "dydx-node"
MSG_PLACE = "/dydxprotocol.clob.MsgPlaceOrder"
MSG_CANCEL = "/dydxprotocol.clob.MsgCancelOrder"
MSG_TRANSFER = "/dydxprotocol.sending.MsgCreateTransfer"
MSG_REMOVE_AUTH = "/dydxprotocol.accountplus.MsgRemoveAuthenticator"
OPEN_STATUSES = frozenset({"OPEN", "BEST_EFFORT_OPENED", "UNTRIGGERED"})
SHORT_TERM, CONDITIONAL, LONG_TERM = 0, 32, 64
CLOSE_BLOCKS = 10  # a closing IOC is good for this many blocks (the chain allows up to 20)
CANCEL_TTL_S = 120  # a stateful cancel is good for this long
QUOTE_QUANTUMS = Decimal(10) ** 6
QUOTE_ATOMIC_RESOLUTION = -6
DEFAULT_SLIPPAGE_CAP = Decimal("0.02")
# Chain answers that mean "already so" for the item: the order is gone, the authenticator is gone.
ALREADY_GONE = {("clob", 2), ("clob", 3006), ("clob", 3010), ("accountplus", 1)}

Status = Literal["done", "nothing_to_do", "refused"]
Why = Literal["", "no_power", "not_configured", "slippage_cap", "chain_refused"]


@dataclass(frozen=True)
class DydxLeverResult:
    """What one lever did on one dYdX account.

    ``status``: ``done`` (it changed something), ``nothing_to_do`` (the state already was what the
    lever wants) or ``refused``: ``why`` says why (``no_power``: the broker's credential lacks the
    power; ``not_configured``: no broker key; ``slippage_cap``: an IOC close did not fill within
    the cap; ``chain_refused``: the chain refused a transaction) and ``not_done`` lists exactly
    the items left undone. ``done`` lists what was done; ``tx_hashes`` the accepted transactions.
    """

    lever: str
    account_id: str
    status: Status
    why: Why = ""
    reason: str = ""
    done: tuple[str, ...] = ()
    not_done: tuple[str, ...] = ()
    tx_hashes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"lever": self.lever, "account": self.account_id, "status": self.status, "why": self.why,
                "reason": self.reason, "done": list(self.done), "not_done": list(self.not_done),
                "tx_hashes": list(self.tx_hashes)}


class DydxLeverFailed(VenueError):
    """At least one dYdX lever was refused; ``results`` say which and why (playbook wrapper only)."""

    def __init__(self, message: str, results: list[DydxLeverResult]) -> None:
        super().__init__(message, venue="dydx")
        self.results = results


@dataclass(frozen=True)
class TxAnswer:
    code: int
    codespace: str
    log: str
    txhash: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def client_id(action_id: str, *parts: object) -> int:
    """Deterministic 32-bit order client id: the same action on the same target → the same id."""
    raw = "\x1f".join([action_id, *map(str, parts)]).encode()
    return int.from_bytes(hashlib.sha256(raw).digest()[:4], "big")


def load_key(account: DydxAccountConfig, base_dir: FsPath | None = None) -> KeyPair:
    """The broker's key pair for ``account``: a 64-hex private key or a BIP-39 mnemonic.

    Raises:
        ConfigError: no broker key configured, unreadable secret, or a value that is neither form.
            The message names the account, never the value.
    """
    if account.broker is None:
        raise ConfigError(f"dYdX account {account.id} has no broker key")
    secret = resolve_secret(account.broker.key, base_dir=base_dir).strip()
    hexpart = secret[2:] if secret[:2].lower() == "0x" else secret
    pair: KeyPair | None = None
    try:
        if len(hexpart) == 64 and all(c in "0123456789abcdefABCDEF" for c in hexpart):
            pair = KeyPair.from_hex(hexpart)
        elif len(secret.split()) in (12, 15, 18, 21, 24):
            pair = KeyPair.from_mnemonic(" ".join(secret.split()))
    except Exception:  # the library's message may quote the secret: say nothing of it
        pair = None
    if pair is not None:
        return pair
    raise ConfigError(f"the broker key of dYdX account {account.id} is neither a 64-hex private key nor a valid "
                      "BIP-39 mnemonic") from None


def _round_to(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step


@dataclass
class _MarketParams:
    ticker: str
    clob_pair_id: int
    oracle: Decimal
    atomic_resolution: int
    quantum_conversion_exponent: int
    step_base_quantums: int
    subticks_per_tick: int

    def quantums(self, size: Decimal) -> int:
        raw = abs(size) * Decimal(10) ** (-self.atomic_resolution)
        return int(_round_to(raw, Decimal(self.step_base_quantums), ROUND_FLOOR))

    def subticks(self, price: Decimal, rounding: str) -> int:
        exponent = self.atomic_resolution - self.quantum_conversion_exponent - QUOTE_ATOMIC_RESOLUTION
        raw = price * Decimal(10) ** exponent
        return int(_round_to(raw, Decimal(self.subticks_per_tick), rounding))


@dataclass
class _Session:
    """One lever run's connections and signer for one account (not shared between tasks)."""

    account: DydxAccountConfig
    key: KeyPair
    channel: Any = None
    raw_channel: Any = None
    node: Any = None
    indexer: Any = None
    sent: list[str] = field(default_factory=list)

    @property
    def broker(self) -> Any:
        assert self.account.broker is not None
        return self.account.broker

    async def __aenter__(self) -> _Session:
        if self.account.node_grpc is None:
            raise ConfigError(f"dYdX account {self.account.id} has no node_grpc: levers need a node")
        self.raw_channel = grpc.insecure_channel(self.account.node_grpc)
        self.channel = grpc.intercept_channel(self.raw_channel, DeadlineInterceptor(self.account.timeout_s))
        self.node = NodeClient(self.channel, Builder(self.broker.chain_id, self.broker.fee_denom, memo=""))
        self.indexer = IndexerReader(self.account.indexer_url, self.account.timeout_s)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.raw_channel.close()
        await self.indexer.aclose()

    # --- node calls (blocking gRPC in a worker thread, bounded) ----------------------------------

    async def _node(self, what: str, call: Callable[[], Any]) -> Any:
        def run() -> Any:
            result = call()
            return asyncio.run(result) if asyncio.iscoroutine(result) else result

        try:
            return await asyncio.wait_for(asyncio.to_thread(run), self.account.timeout_s * 4 + 1)
        except TimeoutError as exc:
            raise VenueUnavailable(f"{what}: no answer from the node", venue=VENUE, code="timeout") from exc
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            name = code.name if code is not None else "UNKNOWN"
            if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise VenueRateLimited(f"{what}: {name}", venue=VENUE, code=name) from exc
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL,
                        grpc.StatusCode.CANCELLED):
                raise VenueUnavailable(f"{what}: {name}", venue=VENUE, code=name) from exc
            raise VenueBadResponse(f"{what}: {name}", venue=VENUE, code=name) from exc

    async def account_state(self) -> tuple[int, int]:
        acct = await self._node("account", lambda: self.node.get_account(self.account.address))
        return int(acct.account_number), int(acct.sequence)

    async def block(self) -> tuple[int, float]:
        block = await self._node("latest block", self.node.latest_block)
        header = block.block.header
        return int(header.height), header.time.seconds + header.time.nanos / 1e9

    async def authenticators(self) -> tuple[RawAuthenticator, ...]:
        return await list_authenticators(self.account.node_grpc or "", self.account.address, self.account.timeout_s)

    async def send(self, what: str, message: Any) -> TxAnswer:
        """Sign ``message`` with the broker's key (re-reading account number and sequence first) and
        broadcast it. The chain's refusal comes back as a non-zero code, not an exception."""
        number, sequence = await self.account_state()
        wallet = Wallet(self.key, number, sequence)
        options = None
        if self.broker.authenticator_id is not None:
            options = TxOptions([self.broker.authenticator_id], sequence, number)
        fee = Fee(gas_limit=self.broker.gas_limit)
        tx = self.node.builder.build(wallet, message, fee=fee, tx_options=options)
        response = await self._node(what, lambda: self.node.broadcast(tx))
        r = response.tx_response
        answer = TxAnswer(int(r.code), str(r.codespace), str(r.raw_log), str(r.txhash))
        if answer.ok:
            self.sent.append(answer.txhash)
        return answer

    # --- power ----------------------------------------------------------------------------------

    async def missing_power(self, message: str, subaccount_number: int | None = None,
                            clob_pair_id: int | None = None,
                            auths: Sequence[RawAuthenticator] | None = None) -> str | None:
        """Why the broker's credential cannot send ``message`` (for that subaccount and market), or
        None when it can. Reads the node's current authenticators unless given."""
        pub = self.key.public_key_bytes
        if self.broker.authenticator_id is None:
            if Wallet(self.key, 0, 0).address != self.account.address:
                return (f"the broker key is not the owner key of {self.account.address} and no authenticator_id is "
                        "configured")
            return None
        auth_id = self.broker.authenticator_id
        found = next((a for a in (auths if auths is not None else await self.authenticators()) if a.id == auth_id),
                     None)
        if found is None:
            return f"the broker's authenticator {auth_id} no longer exists on {self.account.address}"
        try:
            paths = expand_paths(parse_authenticator(found.type, found.config))
        except AuthenticatorConfigError as exc:
            return f"the broker's authenticator {auth_id} cannot be read: {exc}"
        for p in paths:
            if p.signers != frozenset({pub}):
                continue
            if not p.admits(message):
                continue
            if message in (MSG_PLACE, MSG_CANCEL):
                if p.subaccounts is not None and subaccount_number not in p.subaccounts:
                    continue
                if p.clob_pairs is not None and clob_pair_id not in p.clob_pairs:
                    continue
            return None
        where = "" if subaccount_number is None else f" for subaccount {subaccount_number}"
        if clob_pair_id is not None:
            where += f", clob pair {clob_pair_id}"
        return f"the broker's authenticator {auth_id} does not admit {message}{where}"

    # --- indexer reads --------------------------------------------------------------------------

    async def orders(self, number: int) -> list[dict[str, Any]]:
        body = await self.indexer._call(  # shared error mapping of the reader
            f"orders of subaccount {number}",
            self.indexer.client.account.get_subaccount_orders(self.account.address, number, limit=1000))
        if not isinstance(body, list):
            raise VenueBadResponse(f"orders of subaccount {number}: not a list", venue="dydx")
        return [o for o in body if isinstance(o, dict) and o.get("status") in OPEN_STATUSES]

    async def markets(self) -> dict[str, _MarketParams]:
        body = await self.indexer._call(
            "perpetual markets", self.indexer.client.markets.get_perpetual_markets())
        out = {}
        try:
            for ticker, m in body["markets"].items():
                if m.get("oraclePrice") is None:
                    continue
                out[ticker] = _MarketParams(ticker, int(m["clobPairId"]), to_decimal(m["oraclePrice"], what=ticker),
                                            int(m["atomicResolution"]), int(m["quantumConversionExponent"]),
                                            int(m["stepBaseQuantums"]), int(m["subticksPerTick"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise VenueBadResponse(f"perpetual markets: unreadable ({type(exc).__name__})", venue="dydx") from exc
        return out


def _result(lever: str, account: DydxAccountConfig, done: list[str], not_done: list[str], reasons: list[str],
            why: Why, sent: list[str]) -> DydxLeverResult:
    if not_done:
        return DydxLeverResult(lever, account.id, "refused", why, "; ".join(reasons)[:1000], tuple(done),
                               tuple(not_done), tuple(sent))
    if done:
        return DydxLeverResult(lever, account.id, "done", done=tuple(done), tx_hashes=tuple(sent))
    return DydxLeverResult(lever, account.id, "nothing_to_do")


def _unconfigured(lever: str, account: DydxAccountConfig) -> DydxLeverResult | None:
    if account.broker is None:
        return DydxLeverResult(lever, account.id, "refused", "not_configured",
                               f"dYdX account {account.id} has no broker key: nothing can be sent", (), ("*",))
    return None


async def cancel_open_orders(account: DydxAccountConfig, action_id: str, *,
                             base_dir: FsPath | None = None) -> DydxLeverResult:
    """Cancel every open order (short-term, long-term, conditional) of every configured subaccount.

    Promises: re-reads the open orders from the indexer; sends one ``MsgCancelOrder`` per order
    (short-term: ``goodTilBlock`` within the chain's window and not before the order's own;
    stateful: ``goodTilBlockTime`` a little ahead), each only if the broker's credential admits it.
    Idempotent: with no open order it sends nothing (``nothing_to_do``); an order the chain says is
    already gone counts as done. Refused (``no_power``/``chain_refused``) lists each order left open.

    Raises:
        VenueUnavailable / VenueRateLimited / VenueBadResponse / VenueBadRequest: the indexer or
            node could not be read (nothing is guessed); ConfigError: unreadable broker key.
    Never: logs or returns the key; touches positions, balances or authenticators.
    """
    if (r := _unconfigured("cancel_orders", account)) is not None:
        return r
    key = load_key(account, base_dir)
    done: list[str] = []
    not_done: list[str] = []
    reasons: list[str] = []
    why: Why = ""
    async with _Session(account, key) as s:
        auths = await s.authenticators() if account.broker and account.broker.authenticator_id is not None else ()
        for number in account.subaccounts:
            open_orders = await s.orders(number)
            for o in open_orders:
                flags, cid, clob = int(o["orderFlags"]), int(o["clientId"]), int(o["clobPairId"])
                target = f"{number}:{o.get('ticker', clob)}:{cid}:{flags}"
                missing = await s.missing_power(MSG_CANCEL, number, clob, auths)
                if missing is not None:
                    not_done.append(target)
                    reasons.append(missing)
                    why = "no_power"
                    continue
                height, now = await s.block()
                oid = order_id(account.address, number, cid, clob, flags)
                if flags == SHORT_TERM:
                    own = int(o.get("goodTilBlock") or 0)
                    msg = cancel_order(oid, good_til_block=min(height + 20, max(own, height + 3)))
                else:
                    msg = cancel_order(oid, good_til_block_time=int(now) + CANCEL_TTL_S)
                answer = await s.send(f"cancel {target}", msg)
                if answer.ok or (answer.codespace, answer.code) in ALREADY_GONE:
                    done.append(target)
                else:
                    not_done.append(target)
                    reasons.append(f"{target}: {answer.codespace} {answer.code}: {answer.log[:200]}")
                    why = why or ("no_power" if (answer.codespace, answer.code) == ("sdk", 4) else "chain_refused")
        return _result("cancel_orders", account, done, not_done, reasons, why, s.sent)


async def close_positions(account: DydxAccountConfig, action_id: str, *, slippage_cap: Decimal = DEFAULT_SLIPPAGE_CAP,
                          base_dir: FsPath | None = None) -> DydxLeverResult:
    """Close every perpetual position with a reduce-only short-term IOC order within ``slippage_cap``.

    Promises: re-reads positions and oracle prices; a long sells at no less than oracle × (1 − cap)
    (rounded up to the tick), a short buys at no more than oracle × (1 + cap) (rounded down): never
    worse than the cap. Client ids derive from the action id, subaccount and market. After sending
    it re-reads the subaccount: a position still open means the IOC did not fill within the cap
    (``refused``, ``why="slippage_cap"``). Idempotent: a flat account sends nothing.

    Raises:
        ValueError: a cap outside (0, 1). VenueError subclasses: reads failed. ConfigError: key.
    Never: opens or increases a position (reduce-only), sends a market order without a limit.
    """
    if not Decimal(0) < slippage_cap < Decimal(1):
        raise ValueError("slippage_cap must be between 0 and 1")
    if (r := _unconfigured("close_positions", account)) is not None:
        return r
    key = load_key(account, base_dir)
    done: list[str] = []
    not_done: list[str] = []
    reasons: list[str] = []
    why: Why = ""
    async with _Session(account, key) as s:
        markets = await s.markets()
        auths = await s.authenticators() if account.broker and account.broker.authenticator_id is not None else ()
        for number in account.subaccounts:
            row = await s.indexer.subaccount(account.address, number)
            for perp in row.perps:
                target = f"{number}:{perp.market}"
                m = markets.get(perp.market)
                if m is None:
                    not_done.append(target)
                    reasons.append(f"{target}: no oracle price or market parameters")
                    why = why or "chain_refused"
                    continue
                quantums = m.quantums(perp.size)
                if quantums == 0:
                    continue  # dust below the step size cannot be closed by an order
                missing = await s.missing_power(MSG_PLACE, number, m.clob_pair_id, auths)
                if missing is not None:
                    not_done.append(target)
                    reasons.append(missing)
                    why = "no_power"
                    continue
                sell = perp.size > 0
                limit = m.oracle * (1 - slippage_cap) if sell else m.oracle * (1 + slippage_cap)
                subticks = m.subticks(limit, ROUND_CEILING if sell else ROUND_FLOOR)
                height, _ = await s.block()
                order = Order(
                    order_id=order_id(account.address, number, client_id(action_id, account.address, number,
                                                                          perp.market), m.clob_pair_id, SHORT_TERM),
                    side=Order.SIDE_SELL if sell else Order.SIDE_BUY, quantums=quantums, subticks=subticks,
                    good_til_block=height + CLOSE_BLOCKS, time_in_force=Order.TIME_IN_FORCE_IOC, reduce_only=True)
                answer = await s.send(f"close {target}", MsgPlaceOrder(order=order))
                if not answer.ok:
                    not_done.append(target)
                    reasons.append(f"{target}: {answer.codespace} {answer.code}: {answer.log[:200]}")
                    why = why or ("no_power" if (answer.codespace, answer.code) == ("sdk", 4) else "chain_refused")
                    continue
                after = await s.indexer.subaccount(account.address, number)
                left = next((p.size for p in after.perps if p.market == perp.market), Decimal(0))
                if left == 0 or m.quantums(left) == 0:
                    done.append(target)
                else:
                    not_done.append(target)
                    reasons.append(f"{target}: the IOC close did not fill within the {slippage_cap:%} slippage cap "
                                   f"(limit {limit:.6f}, oracle {m.oracle}); {left} still open")
                    why = why or "slippage_cap"
        return _result("close_positions", account, done, not_done, reasons, why, s.sent)


async def remove_authenticators(account: DydxAccountConfig, action_id: str, *, ids: Sequence[int] | None = None,
                                base_dir: FsPath | None = None) -> DydxLeverResult:
    """Remove the client's authenticators (``ids``, or all of them) with ``MsgRemoveAuthenticator``.

    Promises: re-reads the node's authenticators; never removes the broker's own (it would cut the
    branch the lever sits on); an id already gone is not sent again. Idempotent: a second run finds
    nothing to remove. Refused (``no_power``) when the broker's authenticator does not admit the
    message. Note: the account's owner key (the client's mnemonic) cannot be revoked on dYdX.

    Raises: VenueError subclasses (node unreadable), ConfigError (key).
    Never: adds authenticators, touches funds.
    """
    if (r := _unconfigured("remove_authenticators", account)) is not None:
        return r
    key = load_key(account, base_dir)
    own = account.broker.authenticator_id if account.broker else None
    done: list[str] = []
    not_done: list[str] = []
    reasons: list[str] = []
    why: Why = ""
    async with _Session(account, key) as s:
        auths = await s.authenticators()
        wanted = set(ids) if ids is not None else None
        targets = [a for a in auths if a.id != own and (wanted is None or a.id in wanted)]
        if targets:
            missing = await s.missing_power(MSG_REMOVE_AUTH, auths=auths)
            if missing is not None:
                return _result("remove_authenticators", account, [], [f"authenticator:{a.id}" for a in targets],
                               [missing], "no_power", s.sent)
        for a in targets:
            target = f"authenticator:{a.id}"
            answer = await s.send(f"remove {target}", remove_authenticator(account.address, a.id))
            if answer.ok or (answer.codespace, answer.code) in ALREADY_GONE:
                done.append(target)
            else:
                not_done.append(target)
                reasons.append(f"{target}: {answer.codespace} {answer.code}: {answer.log[:200]}")
                why = why or ("no_power" if (answer.codespace, answer.code) == ("sdk", 4) else "chain_refused")
        return _result("remove_authenticators", account, done, not_done, reasons, why, s.sent)


async def transfer_free_usdc(account: DydxAccountConfig, action_id: str, *,
                             base_dir: FsPath | None = None) -> DydxLeverResult:
    """Move each subaccount's free USDC to the broker's subaccount with ``MsgCreateTransfer``.

    Promises: re-reads each subaccount; moves min(USDC balance, free collateral), floored to whole
    quantums (10⁻⁶ USDC), so the chain's collateral check passes; skips subaccounts with nothing
    free. Idempotent: after a transfer nothing is free, so a second run sends nothing.

    Raises: VenueError subclasses (reads), ConfigError (key).
    Never: sends anywhere but the configured broker subaccount; withdraws off the subaccount module.
    """
    if (r := _unconfigured("transfer_usdc", account)) is not None:
        return r
    assert account.broker is not None
    if account.broker.sweep_address is None:
        return DydxLeverResult("transfer_usdc", account.id, "refused", "not_configured",
                               f"dYdX account {account.id} has no broker sweep_address", (), ("*",))
    key = load_key(account, base_dir)
    dest = (account.broker.sweep_address, account.broker.sweep_subaccount)
    done: list[str] = []
    not_done: list[str] = []
    reasons: list[str] = []
    why: Why = ""
    async with _Session(account, key) as s:
        auths = await s.authenticators() if account.broker.authenticator_id is not None else ()
        for number in account.subaccounts:
            if (account.address, number) == dest:
                continue
            row = await s.indexer.subaccount(account.address, number)
            free = min(row.quote, row.free_collateral)
            quantums = int(_round_to(free * QUOTE_QUANTUMS, Decimal(1), ROUND_FLOOR))
            if quantums <= 0:
                continue
            target = f"{number}:{Decimal(quantums) / QUOTE_QUANTUMS} USDC"
            missing = await s.missing_power(MSG_TRANSFER, number, auths=auths)
            if missing is not None:
                not_done.append(target)
                reasons.append(missing)
                why = "no_power"
                continue
            msg = transfer(subaccount(account.address, number), subaccount(*dest), 0, quantums)
            answer = await s.send(f"transfer {target}", msg)
            if answer.ok:
                done.append(target)
            else:
                not_done.append(target)
                reasons.append(f"{target}: {answer.codespace} {answer.code}: {answer.log[:200]}")
                why = why or ("no_power" if (answer.codespace, answer.code) == ("sdk", 4) else "chain_refused")
        return _result("transfer_usdc", account, done, not_done, reasons, why, s.sent)


def playbook_levers(cfg: PrimeguardConfig, *, config_dir: FsPath | None = None) -> dict[str, Any]:
    """Levers for the playbook engine on every dYdX account of the action's client:
    ``halt_dydx`` (cancel orders, remove client authenticators) and ``liquidate_dydx`` (cancel
    orders, close positions within ``params.slippage_cap``, move free USDC to the broker, remove
    client authenticators). Raises :class:`DydxLeverFailed` when any lever was refused (the caller
    raises a critical finding; re-running is safe: every lever is idempotent)."""

    def make(steps: tuple[str, ...]) -> Callable[[Any], Awaitable[Mapping[str, Any]]]:
        async def lever(action: Any) -> Mapping[str, Any]:
            accounts = [a for a in cfg.dydx_accounts if a.client == action.client_id]
            params = getattr(action, "params", None) or {}
            cap = to_decimal(params.get("slippage_cap", DEFAULT_SLIPPAGE_CAP), what="slippage_cap")

            async def one(a: DydxAccountConfig) -> list[DydxLeverResult]:
                out = [await cancel_open_orders(a, action.id, base_dir=config_dir)]
                checkpoint(step_name(action, a.id, out[-1].lever))
                if "close" in steps:
                    out.append(await close_positions(a, action.id, slippage_cap=cap, base_dir=config_dir))
                    checkpoint(step_name(action, a.id, out[-1].lever))
                    out.append(await transfer_free_usdc(a, action.id, base_dir=config_dir))
                    checkpoint(step_name(action, a.id, out[-1].lever))
                out.append(await remove_authenticators(a, action.id, base_dir=config_dir))
                checkpoint(step_name(action, a.id, out[-1].lever))
                return out

            results = [r for rs in await asyncio.gather(*(one(a) for a in accounts)) for r in rs]
            refused = [f"{r.account_id}:{r.lever}:{r.why}" for r in results if r.status == "refused"]
            if refused:
                raise DydxLeverFailed(f"{len(refused)} dYdX lever(s) refused: {', '.join(refused)[:300]}", results)
            return {"reports": [r.to_json() for r in results]}

        return lever

    return {"halt_dydx": make(("cancel", "remove")), "liquidate_dydx": make(("cancel", "close", "transfer", "remove"))}


__all__ = ["DEFAULT_SLIPPAGE_CAP", "DydxLeverFailed", "DydxLeverResult", "cancel_open_orders", "client_id",
           "close_positions", "load_key", "playbook_levers", "remove_authenticators", "transfer_free_usdc"]

