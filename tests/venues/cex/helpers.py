"""Helpers for the CEX adapter tests."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from primeguard.config.schema import CexAccountConfig
from primeguard.venues.cex.client import CexClientPool, build_exchange

FAST_PACING_MS = 1  # ccxt's per-key pacing shortened: these tests check behaviour, not pacing


def fast_pool(**kw: Any) -> CexClientPool:
    return CexClientPool(rate_limit_ms=FAST_PACING_MS, **kw)


def with_secret(acct: CexAccountConfig, cred_id: str, **values: str) -> CexAccountConfig:
    """A copy of ``acct`` whose credential ``cred_id`` uses inline values (api_key/secret/passphrase)."""
    from primeguard.config.schema import SecretRef

    creds = []
    for c in acct.credentials:
        if c.id == cred_id:
            c = c.model_copy(update={k: SecretRef(value=v) for k, v in values.items()})
        creds.append(c)
    return acct.model_copy(update={"credentials": tuple(creds)})


def with_holder(acct: CexAccountConfig, cred_id: str, holder: str) -> CexAccountConfig:
    from primeguard.domain.model import Holder

    creds = tuple(c.model_copy(update={"holder": Holder(holder)}) if c.id == cred_id else c for c in acct.credentials)
    return acct.model_copy(update={"credentials": creds})


async def c(x: Any) -> Any:
    """Await ``x`` when it is awaitable (async ccxt), return it otherwise (sync ccxt)."""
    return await x if inspect.isawaitable(x) else x


def run_with(acct: CexAccountConfig, cred_id: str | None, mode: str,
             fn: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``fn(exchange)`` with a real ccxt client of ``mode`` ("sync" or "async")."""

    async def go() -> Any:
        ex = build_exchange(acct, cred_id, sync=mode == "sync", timeout_s=5, rate_limit_ms=FAST_PACING_MS)
        try:
            return await fn(ex)
        finally:
            if mode == "async":
                await ex.close()

    return asyncio.run(go())
