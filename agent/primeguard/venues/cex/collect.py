"""Collect CEX sub-accounts into :class:`AccountSnapshot` values: balances (spot + futures),
signed positions with mark and liquidation prices, venue mark prices, every configured key's
capabilities (each inspected with its own key), the withdrawal whitelist, and findings.

Fail closed: any fault while reading balances or positions gives ``ok=False`` with the typed
error's finding and no balances (never zeros); a key that cannot be inspected is reported with the
UNKNOWN capability; nothing here raises for a venue problem. A client key the venue refuses as
deleted, disabled or pinned to an unused address is a fact, not a gap, once the PB's key-managing
credential confirms it: its capabilities are then empty (it can move nothing). An unconfirmed
refusal, or a key failing for any other reason (timeout, 5xx), stays a blind spot. Bad
configuration (unknown venue, dangling credential reference, duplicate account id) raises
:class:`ConfigError` up front.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from primeguard.config.schema import CexAccountConfig, CredentialConfig
from primeguard.domain.errors import ConfigError, VenueError
from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import Account, Capability, Credential, Holder, VenueKind
from primeguard.domain.observation import AccountSnapshot, WhitelistStatus
from primeguard.venues.cex import normalize as nz
from primeguard.venues.cex.capabilities import credential_findings, key_subject, whitelist_findings
from primeguard.venues.cex.client import CexClientPool, public_key_of
from primeguard.venues.cex.errors import finding_for, translate
from primeguard.venues.cex.exchange import CexExchange, WhitelistAccess
from primeguard.venues.cex.limits import VenueLimits
from primeguard.venues.cex.registry import EXCHANGES, VENUES, exchange_for

log = logging.getLogger(__name__)
DEFAULT_ACCOUNT_TIMEOUT_S = 30.0


def check_accounts(accounts: Sequence[CexAccountConfig]) -> None:
    """Reject bad input before any I/O.

    Raises:
        ConfigError: unknown venue, duplicate account id, a monitor/operator reference that names no
            configured credential.
    """
    dupes = [i for i, n in Counter(a.id for a in accounts).items() if n > 1]
    if dupes:
        raise ConfigError(f"duplicate CEX account id(s): {', '.join(sorted(dupes))}")
    for a in accounts:
        if a.venue not in EXCHANGES:
            raise ConfigError(f"account {a.id}: unknown CEX venue {a.venue!r}; expected one of {', '.join(VENUES)}")
        ids = {c.id for c in a.credentials}
        for role, ref in (("monitor", a.monitor), ("operator", a.operator)):
            if ref is not None and ref not in ids:
                raise ConfigError(f"account {a.id}: {role} credential {ref!r} is not among its credentials")


def account_of(cfg: CexAccountConfig) -> Account:
    return Account(id=cfg.id, client_id=cfg.client, venue=VenueKind(cfg.venue), address=cfg.sub_account,
                   label=f"{cfg.venue} sub-account {cfg.sub_account}")


@dataclass
class _Inspected:
    cred: CredentialConfig
    info: nz.KeyInfo | None = None
    error: VenueError | None = None
    config_error: str | None = None
    expired: bool = False


# --- reads through the exchange ---------------------------------------------------------------------


async def _inspect(pool: CexClientPool, account: CexAccountConfig, cred: CredentialConfig) -> _Inspected:
    exchange = exchange_for(account.venue)
    try:
        ex = pool.exchange(account, cred.id)
    except ConfigError as exc:
        return _Inspected(cred, config_error=str(exc))
    try:
        return _Inspected(cred, await exchange.inspect_key(ex))
    except Exception as exc:  # classified below; never escapes
        err = translate(exc, account.venue)
        if err.code in exchange.expired_codes:  # the venue says so itself: the key can do nothing
            return _Inspected(cred, nz.KeyInfo(frozenset(), None, None, None, {"expired": True}), expired=True)
        if err.code in exchange.refused_codes and cred.holder == Holder.CLIENT:
            state = await _confirm_refused(pool, account, cred)
            if state is not None:  # a fact about the key, confirmed by the venue's key management
                return _Inspected(cred, nz.KeyInfo(frozenset(), None, None, None,
                                                   {"refused": True, "key_state": state, "venue_code": err.code}))
        return _Inspected(cred, error=err)


async def _confirm_refused(pool: CexClientPool, account: CexAccountConfig, cred: CredentialConfig) -> str | None:
    """Why the venue refuses client key ``cred``, as the PB's key-managing credential (key_admin, else
    master) reads it: e.g. "deleted", or "pinned to unused IP …". None when no such credential is
    configured, the venue shows the key live, or the read fails: the refusal then stays a blind spot."""
    admin = next((c.id for h in (Holder.KEY_ADMIN, Holder.MASTER) for c in account.credentials if c.holder == h), None)
    if admin is None:
        return None
    try:
        ex = pool.exchange(account, admin)
        return await exchange_for(account.venue).refused_key_state(
            ex, account, public_key_of(account, cred.id, pool.base_dir))
    except Exception as exc:  # unconfirmed: the caller keeps the key's own refusal as the blind spot
        log.warning("CEX account %s: key %s refused and its state unreadable with %s: %s", account.id, cred.id,
                    admin, type(translate(exc, account.venue)).__name__)
        return None


async def _whitelist(exchange: CexExchange, ex: Any) -> tuple[WhitelistStatus, str]:
    """The address book and, when it says nothing, why; never raises for a venue fault."""
    try:
        return await exchange.read_whitelist(ex), "the address book is empty"
    except Exception as exc:
        return WhitelistStatus(enabled=None), f"address book unreadable: {type(translate(exc, exchange.name)).__name__}"


async def _whitelist_with_withdraw_key(pool: CexClientPool, account: CexAccountConfig,
                                       inspected: Sequence[_Inspected]) -> tuple[WhitelistStatus, str]:
    order = {Holder.OPERATOR: 0, Holder.MONITOR: 1, Holder.CLIENT: 2}
    able = sorted((i for i in inspected if i.info is not None and Capability.WITHDRAW in i.info.capabilities
                   and i.cred.holder in order), key=lambda i: order[i.cred.holder])
    if not able:
        return WhitelistStatus(enabled=None), "no configured key on the sub-account has the withdraw permission " \
                                              f"{account.venue} requires to read the address book"
    return await _whitelist(exchange_for(account.venue), pool.exchange(account, able[0].cred.id))


# --- assembling a snapshot ------------------------------------------------------------------------------


def _credential(account: Account, i: _Inspected) -> Credential:
    venue = account.venue
    if i.info is None:
        details: dict[str, Any] = {"inspected": False, "is_master": None,
                                   "error": (i.config_error and "ConfigError") or type(i.error).__name__,
                                   "venue_code": None if i.error is None else i.error.code}
        return Credential(i.cred.id, account.id, venue, "cex_api_key", i.cred.holder,
                          frozenset({Capability.UNKNOWN}), None, details=MappingProxyType(details))
    details = {"inspected": True, "is_master": i.info.is_master, **i.info.details}
    return Credential(i.cred.id, account.id, venue, "cex_api_key", i.cred.holder, i.info.capabilities,
                      i.info.ip_restricted, i.info.expires_at, details=MappingProxyType(details))


def blind(account: Account, at: datetime, finding: Finding,
          credentials: tuple[Credential, ...] = ()) -> AccountSnapshot:
    return AccountSnapshot(account=account, observed_at=at, ok=False, credentials=credentials, findings=(finding,))


def _config_finding(account: Account, subject: str, message: str) -> Finding:
    return Finding(FindingCode.BLIND_SPOT, Severity.HIGH, subject, f"configuration: {message}",
                   venue=account.venue.value, client_id=account.client_id)


async def _collect(account_cfg: CexAccountConfig, pool: CexClientPool, now: datetime | None) -> AccountSnapshot:
    account = account_of(account_cfg)
    venue = account_cfg.venue
    exchange = exchange_for(venue)
    try:
        monitor = pool.exchange(account_cfg, account_cfg.monitor)
    except ConfigError as exc:
        return blind(account, now or datetime.now(UTC), _config_finding(account, account.id, str(exc)))
    read = nz.MonitorRead()

    async def monitor_read() -> tuple[WhitelistStatus | None, str]:
        book = await pool.markets(account_cfg)
        at = now or datetime.now(UTC)
        if exchange.whitelist_access is WhitelistAccess.MONITOR:
            _, wl = await asyncio.gather(exchange.read_account(monitor, book, account_cfg.id, at, read),
                                         _whitelist(exchange, monitor))
            return wl
        await exchange.read_account(monitor, book, account_cfg.id, at, read)
        if exchange.whitelist_access is WhitelistAccess.NONE:
            return WhitelistStatus(enabled=None), exchange.no_whitelist_reason
        return None, ""  # read after the keys are known: it needs a key with withdraw permission

    # Key inspections first: each is its key's cheapest call, so it never waits behind the reads.
    results = await asyncio.gather(*(_inspect(pool, account_cfg, c) for c in account_cfg.credentials),
                                   monitor_read(), return_exceptions=True)
    inspected: list[_Inspected] = [r for r in results[:-1] if isinstance(r, _Inspected)]
    outcome = results[-1]
    at = now or datetime.now(UTC)
    creds = tuple(_credential(account, i) for i in inspected)
    if isinstance(outcome, BaseException):
        if isinstance(outcome, asyncio.CancelledError):
            raise outcome
        err = translate(outcome, venue)
        log.warning("CEX account %s (%s) unreadable: %s %s", account.id, venue, type(err).__name__, err.code or "")
        return blind(account, at, finding_for(err, subject=account.id, client_id=account.client_id,
                                              what=f"reading {venue} sub-account {account.address}"), creds)
    wl, wl_reason = outcome  # type: ignore[misc]  # gather's result: the monitor read's tuple
    if exchange.whitelist_access is WhitelistAccess.WITHDRAW_KEY:
        wl, wl_reason = await _whitelist_with_withdraw_key(pool, account_cfg, inspected)
    findings: list[Finding] = []
    for i, cred in zip(inspected, creds, strict=True):
        subject = key_subject(account.id, cred.id)
        if i.error is not None:
            findings.append(finding_for(i.error, subject=subject, client_id=account.client_id,
                                        what=f"inspecting {cred.holder.value} key {cred.id}"))
        elif i.config_error is not None:
            findings.append(_config_finding(account, subject, i.config_error))
        elif i.expired:
            findings.append(Finding(FindingCode.KEY_EXPIRED, Severity.WARNING, subject,
                                    f"{cred.holder.value} key {cred.id}: the venue says it has expired", venue=venue,
                                    client_id=account.client_id, details={"credential": cred.id}))
        else:
            if i.info is not None and i.info.type_errors:
                findings.append(Finding(
                    FindingCode.VENUE_BAD_RESPONSE, Severity.HIGH, subject,
                    f"{cred.holder.value} key {cred.id}: the venue reported {', '.join(i.info.type_errors)[:120]} "
                    "in an undocumented type; read as unknown (the key is treated as able to do anything)",
                    venue=venue, client_id=account.client_id,
                    details={"credential": cred.id, "fields": list(i.info.type_errors)}))
            findings.extend(credential_findings(account, cred, at))
    findings.extend(whitelist_findings(account, wl, creds, wl_reason if wl is not None and wl.enabled is None else ""))
    ok = not read.unsupported
    if read.unsupported:
        pool.forget_markets(account_cfg)
        findings.insert(0, Finding(FindingCode.BLIND_SPOT, Severity.HIGH, account.id,
                                   f"positions primeguard cannot value: {', '.join(sorted(read.unsupported))[:200]}",
                                   venue=venue, client_id=account.client_id,
                                   details={"instruments": sorted(read.unsupported)}))
    return AccountSnapshot(account=account, observed_at=at, ok=ok,
                           balances=tuple(read.balances) if ok else (), positions=tuple(read.positions) if ok else (),
                           credentials=creds, prices=tuple(read.prices) if ok else (), findings=tuple(findings),
                           whitelist=wl, equity_usd=read.equity_usd if ok else None)


async def collect(account_cfg: CexAccountConfig, *, pool: CexClientPool | None = None, base_dir: Path | None = None,
                  now: datetime | None = None, timeout_s: float = DEFAULT_ACCOUNT_TIMEOUT_S) -> AccountSnapshot:
    """Read one CEX sub-account. Never raises for venue faults: see the module docstring.

    Args:
        account_cfg: the account (monitor credential reads; every credential is inspected).
        pool: clients to reuse; a temporary pool is made (and closed) when None.
        base_dir: where relative secret files live.
        now: timestamp for the snapshot (default: when the reads finished).
        timeout_s: budget for the whole account (each HTTP request also has its own timeout).
    """
    check_accounts([account_cfg])
    if pool is None:
        async with CexClientPool(base_dir=base_dir) as own:
            return await collect(account_cfg, pool=own, now=now, timeout_s=timeout_s)
    try:
        return await asyncio.wait_for(_collect(account_cfg, pool, now), timeout_s)
    except TimeoutError:
        account = account_of(account_cfg)
        err = VenueError(f"collection exceeded {timeout_s:g} s", venue=account_cfg.venue, code="timeout")
        return blind(account, now or datetime.now(UTC), Finding(
            FindingCode.VENUE_UNREACHABLE, Severity.HIGH, account.id, f"reading {account_cfg.venue} sub-account "
            f"{account.address}: {err}", venue=account_cfg.venue, client_id=account.client_id,
            details={"error": "timeout", "timeout_s": timeout_s}))
    except Exception as exc:  # a bug must not stop the sweep: fail closed and say so
        log.exception("CEX account %s: unexpected %s", account_cfg.id, type(exc).__name__)
        account = account_of(account_cfg)
        return blind(account, now or datetime.now(UTC), Finding(
            FindingCode.BLIND_SPOT, Severity.HIGH, account.id, f"internal error while reading the account "
            f"({type(exc).__name__})", venue=account_cfg.venue, client_id=account.client_id))


async def collect_many(accounts: Sequence[CexAccountConfig], *, pool: CexClientPool | None = None,
                       limits: dict[str, VenueLimits] | None = None, base_dir: Path | None = None,
                       account_timeout_s: float = DEFAULT_ACCOUNT_TIMEOUT_S,
                       request_timeout_s: float | None = None) -> list[AccountSnapshot]:
    """Read many sub-accounts concurrently (per-venue limits), in input order.

    Raises:
        ConfigError: bad input (see :func:`check_accounts`); venue faults never raise.
    """
    accounts = list(accounts)
    check_accounts(accounts)
    if pool is None:
        kwargs: dict[str, Any] = {"limits": limits, "base_dir": base_dir}
        if request_timeout_s is not None:
            kwargs["request_timeout_s"] = request_timeout_s
        async with CexClientPool(**kwargs) as own:
            return await collect_many(accounts, pool=own, account_timeout_s=account_timeout_s)
    gates = {v: asyncio.Semaphore(pool.limits[v].accounts_in_flight) for v in {a.venue for a in accounts}}

    async def one(a: CexAccountConfig) -> AccountSnapshot:
        async with gates[a.venue]:
            return await collect(a, pool=pool, timeout_s=account_timeout_s)

    return list(await asyncio.gather(*(one(a) for a in accounts)))
