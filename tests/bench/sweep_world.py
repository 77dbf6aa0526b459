"""A mixed prime-brokerage world for the sweep benchmarks, simulated in-process.

Per client: a Binance, an OKX and a Bybit sub-account (a monitor key and a client trading key on
each), a dYdX address, an EOA on each of two chains, a Safe on the first chain, a collateral vault
on the second; USDC and ETH balances; 50 perp positions over 10 underlyings (a long leg in 3 fills
on one venue, a short leg in 2 on another); a USDC loan at 8 %. Prices: oracle feeds on both
chains, CEX marks and dYdX oracle prices. The policy is the shipped one with a 10,000-entry
allowlist appended.

What is simulated: the venues' answers. :func:`build` returns the config (every account as a
``primeguard run`` config lists it) and the :class:`Observation` the collectors would return for
that world, so a sweep's own work (evaluate with stress, policy, alerts, persist) is timed apart
from the time spent waiting on venues, which this bench excludes by construction.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from primeguard.config.schema import PrimeguardConfig
from primeguard.domain.model import (
    Account,
    Balance,
    Capability,
    Credential,
    Holder,
    Position,
    PriceQuote,
    PriceSourceKind,
    VenueKind,
)
from primeguard.domain.observation import AccountSnapshot, Observation

D = Decimal
REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CHAINS = ("ethereum", "arbitrum")
UNDERLYINGS = ("BTC", "ETH", "SOL", "DOGE", "PEPE", "WIF", "AVAX", "LINK", "ARB", "OP", "SUI", "APT")
MIDS = {"BTC": D(90000), "ETH": D(3000), "SOL": D(150), "DOGE": D("0.2"), "PEPE": D("0.00001"),
        "WIF": D("2.5"), "AVAX": D(30), "LINK": D(15), "ARB": D("0.8"), "OP": D("1.8"), "SUI": D("3.5"),
        "APT": D(9), "USDC": D(1)}
CEX = (("binance", VenueKind.BINANCE), ("okx", VenueKind.OKX), ("bybit", VenueKind.BYBIT))
ALLOWLIST_ENTRIES = 10_000


def address(n: int) -> str:
    """A deterministic checksummed address."""
    from eth_utils import to_checksum_address

    return to_checksum_address(f"0x{n:040x}")


def dydx_address(n: int) -> str:
    """A deterministic string shaped like a dYdX bech32 address."""
    alphabet = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    body = "".join(alphabet[(n >> (5 * i)) % 32] for i in range(38))
    return f"dydx1{body}"


@dataclass
class World:
    cfg: PrimeguardConfig
    obs: Observation
    config_dir: Path
    clients: int
    positions: int


def policies_with_allowlist(target: Path, n_clients: int, entries: int = ALLOWLIST_ENTRIES) -> Path:
    """The shipped policies with the bench clients declared (standard tier) and ``entries`` allowlist
    entries appended (spread over the clients)."""
    shutil.copytree(REPO / "policies", target)
    for test in target.glob("*_test.yaml"):
        test.unlink()
    lines = []
    for i in range(entries):
        lines.append(f"""  - id: bench-{i:05d}
    client: c{i % n_clients:05d}
    venue: evm
    chain: ethereum
    asset: USDC
    address: "{address(0x10_0000 + i)}"
    label: bench destination {i}
    added_by: carol
    added_at: 2026-01-01T00:00:00Z
    expires_at: 2099-01-01T00:00:00Z
""")
    risk = target / "risk.yaml"
    risk.write_text(risk.read_text().rstrip("\n") + "\n" + "".join(
        f"  - {{id: c{c:05d}, name: Client {c}, tier: standard, since: 2026-01-01T00:00:00Z}}\n"
        for c in range(n_clients)))
    allow = target / "allowlist.yaml"
    allow.write_text(allow.read_text().rstrip("\n") + "\n" + "".join(lines))
    return target


def build(n: int, workdir: Path, *, seed: int = 7) -> World:
    """The config and simulated observation of an ``n``-client world (see the module doc)."""
    rnd = random.Random(seed)
    policy_dir = policies_with_allowlist(workdir / "policies", n)
    secret = {"value": "bench-secret-not-real"}
    chains = [{"id": c, "chain_id": 1 + i, "rpc_url": f"http://127.0.0.1:{9 + i}", "max_block_age_s": None}
              for i, c in enumerate(CHAINS)]
    feeds, tokens, quotes = [], [], []
    for ci, chain in enumerate(CHAINS):
        tokens.append({"symbol": "USDC", "chain": chain, "address": address(0xC0 + ci), "decimals": 6,
                       "asset": "USDC"})
        for ai, asset in enumerate(("ETH", "USDC", "BTC")):
            addr = address(0xF000 + 16 * ci + ai)
            feeds.append({"asset": asset, "chain": chain, "address": addr, "decimals": 8,
                          "heartbeat_s": 86400 if asset == "USDC" else 3600})
            quotes.append(PriceQuote(asset, MIDS[asset], PriceSourceKind.ORACLE, f"{chain}:{addr}",
                                     NOW - timedelta(seconds=30), NOW))
    for u in UNDERLYINGS:
        for venue, _ in CEX:
            quotes.append(PriceQuote(u, MIDS[u] * D("1.001"), PriceSourceKind.VENUE_MARK, f"{venue}:{u}-PERP",
                                     NOW - timedelta(seconds=2), NOW))
        quotes.append(PriceQuote(u, MIDS[u], PriceSourceKind.DYDX_ORACLE, f"dydx:{u}-USD",
                                 NOW - timedelta(seconds=5), NOW))
    clients, wallets, vaults, cex_accounts, dydx_accounts = [], [], [], [], []
    snaps: list[AccountSnapshot] = []
    positions_total = 0
    for c in range(n):
        cid = f"c{c:05d}"
        accounts: list[Account] = []
        for venue, kind in CEX:
            aid = f"{cid}-{venue}"
            cex_accounts.append({"id": aid, "client": cid, "venue": venue, "sub_account": f"{cid}@{venue}",
                                 "monitor": "mon", "credentials": [
                                     {"id": "mon", "holder": "monitor", "api_key": secret, "secret": secret,
                                      **({"passphrase": secret} if venue == "okx" else {})}]})
            accounts.append(Account(aid, cid, kind, address=f"{cid}@{venue}"))
        daddr = dydx_address(c + 1)
        dydx_accounts.append({"id": f"{cid}-dydx", "client": cid, "address": daddr,
                              "indexer_url": "http://127.0.0.1:7"})
        accounts.append(Account(f"{cid}-dydx", cid, VenueKind.DYDX, address=daddr))
        evm: list[Account] = []
        for ci, chain in enumerate(CHAINS):
            wid = f"{cid}-{chain}-eoa"
            addr = address(0x1_0000_0000 + 8 * c + ci)
            wallets.append({"id": wid, "client": cid, "chain": chain, "address": addr})
            evm.append(Account(wid, cid, VenueKind.EVM, chain=chain, address=addr))
        safe = address(0x2_0000_0000 + c)
        wallets.append({"id": f"{cid}-safe", "client": cid, "chain": CHAINS[0], "address": safe, "kind": "safe"})
        evm.append(Account(f"{cid}-safe", cid, VenueKind.EVM, chain=CHAINS[0], address=safe))
        vault = address(0x3_0000_0000 + c)
        vaults.append({"id": f"{cid}-vault", "client": cid, "chain": CHAINS[1], "address": vault})
        evm.append(Account(f"{cid}-vault", cid, VenueKind.EVM, chain=CHAINS[1], address=vault))
        balances: dict[str, list[Balance]] = {a.id: [] for a in accounts + evm}
        for a in accounts:
            balances[a.id].append(Balance(a.id, "USDC", D(rnd.randint(200_000, 2_000_000)), NOW, "bench"))
        for a in evm:
            balances[a.id].append(Balance(a.id, "ETH", D(rnd.randint(0, 20_000)) / 100, NOW, "bench"))
            balances[a.id].append(Balance(a.id, "USDC", D(rnd.randint(0, 500_000)), NOW, "bench"))
        equity = sum((b.quantity for bs in balances.values() for b in bs if b.asset == "USDC"), D(0))
        pos: dict[str, list[Position]] = {a.id: [] for a in accounts}
        for u in rnd.sample(UNDERLYINGS, 10):
            mid = MIDS[u]
            qty = (equity * D("0.05") / mid).quantize(D("0.01")) or D("0.01")
            long_a, short_a = rnd.sample(accounts, 2)
            legs = [(long_a, qty / 3), (long_a, qty / 3), (long_a, qty - 2 * (qty / 3)),
                    (short_a, -qty / 2), (short_a, -(qty - qty / 2))]
            for acct, size in legs:
                size = size.quantize(D("0.0001"))
                entry = (mid * D(rnd.randint(950, 1050)) / 1000).quantize(D("0.00000001"))
                liq = mid * (D("0.6") if size > 0 else D("1.4"))
                pos[acct.id].append(Position(acct.id, acct.venue, f"{u}-PERP", u, size, entry, mid, NOW, "bench",
                                             liquidation_price=liq))
                positions_total += 1
        for a in accounts:
            creds: tuple[Credential, ...] = ()
            if a.venue is not VenueKind.DYDX:
                creds = (Credential(f"{a.id}:mon", a.id, a.venue, "cex_api_key", Holder.MONITOR,
                                    frozenset({Capability.READ}), ip_restricted=True),
                         Credential(f"{a.id}:client", a.id, a.venue, "cex_api_key", Holder.CLIENT,
                                    frozenset({Capability.READ, Capability.TRADE_FUTURES}), ip_restricted=True))
            snaps.append(AccountSnapshot(a, NOW, True, tuple(balances[a.id]), tuple(pos[a.id]), creds))
        for a in evm:
            snaps.append(AccountSnapshot(a, NOW, True, tuple(balances[a.id])))
        principal = (equity * D(rnd.randint(20, 45)) / 100).quantize(D(1))
        clients.append({"id": cid, "name": cid, "tier": "standard",
                        "loan": {"principal": str(principal), "annual_rate": "0.08",
                                 "start": (NOW - timedelta(days=30)).isoformat()}})
    cfg = PrimeguardConfig.model_validate({
        "version": 1, "policy_dir": str(policy_dir), "store": {"url": f"sqlite:///{workdir / 'sweep.db'}"},
        "chains": chains, "tokens": tokens, "feeds": feeds, "clients": clients, "wallets": wallets,
        "vaults": vaults, "cex_accounts": cex_accounts, "dydx_accounts": dydx_accounts,
    })
    obs = Observation(NOW, tuple(snaps), tuple(quotes))
    return World(cfg, obs, workdir, n, positions_total)


def config_dict_size(world: World) -> dict[str, Any]:
    """Counts for the bench line: what the world holds."""
    cfg = world.cfg
    return {"clients": world.clients, "positions": world.positions, "accounts": len(world.obs.snapshots),
            "cex_accounts": len(cfg.cex_accounts), "dydx_accounts": len(cfg.dydx_accounts),
            "wallets": len(cfg.wallets), "vaults": len(cfg.vaults), "chains": len(cfg.chains),
            "allowlist_entries": ALLOWLIST_ENTRIES}
