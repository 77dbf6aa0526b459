"""Collect on-chain collateral for every configured wallet on every chain, as domain types.

One :class:`ChainReader` per chain, chains read concurrently. A chain that cannot be read turns
every wallet on it into a blind-spot snapshot (``ok=False``), never into zero balances.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from primeguard.config.schema import ChainConfig, FeedConfig, PrimeguardConfig, TokenConfig, WalletConfig
from primeguard.domain.errors import ChainIdMismatch, VenueError
from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import Account, Balance, PriceQuote, VenueKind
from primeguard.domain.observation import AccountSnapshot
from primeguard.risk.defi import DefiPosition, health_finding
from primeguard.venues.evm.oracle import FeedSpec, check_round
from primeguard.venues.evm.reader import ChainReader

NATIVE_ASSET = "ETH"  # every chain we support uses ETH as gas token


@dataclass(frozen=True)
class EvmCollection:
    """What the EVM collection gave: snapshots, oracle quotes, chain findings and the JSON-RPC round trips made."""

    snapshots: tuple[AccountSnapshot, ...]
    prices: tuple[PriceQuote, ...]
    findings: tuple[Finding, ...]
    round_trips: int


def wallet_account(w: WalletConfig) -> Account:
    """The domain :class:`Account` of a configured wallet or vault. Pure."""
    return Account(id=w.id, client_id=w.client, venue=VenueKind.EVM, chain=w.chain, address=w.address,
                   label=w.label or w.kind)


async def collect_chain(cfg: PrimeguardConfig, chain: ChainConfig, now: datetime | None = None) -> EvmCollection:
    """Read one chain: balances of its wallets and vaults, its oracle feeds (batched reads). Never raises for a
    chain fault (down, lagging, wrong chain id): every wallet becomes a blind snapshot with the chain's
    finding. Reads only."""
    wallets = [w for w in cfg.wallets if w.chain == chain.id]
    tokens = cfg.tokens_on(chain.id)
    feeds = cfg.feeds_on(chain.id)
    reader = ChainReader(chain.id, chain.rpc_url, batch_reader=chain.batch_reader, batch_mode=chain.batch_mode,
                         call_gas_cap=chain.call_gas_cap, timeout_s=chain.timeout_s,
                         expected_chain_id=chain.chain_id)
    observed = now or datetime.now(UTC)
    async with reader:
        got = await _collect_with(reader, chain, wallets, tokens, feeds, observed)
        if not any(p.wallet in {w.id for w in wallets} for p in cfg.defi_positions):
            return got
        from primeguard.venues.evm.defi import read_positions

        positions = await read_positions(cfg, reader, chain.id)
        extra = tuple(position_snapshot(p, {w.id: w for w in wallets}, cfg, chain.id, observed) for p in positions)
        return EvmCollection(got.snapshots + extra, got.prices, got.findings, reader.round_trips)


def position_snapshot(pos: DefiPosition, wallets: dict[str, WalletConfig], cfg: PrimeguardConfig, chain: str,
                      observed: datetime) -> AccountSnapshot:
    """A declared DeFi position as an account of its client: each supplied leg a balance of the
    underlying asset, each borrowed leg a negative balance (a liability, counted in full by the
    valuation). An unreadable position is a blind snapshot (``ok=False``, never zeros). Pure."""
    decl = next(d for d in cfg.defi_positions if d.id == pos.id)
    wallet = wallets[decl.wallet]
    account = Account(id=pos.id, client_id=pos.client_id, venue=VenueKind.EVM, chain=chain, address=wallet.address,
                      label=f"{pos.protocol} position")
    source = f"evm:{chain}:{pos.protocol}"
    if not pos.readable:
        finding = Finding(FindingCode.DEFI_POSITION_UNREADABLE, Severity.CRITICAL, pos.id,
                          f"{pos.protocol} position {pos.id} could not be read ({pos.error}): it is unpriced and "
                          f"client {pos.client_id} is blind", venue="evm", chain=chain, client_id=pos.client_id)
        return AccountSnapshot(account, observed, ok=False, findings=(finding,))
    balances = tuple(Balance(pos.id, leg.asset, -leg.amount if leg.borrowed else leg.amount, observed, source)
                     for leg in pos.legs)
    low = health_finding(pos)
    return AccountSnapshot(account, observed, ok=True, balances=balances, findings=() if low is None else (low,))


async def _collect_with(reader: ChainReader, chain: ChainConfig, wallets: list[WalletConfig],
                        tokens: list[TokenConfig], feeds: list[FeedConfig], observed: datetime) -> EvmCollection:
    try:
        await reader.verify_chain()  # before anything the node says is used
        block_ts, reads, rounds = await asyncio.gather(
            reader.block_timestamp(),
            reader.balances([w.address for w in wallets], [t.address for t in tokens]),
            reader.rounds([f.address for f in feeds]),
        )
    except ChainIdMismatch as exc:  # another chain behind the URL: nothing it says is ours
        finding = Finding(FindingCode.CHAIN_ID_MISMATCH, Severity.CRITICAL, f"chain:{chain.id}",
                          f"chain {chain.id} is blind: its node answers chain id {exc.actual}, the config "
                          f"says {chain.chain_id}; balances, oracle prices and custody on it are refused",
                          venue="evm", chain=chain.id,
                          details={"expected_chain_id": exc.expected, "node_chain_id": exc.actual})
        return _blind_chain(finding, wallets, observed, reader.round_trips)
    except (VenueError, ValueError) as exc:
        finding = Finding(FindingCode.VENUE_UNREACHABLE, Severity.CRITICAL, f"chain:{chain.id}",
                          f"chain {chain.id} could not be read: {exc}", venue="evm", chain=chain.id)
        return _blind_chain(finding, wallets, observed, reader.round_trips)

    findings: list[Finding] = []
    # Judge oracle age against the later of our clock and the chain's: a chain whose time was moved
    # forward (tests, or a node ahead of us) must not make a stale feed look fresh.
    chain_now = datetime.fromtimestamp(block_ts, tz=UTC)
    judge_now = max(observed, chain_now)
    stale_chain = chain.max_block_age_s is not None and (observed - chain_now).total_seconds() > chain.max_block_age_s
    if stale_chain:
        findings.append(Finding(FindingCode.DATA_STALE, Severity.CRITICAL, f"chain:{chain.id}",
                                f"latest block on {chain.id} is {int((observed - chain_now).total_seconds())} s old",
                                venue="evm", chain=chain.id))
    prices: list[PriceQuote] = []
    for spec, raw in zip(feeds, rounds, strict=True):
        quote, bad = check_round(raw, FeedSpec(spec.asset, chain.id, spec.address, spec.decimals, spec.heartbeat_s),
                                 judge_now)
        findings.extend(bad)
        if quote is not None:
            prices.append(quote)

    snaps: list[AccountSnapshot] = []
    for w in wallets:
        balances: list[Balance] = []
        wallet_findings: list[Finding] = list(findings) if stale_chain else []
        native = reads.values.get((w.address, None))
        if native is not None:
            balances.append(Balance(w.id, NATIVE_ASSET, Decimal(native).scaleb(-18), observed, f"evm:{chain.id}",
                                    base_units=native, decimals=18))
        for t in tokens:
            units = reads.values.get((w.address, t.address))
            if units is None:
                wallet_findings.append(Finding(FindingCode.VENUE_BAD_RESPONSE, Severity.HIGH, w.id,
                                               f"{t.symbol} balance of {w.address} unreadable on {chain.id}",
                                               venue="evm", chain=chain.id, client_id=w.client))
                continue
            if units:
                balances.append(Balance(w.id, t.asset, Decimal(units).scaleb(-t.decimals), observed,
                                        f"evm:{chain.id}:{t.symbol}", base_units=units, decimals=t.decimals))
        snaps.append(AccountSnapshot(wallet_account(w), observed, ok=not wallet_findings,
                                     balances=tuple(balances), findings=tuple(wallet_findings)))
    return EvmCollection(tuple(snaps), tuple(prices), tuple(findings), reader.round_trips)


def _blind_chain(finding: Finding, wallets: list[WalletConfig], observed: datetime, round_trips: int) -> EvmCollection:
    """Every wallet on an unreadable chain is a blind spot (no balances, never zeros); no prices."""
    snaps = tuple(AccountSnapshot(wallet_account(w), observed, ok=False, findings=(finding,)) for w in wallets)
    return EvmCollection(snaps, (), (finding,), round_trips)


async def collect_evm(cfg: PrimeguardConfig, now: datetime | None = None) -> EvmCollection:
    """Read every chain concurrently and merge."""
    parts = await asyncio.gather(*(collect_chain(cfg, c, now) for c in cfg.chains))
    return EvmCollection(
        tuple(s for p in parts for s in p.snapshots),
        tuple(q for p in parts for q in p.prices),
        tuple(f for p in parts for f in p.findings),
        sum(p.round_trips for p in parts),
    )


async def chain_batch_modes(cfg: PrimeguardConfig) -> list[dict[str, str | int | None]]:
    """Per configured chain: the batched-read mode its reads use (detected now if not yet in this
    process) and why; ``error`` instead when the node could not be asked or serves another chain.
    Reads only."""

    async def one(chain: ChainConfig) -> dict[str, str | int | None]:
        row: dict[str, str | int | None] = {"chain": chain.id, "chain_id": chain.chain_id,
                                            "requested": chain.batch_mode}
        async with ChainReader(chain.id, chain.rpc_url, batch_reader=chain.batch_reader,
                               batch_mode=chain.batch_mode, call_gas_cap=chain.call_gas_cap,
                               timeout_s=chain.timeout_s, expected_chain_id=chain.chain_id) as reader:
            try:
                choice = await reader.batch_choice()
            except VenueError as exc:
                return {**row, "mode": None, "reason": None, "address": None, "error": str(exc)}
        return {**row, "mode": choice.mode, "reason": choice.reason, "address": choice.address, "error": None}

    return list(await asyncio.gather(*(one(c) for c in cfg.chains)))
