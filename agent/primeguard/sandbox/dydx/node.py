"""dYdX node simulator: the ``dydxprotocol.accountplus.Query`` gRPC service (GetAuthenticators,
GetAuthenticator, Params), built on v4_proto's generated servicer base class, with the scenario's
``dydx-node`` faults (down, latency, timeouts, errors, rate limits, garbage configs).

Answers as the chain's query server does: an address that does not decode as ``dydx1…`` bech32
and an authenticator id that does not exist both come back as gRPC ``INTERNAL`` with the keeper's
error text (not ``INVALID_ARGUMENT``/``NOT_FOUND``); an address with no authenticators gets an
empty list; authenticators are listed in the store's key order (ids as strings: 1, 10, 2)."""

from __future__ import annotations

import threading
from typing import Any

import grpc
from v4_proto.dydxprotocol.accountplus import models_pb2, params_pb2, query_pb2, query_pb2_grpc

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
