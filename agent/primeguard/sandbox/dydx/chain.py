"""The simulated dYdX node's transaction path: decode a Cosmos transaction, run the ante checks the
chain runs (signer, public key, sequence, signature over the ``SignDoc`` with the account number and
chain id, or the ``x/accountplus`` authenticators the transaction selects), apply its messages to
the shared :class:`~primeguard.sandbox.dydx.state.DydxWorld` and answer as the chain does (code,
codespace, log, tx hash). The indexer simulator reads the same world, so a change shows there at once.

Chain rules mirrored (v4-chain ``protocol/app/ante/sigverify.go``, ``x/accountplus/ante/ante.go``,
``x/clob/types/errors.go``, cosmos-sdk ``types/errors``):

- undecodable bytes, unknown message type URL → ``sdk`` 2 (tx parse error);
- a signer that has no account → ``sdk`` 9; signature count ≠ signer count → ``sdk`` 4;
- sequence ≠ the account's → ``sdk`` 32 ``account sequence mismatch, expected E, got G`` — skipped
  when every message uses ``GoodTilBlock`` for replay protection (short-term place/cancel, batch
  cancel), and such a transaction does not increment the sequence;
- the signature is checked over ``SignDoc(body_bytes, auth_info_bytes, chain_id, account_number)``
  with the account's public key (set from the signer info on first use when it hashes to the
  address, else ``sdk`` 8); a wrong key, account number or chain id → ``sdk`` 4 ``signature
  verification failed; please verify account number (N) and chain-id (C)``; high-S signatures fail;
- with a ``TxExtension`` (``selected_authenticators``): one id per message (else ``sdk`` 18), the
  id must exist for the signer (``accountplus`` 1), and its tree must authenticate the message:
  ``SignatureVerification`` (the transaction's one signature under that key), ``MessageFilter``
  (type URL listed), ``SubaccountFilter``/``ClobPairIdFilter`` (only for place/cancel/batch-cancel;
  other messages pass), ``AllOf`` (all), ``AnyOf`` (any) → else ``sdk`` 4;
- a message that fails after the ante checks passed (e.g. a cancel of an order that does not
  exist) reverts every message of the transaction but still consumes the sequence, as a delivered
  transaction does.

Orders: short-term (flags 0) need ``height ≤ goodTilBlock ≤ height + 20`` (``clob`` 10/11); stateful
(flags 64/32) need ``now < goodTilBlockTime ≤ now + 95 days`` (``clob`` 3003/3004) and cannot be
IOC (``clob`` 3002). An IOC order meets a simulated book quoting the oracle price ± ``world.spread``:
it fills (all of it, capped at the position for reduce-only) at the touch when its limit crosses,
and otherwise is removed unfilled with code 0, exactly as an IOC that would rest on the book. A
reduce-only order on the side that would grow the position (or with no position) → ``clob`` 2001.
Other orders rest on the book and never fill.

Transfers (``MsgCreateTransfer``) and withdrawals (``MsgWithdrawFromSubaccount``) of USDC (asset 0,
quantums of 10⁻⁶) are refused when they would leave the sender's free collateral negative
(``subaccounts`` 2, approximating the chain's collateral check).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bech32 import bech32_decode
from coincurve import PublicKey
from coincurve.ecdsa import cdata_to_der, deserialize_compact
from coincurve.utils import GROUP_ORDER_INT
from google.protobuf.message import DecodeError
from v4_proto.cosmos.crypto.secp256k1.keys_pb2 import PubKey
from v4_proto.cosmos.tx.v1beta1.tx_pb2 import AuthInfo, SignDoc, TxBody, TxRaw
from v4_proto.dydxprotocol.accountplus.tx_pb2 import MsgAddAuthenticator, MsgRemoveAuthenticator, TxExtension
from v4_proto.dydxprotocol.clob.order_pb2 import Order
from v4_proto.dydxprotocol.clob.tx_pb2 import MsgBatchCancel, MsgCancelOrder, MsgPlaceOrder
from v4_proto.dydxprotocol.sending.transfer_pb2 import MsgWithdrawFromSubaccount
from v4_proto.dydxprotocol.sending.tx_pb2 import MsgCreateTransfer

from primeguard.sandbox.dydx import keeper
from primeguard.sandbox.dydx.state import AuthRecord, ClosedPerp, DydxWorld, OrderRec, SubState, pubkey_address

SHORT_BLOCK_WINDOW = 20
STATEFUL_ORDER_TIME_WINDOW_S = 95 * 24 * 3600
FLAG_SHORT_TERM, FLAG_CONDITIONAL, FLAG_LONG_TERM = 0, 32, 64
QUOTE_DECIMALS = Decimal(10) ** 6  # USDC quantums
TX_EXTENSION_URL = "/dydxprotocol.accountplus.TxExtension"
PUBKEY_URL = "/cosmos.crypto.secp256k1.PubKey"
GAS_USED = 120_000

MESSAGES: dict[str, Any] = {
    "/dydxprotocol.clob.MsgPlaceOrder": MsgPlaceOrder,
    "/dydxprotocol.clob.MsgCancelOrder": MsgCancelOrder,
    "/dydxprotocol.clob.MsgBatchCancel": MsgBatchCancel,
    "/dydxprotocol.sending.MsgCreateTransfer": MsgCreateTransfer,
    "/dydxprotocol.sending.MsgWithdrawFromSubaccount": MsgWithdrawFromSubaccount,
    "/dydxprotocol.accountplus.MsgRemoveAuthenticator": MsgRemoveAuthenticator,
    "/dydxprotocol.accountplus.MsgAddAuthenticator": MsgAddAuthenticator,
}
GOOD_TIL_BLOCK_MSGS = ("/dydxprotocol.clob.MsgPlaceOrder", "/dydxprotocol.clob.MsgCancelOrder")
ORDER_MSGS = ("/dydxprotocol.clob.MsgPlaceOrder", "/dydxprotocol.clob.MsgCancelOrder",
              "/dydxprotocol.clob.MsgBatchCancel")


@dataclass(frozen=True)
class TxResult:
    """What the node answers: ``code`` 0 is success; otherwise ``codespace`` + ``code`` name the error."""

    code: int
    codespace: str
    log: str
    txhash: str
    height: int
    gas_used: int = GAS_USED


class ChainError(Exception):
    """A refusal with the chain's (codespace, code) and log text."""

    def __init__(self, codespace: str, code: int, log: str) -> None:
        super().__init__(log)
        self.codespace = codespace
        self.code = code
        self.log = log


SDK_TEXT = {2: "tx parse error", 4: "unauthorized", 8: "invalid pubkey", 9: "unknown address",
            18: "invalid request", 32: "incorrect account sequence"}


def sdk(code: int, log: str) -> ChainError:
    return ChainError("sdk", code, f"{log}: {SDK_TEXT.get(code, 'error')}")


def verify_signature(pub: bytes, sig: bytes, message: bytes) -> bool:
    """secp256k1 over sha256(message), 64-byte r‖s, low-S only (the SDK rejects malleable signatures)."""
    if len(sig) != 64 or len(pub) != 33:
        return False
    s = int.from_bytes(sig[32:], "big")
    if s == 0 or s > GROUP_ORDER_INT // 2:
        return False
    try:
        der = cdata_to_der(deserialize_compact(sig))
        return bool(PublicKey(pub).verify(der, message))
    except Exception:
        return False


def _signer(type_url: str, msg: Any) -> str:
    if type_url in ("/dydxprotocol.clob.MsgPlaceOrder",):
        return str(msg.order.order_id.subaccount_id.owner)
    if type_url == "/dydxprotocol.clob.MsgCancelOrder":
        return str(msg.order_id.subaccount_id.owner)
    if type_url == "/dydxprotocol.clob.MsgBatchCancel":
        return str(msg.subaccount_id.owner)
    if type_url == "/dydxprotocol.sending.MsgCreateTransfer":
        return str(msg.transfer.sender.owner)
    if type_url == "/dydxprotocol.sending.MsgWithdrawFromSubaccount":
        return str(msg.sender.owner)
    return str(msg.sender)


def _uses_good_til_block(type_url: str, msg: Any) -> bool:
    if type_url == "/dydxprotocol.clob.MsgBatchCancel":
        return True
    if type_url == "/dydxprotocol.clob.MsgPlaceOrder":
        return int(msg.order.order_id.order_flags) == FLAG_SHORT_TERM
    if type_url == "/dydxprotocol.clob.MsgCancelOrder":
        return int(msg.order_id.order_flags) == FLAG_SHORT_TERM
    return False


class Chain:
    """The transaction path of one simulated node over one world."""

    def __init__(self, world: DydxWorld) -> None:
        self.world = world
        self._txhash = ""

    # --- entry points ----------------------------------------------------------------------------

    def broadcast(self, tx_bytes: bytes) -> TxResult:
        """Check and apply one transaction (as if committed in the next block)."""
        return self._run(tx_bytes, simulate=False)

    def simulate(self, tx_bytes: bytes) -> TxResult:
        """Run the checks without signatures and without changing anything (``Simulate``)."""
        return self._run(tx_bytes, simulate=True)

    def _run(self, tx_bytes: bytes, *, simulate: bool) -> TxResult:
        txhash = hashlib.sha256(tx_bytes).hexdigest().upper()
        self._txhash = txhash
        with self.world.lock:
            height, _ = self.world.height()
            try:
                self._execute(tx_bytes, simulate=simulate)
            except ChainError as exc:
                return TxResult(exc.code, exc.codespace, exc.log, txhash, height)
            if not simulate:
                self.world.txs[txhash] = tx_bytes
            return TxResult(0, "", "[]", txhash, height)

    # --- ante ------------------------------------------------------------------------------------

    def _execute(self, tx_bytes: bytes, *, simulate: bool) -> None:
        try:
            raw = TxRaw.FromString(tx_bytes)
            body = TxBody.FromString(raw.body_bytes)
            auth_info = AuthInfo.FromString(raw.auth_info_bytes)
        except (DecodeError, ValueError) as exc:
            raise sdk(2, f"failed to decode tx: {exc}") from None
        msgs: list[tuple[str, Any]] = []
        for packed in body.messages:
            cls = MESSAGES.get(packed.type_url)
            if cls is None:
                raise sdk(2, f"unable to resolve type URL {packed.type_url}")
            try:
                msgs.append((packed.type_url, cls.FromString(packed.value)))
            except DecodeError as exc:
                raise sdk(2, f"failed to decode {packed.type_url}: {exc}") from None
        if not msgs:
            raise sdk(18, "no messages in transaction")
        signers = sorted({_signer(u, m) for u, m in msgs})
        if len(signers) != 1 or len(raw.signatures) != 1 or len(auth_info.signer_infos) != 1:
            raise sdk(4, f"invalid number of signer;  expected: {len(signers)}, got {len(raw.signatures)}")
        address = signers[0]
        acct = self.world.account(address)
        if acct is None:
            raise sdk(9, f"account {address} does not exist")
        info = auth_info.signer_infos[0]
        signer_pub = b""
        if info.public_key.type_url == PUBKEY_URL:
            signer_pub = bytes(PubKey.FromString(info.public_key.value).key)
        extension = self._extension(body)
        skip_sequence = all(_uses_good_til_block(u, m) for u, m in msgs)
        if not skip_sequence and info.sequence != acct.sequence:
            raise sdk(32, f"account sequence mismatch, expected {acct.sequence}, got {info.sequence}")
        sign_doc = SignDoc(body_bytes=raw.body_bytes, auth_info_bytes=raw.auth_info_bytes,
                           chain_id=self.world.chain_id, account_number=acct.account_number).SerializeToString()
        signature = bytes(raw.signatures[0])
        if extension is None:
            if acct.pubkey is None:
                if not signer_pub or pubkey_address(signer_pub) != address:
                    raise sdk(8, f"pubKey does not match signer address {address} with signer index: 0")
                if not simulate:
                    acct.pubkey = signer_pub
            pub = acct.pubkey or signer_pub
            if not simulate and not verify_signature(pub, signature, sign_doc):
                raise sdk(4, f"signature verification failed; please verify account number "
                             f"({acct.account_number}) and chain-id ({self.world.chain_id}): "
                             f"(unable to verify single signer signature)")
        else:
            if len(extension) != len(msgs):
                raise sdk(18, f"Mismatch between the number of selected authenticators and messages, "
                              f"msg count {len(msgs)}, got {len(extension)} selected authenticators")
            for i, ((type_url, msg), auth_id) in enumerate(zip(msgs, extension, strict=True)):
                record = acct.authenticators.get(auth_id)
                if record is None:
                    raise ChainError("accountplus", 1, (
                        f"failed to get initialized authenticator (account = {address}, authenticator id = "
                        f"{auth_id}, msg index = {i}, msg type url = {type_url}): Authenticator is not found"))
                ok, why = self._authenticate(record.type, record.config, type_url, msg, signature, sign_doc,
                                             simulate)
                if not ok:
                    raise sdk(4, f"{why}: authentication failed for message {i}, authenticator id {auth_id}, "
                                 f"type {record.type}")
        if simulate:
            return
        # Delivered: apply the messages atomically; a failing message reverts them all (the
        # sequence is consumed anyway, as in a delivered transaction).
        saved = copy.deepcopy(self.world.addresses)
        saved_seq = self.world.seq
        try:
            for type_url, msg in msgs:
                self._apply(type_url, msg)
        except ChainError:
            self.world.addresses = saved
            self.world.seq = saved_seq
            self.world.order = [saved[s.address] for s in self.world.order]
            acct = self.world.addresses[address]
            if not skip_sequence:
                acct.sequence += 1
            raise
        if not skip_sequence:
            acct.sequence += 1

    @staticmethod
    def _extension(body: TxBody) -> list[int] | None:
        for opt in body.non_critical_extension_options:
            if opt.type_url == TX_EXTENSION_URL:
                try:
                    return list(TxExtension.FromString(opt.value).selected_authenticators)
                except DecodeError as exc:
                    raise sdk(2, f"failed to decode TxExtension: {exc}") from None
        return None

    def _authenticate(self, auth_type: str, config: bytes, type_url: str, msg: Any, signature: bytes,
                      sign_doc: bytes, simulate: bool, depth: int = 0) -> tuple[bool, str]:
        """One authenticator's ``Authenticate`` for one message: (passed, why not)."""
        if depth > 16:
            return False, "authenticator tree too deep"
        if auth_type == "SignatureVerification":
            if simulate or verify_signature(config, signature, sign_doc):
                return True, ""
            return False, "signature verification failed"
        if auth_type == "MessageFilter":
            allowed = [u for u in config.decode("utf-8", "replace").split(",")]
            if type_url in allowed:
                return True, ""
            return False, f"message types do not match. Got {type_url}, Expected {config.decode('utf-8', 'replace')}"
        if auth_type in ("SubaccountFilter", "ClobPairIdFilter"):
            if type_url not in ORDER_MSGS:
                return True, ""
            try:
                allowed_nums = {int(x) for x in config.decode().split(",")}
            except (UnicodeDecodeError, ValueError):
                return False, f"invalid {auth_type} config"
            used = _subaccounts(type_url, msg) if auth_type == "SubaccountFilter" else _clob_pairs(type_url, msg)
            if used <= allowed_nums:
                return True, ""
            what = "subaccount number" if auth_type == "SubaccountFilter" else "clob pair id"
            return False, f"{what} {sorted(used - allowed_nums)} not in allowed set {sorted(allowed_nums)}"
        if auth_type in ("AllOf", "AnyOf"):
            try:
                children = keeper._decode_children(config)
            except keeper.KeeperRefusal as exc:
                return False, str(exc)
            results = [self._authenticate(t, c, type_url, msg, signature, sign_doc, simulate, depth + 1)
                       for t, c in children]
            if auth_type == "AllOf":
                failed = [why for ok, why in results if not ok]
                return (not failed and bool(results)), "; ".join(failed) or "no sub-authenticators"
            if any(ok for ok, _ in results):
                return True, ""
            return False, "all sub-authenticators failed: " + "; ".join(why for _, why in results)
        return False, f"authenticator type {auth_type} is not registered"

    # --- messages --------------------------------------------------------------------------------

    def _apply(self, type_url: str, msg: Any) -> None:
        if type_url == "/dydxprotocol.clob.MsgPlaceOrder":
            self._place(msg.order)
        elif type_url == "/dydxprotocol.clob.MsgCancelOrder":
            self._cancel(msg)
        elif type_url == "/dydxprotocol.clob.MsgBatchCancel":
            self._batch_cancel(msg)
        elif type_url == "/dydxprotocol.sending.MsgCreateTransfer":
            t = msg.transfer
            self._move(t.sender.owner, t.sender.number, t.asset_id, t.amount,
                       to=(t.recipient.owner, t.recipient.number), kind="TRANSFER_OUT")
        elif type_url == "/dydxprotocol.sending.MsgWithdrawFromSubaccount":
            self._move(msg.sender.owner, msg.sender.number, msg.asset_id, msg.quantums,
                       to=(msg.recipient, None), kind="WITHDRAWAL")
        elif type_url == "/dydxprotocol.accountplus.MsgRemoveAuthenticator":
            acct = self.world.addresses[msg.sender]
            if int(msg.id) not in acct.authenticators:
                raise ChainError("accountplus", 1, f"authenticator id {msg.id} not found for account "
                                                   f"{msg.sender}: Authenticator is not found")
            del acct.authenticators[int(msg.id)]
        elif type_url == "/dydxprotocol.accountplus.MsgAddAuthenticator":
            try:
                keeper.check_add(msg.authenticator_type, bytes(msg.data))
            except keeper.KeeperRefusal as exc:
                raise sdk(18, str(exc)) from None
            acct = self.world.addresses[msg.sender]
            new_id = max(acct.authenticators, default=-1) + 1
            acct.authenticators[new_id] = AuthRecord(new_id, msg.authenticator_type, bytes(msg.data))

    def _market(self, clob_pair_id: int) -> str:
        for market, cid in self.world.clob_ids.items():
            if cid == clob_pair_id:
                return market
        raise ChainError("clob", 8, f"ClobPair ID does not reference a valid CLOB: {clob_pair_id}")

    def _check_good_til(self, flags: int, good_til_block: int, good_til_block_time: int) -> None:
        height, now = self.world.height()
        if flags == FLAG_SHORT_TERM:
            if good_til_block < height:
                raise ChainError("clob", 10, f"GoodTilBlock {good_til_block} is less than the next block height "
                                             f"{height}: The next block height is greater than the GoodTilBlock "
                                             f"of the message")
            if good_til_block > height + SHORT_BLOCK_WINDOW:
                raise ChainError("clob", 11, f"GoodTilBlock {good_til_block} is greater than ShortBlockWindow "
                                             f"{height + SHORT_BLOCK_WINDOW}: The GoodTilBlock of the message is "
                                             f"further than ShortBlockWindow blocks into the future")
        elif flags in (FLAG_LONG_TERM, FLAG_CONDITIONAL):
            if good_til_block_time <= now:
                raise ChainError("clob", 3003, "The block time is greater than the GoodTilBlockTime of the message")
            if good_til_block_time > now + STATEFUL_ORDER_TIME_WINDOW_S:
                raise ChainError("clob", 3004, "The GoodTilBlockTime of the message is further than "
                                               "StatefulOrderTimeWindow into the future")
        else:
            raise ChainError("clob", 3000, f"Invalid order flags: {flags}")

    def _place(self, order: Any) -> None:
        oid = order.order_id
        flags = int(oid.order_flags)
        market = self._market(int(oid.clob_pair_id))
        self._check_good_til(flags, int(order.good_til_block), int(order.good_til_block_time))
        if order.quantums == 0 or order.quantums % 1_000_000:
            raise ChainError("clob", 4, "Invalid order quantums")
        if order.subticks == 0 or order.subticks % 100_000:
            raise ChainError("clob", 6, "Invalid order subticks")
        ioc = order.time_in_force == Order.TIME_IN_FORCE_IOC
        if flags != FLAG_SHORT_TERM and ioc:
            raise ChainError("clob", 3002, "Stateful orders cannot require immediate execution")
        if order.reduce_only and not ioc:
            raise ChainError("clob", 9003, "Reduce-only is currently disabled for non-IOC orders")
        sub = self.world.sub(oid.subaccount_id.owner, int(oid.subaccount_id.number))
        size = Decimal(order.quantums) / Decimal(10) ** 10
        price = Decimal(order.subticks) / Decimal(10) ** 5
        buy = order.side == Order.SIDE_BUY
        key = (int(oid.client_id), flags, int(oid.clob_pair_id))
        height, _ = self.world.height()
        rec = OrderRec(client_id=key[0], flags=flags, clob_pair_id=key[2], market=market,
                       side="BUY" if buy else "SELL", size=size, price=price, ioc=ioc,
                       reduce_only=bool(order.reduce_only), good_til_block=int(order.good_til_block) or None,
                       good_til_block_time=int(order.good_til_block_time) or None, created_height=height,
                       seq=self.world.next_seq())
        if not ioc:
            old = sub.orders.get(key)
            if old is not None and old.status == "OPEN" and flags != FLAG_SHORT_TERM:
                raise ChainError("clob", 3005, "Existing stateful order has higher-or-equal priority than the "
                                               "new one")
            sub.orders[key] = rec
            return
        position = sub.perps.get(market, (Decimal(0), Decimal(0)))[0]
        fill = size
        if order.reduce_only:
            if position == 0 or (position > 0) == buy:
                raise ChainError("clob", 2001, "Reduce-only orders cannot increase the position size")
            fill = min(size, abs(position))
        oracle = self.world.price(market, price)
        touch = oracle * (1 + self.world.spread) if buy else oracle * (1 - self.world.spread)
        crosses = price >= touch if buy else price <= touch
        if crosses:
            self._fill(sub, market, fill if buy else -fill, touch)
            rec.filled = fill
            rec.status = "FILLED" if fill == size else "CANCELED"
        else:
            rec.status = "CANCELED"
            rec.removal_reason = "ORDER_REMOVAL_REASON_IMMEDIATE_OR_CANCEL_WOULD_REST_ON_BOOK"
        sub.orders[key] = rec

    def _fill(self, sub: SubState, market: str, delta: Decimal, price: Decimal) -> None:
        size, entry = sub.perps.get(market, (Decimal(0), price))
        new = size + delta
        sub.usdc -= delta * price
        if new == 0:
            sub.perps.pop(market, None)
            _, now = self.world.height()
            sub.closed.append(ClosedPerp(market, size, entry, price, sub.opened.pop(market, 0), now))
        else:
            if market not in sub.perps:
                sub.opened[market] = self.world.next_seq()
            same_side = size == 0 or (size > 0) == (delta > 0)
            new_entry = (size * entry + delta * price) / new if same_side else entry
            sub.perps[market] = (new, new_entry)

    def _cancel(self, msg: Any) -> None:
        oid = msg.order_id
        flags = int(oid.order_flags)
        self._check_good_til(flags, int(msg.good_til_block), int(msg.good_til_block_time))
        sub = self.world.sub(oid.subaccount_id.owner, int(oid.subaccount_id.number))
        key = (int(oid.client_id), flags, int(oid.clob_pair_id))
        rec = sub.orders.get(key)
        if rec is None or rec.status != "OPEN":
            if flags == FLAG_SHORT_TERM:
                raise ChainError("clob", 2, "Order does not exist in memclob")
            raise ChainError("clob", 3006, f"Stateful order does not exist: {oid}")
        rec.status = "CANCELED"
        rec.removal_reason = "ORDER_REMOVAL_REASON_USER_CANCELED"

    def _batch_cancel(self, msg: Any) -> None:
        self._check_good_til(FLAG_SHORT_TERM, int(msg.good_til_block), 0)
        sub = self.world.sub(msg.subaccount_id.owner, int(msg.subaccount_id.number))
        for batch in msg.short_term_cancels:
            for cid in batch.client_ids:
                rec = sub.orders.get((int(cid), FLAG_SHORT_TERM, int(batch.clob_pair_id)))
                if rec is not None and rec.status == "OPEN":  # batch cancels are best effort
                    rec.status = "CANCELED"
                    rec.removal_reason = "ORDER_REMOVAL_REASON_USER_CANCELED"

    def _move(self, owner: str, number: int, asset_id: int, quantums: int, *, to: tuple[str, int | None],
              kind: str) -> None:
        if asset_id != 0:
            raise ChainError("sending", 2, "Non-USDC asset transfer not implemented")
        if quantums <= 0:
            raise sdk(18, "Invalid transfer amount")
        acct = self.world.addresses[owner]
        if number not in acct.subaccounts:
            raise ChainError("subaccounts", 2, f"subaccount {owner}/{number} has no collateral: UpdateCausedError")
        sub = acct.subaccounts[number]
        amount = Decimal(quantums) / QUOTE_DECIMALS
        equity = sub.usdc + sum((s * self.world.price(m, e) for m, (s, e) in sub.perps.items()), Decimal(0))
        margin = sum((abs(s) * self.world.price(m, e) * self.world.imf(m) for m, (s, e) in sub.perps.items()),
                     Decimal(0))
        if equity - margin - amount < 0:
            raise ChainError("subaccounts", 2, f"subaccount {owner}/{number} would be undercollateralized: "
                                               f"NewlyUndercollateralized: UpdateCausedError")
        recipient, rnum = to
        if bech32_decode(recipient)[0] != "dydx":
            raise sdk(7, f"invalid recipient address {recipient[:60]}")
        sub.usdc -= amount
        if rnum is not None:
            self.world.ensure_account(recipient)
            self.world.sub(recipient, rnum).usdc += amount
        height, now = self.world.height()
        row: dict[str, Any] = {
            "_number": number, "_seq": self.world.next_seq(), "id": f"sim-tx-{self.world.seq}",
            "sender": {"address": owner, "subaccountNumber": number},
            "recipient": ({"address": recipient, "subaccountNumber": rnum} if rnum is not None
                          else {"address": recipient}),
            "size": str(amount), "symbol": "USDC", "type": kind,
            "createdAt": _iso(now), "createdAtHeight": str(height), "transactionHash": self._txhash,
        }
        acct.transfers.append(row)
        if rnum is not None:
            incoming = dict(row, _number=rnum, _seq=self.world.next_seq(), type="TRANSFER_IN")
            self.world.addresses[recipient].transfers.append(incoming)


def _subaccounts(type_url: str, msg: Any) -> set[int]:
    if type_url == "/dydxprotocol.clob.MsgPlaceOrder":
        return {int(msg.order.order_id.subaccount_id.number)}
    if type_url == "/dydxprotocol.clob.MsgCancelOrder":
        return {int(msg.order_id.subaccount_id.number)}
    return {int(msg.subaccount_id.number)}


def _clob_pairs(type_url: str, msg: Any) -> set[int]:
    if type_url == "/dydxprotocol.clob.MsgPlaceOrder":
        return {int(msg.order.order_id.clob_pair_id)}
    if type_url == "/dydxprotocol.clob.MsgCancelOrder":
        return {int(msg.order_id.clob_pair_id)}
    return {int(b.clob_pair_id) for b in msg.short_term_cancels}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
