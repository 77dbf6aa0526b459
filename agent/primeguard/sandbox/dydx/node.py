"""dYdX node simulator: the ``dydxprotocol.accountplus.Query`` gRPC service (GetAuthenticators,
GetAuthenticator, Params), the transaction path (``cosmos.tx.v1beta1.Service``: BroadcastTx,
Simulate, GetTx; ``cosmos.auth.v1beta1.Query/Account``; ``cosmos.base.tendermint.v1beta1.Service/
GetLatestBlock``; see :mod:`primeguard.sandbox.dydx.chain`), built on v4_proto's generated
servicer base classes, with the scenario's ``dydx-node`` faults
(down, latency, timeouts, errors, rate limits, garbage configs).

Answers as the chain's query server does: an address that does not decode as ``dydx1…`` bech32
and an authenticator id that does not exist both come back as gRPC ``INTERNAL`` with the keeper's
error text (not ``INVALID_ARGUMENT``/``NOT_FOUND``); an address with no authenticators gets an
empty list; authenticators are listed in the store's key order (ids as strings: 1, 10, 2)."""

from __future__ import annotations

import threading
from typing import Any

import grpc
from google.protobuf import any_pb2, timestamp_pb2
from v4_proto.cosmos.auth.v1beta1 import auth_pb2
from v4_proto.cosmos.auth.v1beta1 import query_pb2 as auth_query_pb2
from v4_proto.cosmos.auth.v1beta1 import query_pb2_grpc as auth_query_pb2_grpc
from v4_proto.cosmos.base.abci.v1beta1 import abci_pb2
from v4_proto.cosmos.base.tendermint.v1beta1 import query_pb2 as tendermint_query_pb2
from v4_proto.cosmos.base.tendermint.v1beta1 import query_pb2_grpc as tendermint_query_pb2_grpc
from v4_proto.cosmos.base.tendermint.v1beta1 import types_pb2 as tendermint_types_pb2
from v4_proto.cosmos.crypto.secp256k1.keys_pb2 import PubKey
from v4_proto.cosmos.tx.v1beta1 import service_pb2, service_pb2_grpc, tx_pb2
from v4_proto.dydxprotocol.accountplus import models_pb2, params_pb2, query_pb2, query_pb2_grpc
from v4_proto.tendermint.types import block_pb2, types_pb2

from primeguard.sandbox.dydx.chain import Chain, TxResult
from primeguard.sandbox.dydx.state import AuthRecord, DydxWorld, bech32_address_error

GARBAGE_CONFIG = b"\xff\xfe{not json"


class AccountPlusQuery(query_pb2_grpc.QueryServicer):  # type: ignore[misc]
    def __init__(self, world: DydxWorld, stopping: threading.Event) -> None:
        self.world = world
        self.stopping = stopping

    def _faults(self, context: Any, method: str) -> bool:
        """Apply faults; returns True when the answer must carry garbage configs."""
        d = self.world.faults["dydx-node"].decide(method)
        if d.latency_s:
            self.stopping.wait(d.latency_s)
        if d.action == "down":
            context.abort(grpc.StatusCode.UNAVAILABLE, "node is down")
        if d.action == "rate_limit":
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many requests")
        if d.action == "timeout":
            self.stopping.wait(d.timeout_s)
        if d.action == "error":
            context.abort(grpc.StatusCode.INTERNAL, "internal error")
        return d.action == "malformed"

    @staticmethod
    def _check(context: Any, account: str) -> None:
        error = bech32_address_error(account)
        if error is not None:
            context.abort(grpc.StatusCode.INTERNAL, error)

    @staticmethod
    def _pb(a: AuthRecord, garbage: bool) -> models_pb2.AccountAuthenticator:
        return models_pb2.AccountAuthenticator(id=a.id, type=a.type, config=GARBAGE_CONFIG if garbage else a.config)

    def GetAuthenticators(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        garbage = self._faults(context, "GetAuthenticators")
        self._check(context, request.account)
        auths = self.world.authenticators(request.account)
        return query_pb2.GetAuthenticatorsResponse(account_authenticators=[self._pb(a, garbage) for a in auths])

    def GetAuthenticator(self, request: Any, context: Any) -> Any:  # noqa: N802
        garbage = self._faults(context, "GetAuthenticator")
        self._check(context, request.account)
        for a in self.world.authenticators(request.account):
            if a.id == request.authenticator_id:
                return query_pb2.GetAuthenticatorResponse(account_authenticator=self._pb(a, garbage))
        context.abort(grpc.StatusCode.INTERNAL, f"authenticator {request.authenticator_id} not found for account "
                                                f"{request.account}: Authenticator is not found")
        return None  # pragma: no cover - abort raises

    def Params(self, request: Any, context: Any) -> Any:  # noqa: N802
        self._faults(context, "Params")
        return query_pb2.QueryParamsResponse(params=params_pb2.Params(is_smart_account_active=True))


class TxService(service_pb2_grpc.ServiceServicer):  # type: ignore[misc]
    """``cosmos.tx.v1beta1.Service``: ``BroadcastTx`` (checks and applies at once, as if the next
    block committed it), ``Simulate`` (checks without signatures, changes nothing) and ``GetTx``.
    The ``dydx-node`` faults apply here too."""

    def __init__(self, world: DydxWorld, stopping: threading.Event, query: AccountPlusQuery) -> None:
        self.chain = Chain(world)
        self.world = world
        self.query = query

    @staticmethod
    def _response(r: TxResult) -> Any:
        return abci_pb2.TxResponse(height=r.height, txhash=r.txhash, codespace=r.codespace, code=r.code,
                                   raw_log=r.log, gas_wanted=1_000_000, gas_used=r.gas_used)

    def BroadcastTx(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.query._faults(context, "BroadcastTx")
        result = self.chain.broadcast(bytes(request.tx_bytes))
        return service_pb2.BroadcastTxResponse(tx_response=self._response(result))

    def Simulate(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.query._faults(context, "Simulate")
        tx_bytes = bytes(request.tx_bytes) or request.tx.SerializeToString()
        result = self.chain.simulate(tx_bytes)
        if result.code:
            context.abort(grpc.StatusCode.UNKNOWN, f"{result.log}")
        return service_pb2.SimulateResponse(gas_info=abci_pb2.GasInfo(gas_wanted=1_000_000, gas_used=result.gas_used),
                                            result=abci_pb2.Result(log=result.log))

    def GetTx(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.query._faults(context, "GetTx")
        with self.world.lock:
            raw = self.world.txs.get(request.hash.upper())
        if raw is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"tx not found: {request.hash}")
        return service_pb2.GetTxResponse(tx=tx_pb2.Tx.FromString(raw),
                                         tx_response=abci_pb2.TxResponse(txhash=request.hash.upper()))


class AuthQuery(auth_query_pb2_grpc.QueryServicer):  # type: ignore[misc]
    """``cosmos.auth.v1beta1.Query/Account``: a ``BaseAccount`` with account number, sequence and
    (once known) public key; an unknown address is ``NOT_FOUND`` like the SDK's."""

    def __init__(self, world: DydxWorld, query: AccountPlusQuery) -> None:
        self.world = world
        self.query = query

    def Account(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.query._faults(context, "Account")
        error = bech32_address_error(request.address)
        if error is not None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid address: {error}")
        with self.world.lock:
            st = self.world.account(request.address)
            if st is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"account {request.address} not found")
            acct = auth_pb2.BaseAccount(address=st.address, account_number=st.account_number, sequence=st.sequence)
            if st.pubkey is not None:
                acct.pub_key.Pack(PubKey(key=st.pubkey), type_url_prefix="/")
        packed = any_pb2.Any()
        packed.Pack(acct, type_url_prefix="/")
        return auth_query_pb2.QueryAccountResponse(account=packed)


class TendermintService(tendermint_query_pb2_grpc.ServiceServicer):  # type: ignore[misc]
    """``cosmos.base.tendermint.v1beta1.Service/GetLatestBlock``: the simulated height, time, chain id."""

    def __init__(self, world: DydxWorld, query: AccountPlusQuery) -> None:
        self.world = world
        self.query = query

    def GetLatestBlock(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.query._faults(context, "GetLatestBlock")
        with self.world.lock:
            height, now = self.world.height()
            chain_id = self.world.chain_id
        ts = timestamp_pb2.Timestamp()
        ts.FromNanoseconds(int(now * 1e9))
        header = types_pb2.Header(chain_id=chain_id, height=height, time=ts)
        sdk_header = tendermint_types_pb2.Header(chain_id=chain_id, height=height, time=ts)
        return tendermint_query_pb2.GetLatestBlockResponse(
            block=block_pb2.Block(header=header), sdk_block=tendermint_types_pb2.Block(header=sdk_header))
