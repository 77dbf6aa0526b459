"""Collect one dYdX v4 address (its configured subaccounts) into an :class:`AccountSnapshot`.

Two independent reads run concurrently, each bounded in time; neither can raise out of here:

- **Indexer** (balances, positions, oracle prices): any failure — 404 unknown address, 403
  geo-block, timeout, 5xx, malformed body, or an indexer whose latest block is older than
  ``max_age_s`` — gives ``ok=False`` with no balances (never zeros) and a blind-spot finding. The
  finding's details carry when this account was last read successfully (``last_good_at``) and
  what its equity was then: the stale numbers are shown for humans, never used for decisions.
- **Node** (authenticators): a failure gives one credential with capability ``unknown`` (so any
  policy forbidding fund movement on client keys denies) plus ``VENUE_UNREACHABLE`` (venue
  ``dydx-node``). The snapshot stays ``ok=True`` when the indexer read worked: balances are
  known, key power is not. Credentials are reported even when the indexer failed.

Balances exclude unrealized PnL so that ``balance + Σ PnL(oracle) == indexer equity``
(``risk.valuation`` convention): USDC = equity − Σ size × (oracle − entry).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple, cast

from primeguard.config.schema import DydxAccountConfig
from primeguard.domain.errors import (
    VenueAuthError,
    VenueBadResponse,
    VenueError,
    VenueRateLimited,
    VenueUnavailable,
)
from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import Account, Balance, Credential, Position, PriceQuote, PriceSourceKind, VenueKind
from primeguard.domain.money import decimal_str
from primeguard.domain.observation import AccountSnapshot
from primeguard.venues.dydx.analysis import analyze_authenticator
from primeguard.venues.dydx.credentials import authenticator_credential, unscanned_credential, v3_stark_credentials
from primeguard.venues.dydx.indexer import IndexerHead, IndexerPool, IndexerReader, Market, SubaccountRow, underlying_of
from primeguard.venues.dydx.node import RawAuthenticator, list_authenticators

ISOLATED_FROM = 128  # dYdX: subaccounts 0..127 are cross-margined, 128+ isolated


@dataclass(frozen=True)
class _LastGood:
    at: datetime
    equity_usd: str


@dataclass(frozen=True)
class _IndexerPart:
    ok: bool
    balances: tuple[Balance, ...] = ()
    positions: tuple[Position, ...] = ()
    prices: tuple[PriceQuote, ...] = ()
    findings: tuple[Finding, ...] = ()
    equity_usd: str | None = None
    markets: MappingProxyType[int, str] | None = None


def dydx_account(cfg: DydxAccountConfig) -> Account:
    """The domain :class:`Account` of a configured dYdX address. Pure."""
    subs = ",".join(str(n) for n in cfg.subaccounts)
    return Account(id=cfg.id, client_id=cfg.client, venue=VenueKind.DYDX, address=cfg.address,
                   label=f"dYdX v4 {cfg.address} subaccounts {subs}")


class IndexerPools:
    """One :class:`IndexerPool` per indexer URL, made on first use; :meth:`aclose` closes them all."""

    def __init__(self) -> None:
        self.pools: dict[str, IndexerPool] = {}
        self.closed = False

    def pool(self, url: str) -> IndexerPool:
        """The pool for ``url`` (made now if there is none)."""
        pool = self.pools.get(url)
        if pool is None:
            pool = self.pools[url] = IndexerPool()
        return pool

    @property
    def sound(self) -> bool:
        """Open, and none of its HTTP clients closed: fit for another collection."""
        return not self.closed and not any(p.http.is_closed for p in self.pools.values())

    async def aclose(self) -> None:
        """Close every pool (idempotent)."""
        self.closed = True
        pools = list(self.pools.values())
        self.pools.clear()
        await asyncio.gather(*(p.aclose() for p in pools), return_exceptions=True)


class DydxCollector:
    """Reads dYdX accounts; remembers each account's last good read for stale-data reporting."""

    def __init__(self) -> None:
        self._last_good: dict[str, _LastGood] = {}

    async def collect(self, cfg: DydxAccountConfig, now: datetime | None = None) -> AccountSnapshot:
        """Read one account. Never raises for venue faults: they become findings."""
        return (await self.collect_many([cfg], now))[0]

    async def collect_many(self, cfgs: Sequence[DydxAccountConfig], now: datetime | None = None, *,
                           pools: IndexerPools | None = None) -> list[AccountSnapshot]:
        """Read accounts concurrently, in the given order. Accounts on the same indexer share one
        read of its height and markets, and one connection pool (:class:`IndexerPool`): taken from
        ``pools`` (kept open by its owner, e.g. the daemon's session) or, without it, made for this
        call and closed before this returns."""
        observed = now or datetime.now(UTC)
        shared: dict[tuple[str, float], asyncio.Future[_Common]] = {}
        own = pools is None
        kept = IndexerPools() if pools is None else pools
        try:
            return list(await asyncio.gather(*(self._collect(c, observed, shared, kept) for c in cfgs)))
        finally:
            for common in shared.values():  # a shared read every account gave up on
                common.cancel()
            await asyncio.gather(*shared.values(), return_exceptions=True)
            if own:
                await kept.aclose()

    async def _collect(self, cfg: DydxAccountConfig, observed: datetime,
                       shared: dict[tuple[str, float], asyncio.Future[_Common]],
                       pools: IndexerPools) -> AccountSnapshot:
        account = dydx_account(cfg)
        v3_creds, v3_findings = v3_stark_credentials(account, cfg.v3_stark_key_holders)
        try:
            part, listed = await asyncio.gather(self._indexer(cfg, account, observed, shared, pools), _node(cfg))
            creds, cred_findings = authenticator_part(cfg, account, listed, part.markets)
        except Exception as exc:  # a bug here must not stop the sweep: fail closed, say why
            finding = Finding(FindingCode.VENUE_BAD_RESPONSE, Severity.CRITICAL, account.id,
                              f"dYdX {account.id} could not be collected: internal error {type(exc).__name__}",
                              venue="dydx", client_id=account.client_id)
            cred, unknown = unscanned_credential(account, "internal error")
            return AccountSnapshot(account, observed, ok=False, credentials=(cred, *v3_creds),
                                   findings=(finding, *unknown, *v3_findings))
        if part.ok and part.equity_usd is not None:
            self._last_good[account.id] = _LastGood(observed, part.equity_usd)
        return AccountSnapshot(
            account=account, observed_at=observed, ok=part.ok, balances=part.balances, positions=part.positions,
            credentials=(*creds, *v3_creds), prices=part.prices,
            findings=(*part.findings, *cred_findings, *v3_findings), equity_usd=part.equity_usd,
        )

    # --- indexer ---------------------------------------------------------------------------------

    async def _indexer(self, cfg: DydxAccountConfig, account: Account, observed: datetime,
                       shared: dict[tuple[str, float], asyncio.Future[_Common]],
                       pools: IndexerPools) -> _IndexerPart:
        pool = pools.pool(cfg.indexer_url)
        reader = IndexerReader(cfg.indexer_url, cfg.timeout_s, pool)
        key = (cfg.indexer_url, cfg.timeout_s)
        common = shared.get(key)
        if common is None:
            common = shared[key] = asyncio.ensure_future(_read_common(reader))
        # shield: one account giving up must not cancel the shared read for the others
        calls: list[Any] = [asyncio.shield(common), *(reader.subaccount(cfg.address, n)
                                                                for n in sorted(set(cfg.subaccounts)))]
        try:
            results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True),
                                             cfg.timeout_s * 2 + 1)
        except TimeoutError:
            results = [VenueUnavailable("indexer did not answer in time", venue="dydx", code="timeout")]
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            return _IndexerPart(False, findings=(self._blind(account, errors),))
        head, markets = cast(_Common, results[0])
        subs = cast(list[SubaccountRow], results[1:])
        age = (observed - head.time).total_seconds()
        if age > cfg.max_age_s:
            stale = VenueError(f"indexer's latest block {head.height} is {int(age)} s old (budget {cfg.max_age_s} s)",
                               venue="dydx", code="stale")
            return _IndexerPart(False, findings=(self._blind(account, [stale], code=FindingCode.DATA_STALE),))
        return build_indexer_part(account, head, markets, subs, observed)

    def _blind(self, account: Account, errors: Iterable[BaseException], code: FindingCode | None = None) -> Finding:
        errs = list(errors)
        first = errs[0]
        if code is None:
            code = _code_for(first)
        last = self._last_good.get(account.id)
        details: dict[str, Any] = {
            "errors": [_describe(e) for e in errs[:5]],
            "last_good_at": last.at.isoformat() if last else None,
            "last_equity_usd": last.equity_usd if last else None,
        }
        stale = f"; last good read {last.at.isoformat()} (equity {last.equity_usd} USD)" if last else ""
        return Finding(code, Severity.CRITICAL, account.id,
                       f"dYdX {account.id} ({account.address}) is a blind spot: {_describe(first)}{stale}",
                       venue="dydx", client_id=account.client_id, details=MappingProxyType(details))


async def _node(cfg: DydxAccountConfig) -> tuple[RawAuthenticator, ...] | VenueError | None:
    """The address's authenticators, the error that prevented listing them, or None (not configured)."""
    if cfg.node_grpc is None:
        return None
    try:
        return await list_authenticators(cfg.node_grpc, cfg.address, cfg.timeout_s)
    except VenueError as exc:
        return exc
    except Exception as exc:  # anything else from the vendor stack: unknown key power, not a crash
        return VenueBadResponse(f"authenticators of {cfg.address}: unexpected {type(exc).__name__}",
                                venue="dydx-node")


def authenticator_part(cfg: DydxAccountConfig, account: Account,
                       listed: tuple[RawAuthenticator, ...] | VenueError | None,
                       markets: Mapping[int, str] | None) -> tuple[tuple[Credential, ...], tuple[Finding, ...]]:
    """Pure: analysed authenticators (or the unknown stand-in when the node failed) with findings."""
    if listed is None:
        return (), (Finding(FindingCode.AUTHENTICATOR_UNKNOWN, Severity.WARNING, account.id,
                            f"authenticators of {account.address} are not scanned (no node_grpc configured)",
                            venue="dydx", client_id=account.client_id),)
    if isinstance(listed, VenueError):
        cred, unknown = unscanned_credential(account, _describe(listed))
        finding = Finding(_code_for(listed), Severity.CRITICAL, account.id,
                          f"dYdX node for {account.id} ({account.address}): {_describe(listed)}; "
                          "key capabilities unknown", venue="dydx-node", client_id=account.client_id,
                          details=MappingProxyType({"node": cfg.node_grpc}))
        return (cred,), (finding, *unknown)
    creds: list[Credential] = []
    findings: list[Finding] = []
    for a in listed:
        cred, found = authenticator_credential(account, analyze_authenticator(a.id, a.type, a.config),
                                               markets=markets)
        creds.append(cred)
        findings.extend(found)
    return tuple(creds), tuple(findings)


class _Common(NamedTuple):
    head: IndexerHead
    markets: dict[str, Market]


async def _read_common(reader: IndexerReader) -> _Common:
    """The indexer's height and markets (oracle prices): once per indexer per sweep."""
    head, markets = await asyncio.gather(reader.head(), reader.markets(), return_exceptions=True)
    for r in (head, markets):
        if isinstance(r, BaseException):
            raise r
    return _Common(cast(IndexerHead, head), cast(dict[str, Market], markets))


def build_indexer_part(account: Account, head: IndexerHead, markets: dict[str, Market],
                       subs: Sequence[SubaccountRow], observed: datetime) -> _IndexerPart:
    """Pure: turn parsed indexer answers into domain values."""
    findings: list[Finding] = []
    prices = tuple(
        PriceQuote(asset=underlying_of(m.ticker), price=m.oracle_price, source=PriceSourceKind.DYDX_ORACLE,
                   source_id=f"dydx:{m.ticker}", updated_at=head.time, observed_at=observed)
        for m in markets.values() if m.oracle_price is not None and m.oracle_price > 0
    )
    balances: list[Balance] = []
    positions: list[Position] = []
    equity_total = Decimal(0)
    for sub in subs:
        source = f"dydx:{sub.address}:{sub.number}"
        pnl_total = Decimal(0)
        priced = True
        for perp in sub.perps:
            market = markets.get(perp.market)
            oracle = market.oracle_price if market is not None else None
            if oracle is None or oracle <= 0:
                priced = False
                findings.append(Finding(FindingCode.PRICE_MISSING, Severity.HIGH, account.id,
                                        f"dYdX has no oracle price for {perp.market} (position on subaccount "
                                        f"{sub.number})", venue="dydx", client_id=account.client_id,
                                        details=MappingProxyType({"market": perp.market})))
            mark = oracle if oracle is not None and oracle > 0 else perp.entry_price
            pnl = perp.size * (mark - perp.entry_price)
            pnl_total += pnl
            positions.append(Position(
                account_id=account.id, venue=VenueKind.DYDX, instrument=perp.market,
                underlying=underlying_of(perp.market), size=perp.size, entry_price=perp.entry_price,
                mark_price=mark, observed_at=observed, source=source, unrealized_pnl=pnl,
                margin_mode="isolated" if sub.number >= ISOLATED_FROM else "cross",
            ))
        if priced:
            usdc = sub.equity - pnl_total
        else:  # without every price, fall back to the quote balance plus entry cost
            usdc = sub.quote + sum((p.size * p.entry_price for p in sub.perps), Decimal(0))
        used = max(Decimal(0), sub.equity - sub.free_collateral)
        balances.append(Balance(account.id, "USDC", usdc, observed, source,
                                locked=min(used, usdc) if usdc > 0 else Decimal(0)))
        for symbol, qty in sub.other_assets:
            balances.append(Balance(account.id, symbol, qty, observed, source))
        equity_total += sub.equity
    names = MappingProxyType({m.clob_pair_id: m.ticker for m in markets.values() if m.clob_pair_id is not None})
    return _IndexerPart(True, tuple(balances), tuple(positions), prices, tuple(findings),
                        decimal_str(equity_total), names)


def _code_for(exc: BaseException) -> FindingCode:
    if isinstance(exc, VenueRateLimited):
        return FindingCode.VENUE_RATE_LIMITED
    if isinstance(exc, VenueUnavailable | TimeoutError):
        return FindingCode.VENUE_UNREACHABLE
    if isinstance(exc, VenueAuthError):
        return FindingCode.VENUE_AUTH_FAILED
    if isinstance(exc, VenueBadResponse):
        return FindingCode.VENUE_BAD_RESPONSE
    return FindingCode.VENUE_BAD_RESPONSE


def _describe(exc: BaseException) -> str:
    if isinstance(exc, VenueError):
        return str(exc)
    return f"unexpected {type(exc).__name__}"


_DEFAULT = DydxCollector()


async def collect(cfg: DydxAccountConfig, now: datetime | None = None) -> AccountSnapshot:
    """Read one dYdX account (module-wide collector: remembers last good reads)."""
    return await _DEFAULT.collect(cfg, now)


async def collect_many(cfgs: Sequence[DydxAccountConfig], now: datetime | None = None, *,
                       pools: IndexerPools | None = None) -> list[AccountSnapshot]:
    """Read many dYdX accounts concurrently (``pools``: kept-open indexer pools, see
    :meth:`DydxCollector.collect_many`)."""
    return await _DEFAULT.collect_many(cfgs, now, pools=pools)
