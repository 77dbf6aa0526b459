"""Drift between the destinations approved here and where they are listed outside: each vault's
on-chain allowlist and each CEX account's withdrawal address book.

- on a vault (active or in its timelock) but approved nowhere here → ``vault_destination_unknown``
  (critical; high when the policy entry only expired);
- in a venue's address book but not in the policy for that client, venue and asset →
  ``venue_whitelist_unknown`` (high);
- approved but absent (or still in the vault's timelock) where it should be usable →
  ``destination_missing`` (warning);
- a vault or address book that could not be read → ``allowlist_unreadable`` (a blind spot: drift
  there is unknown, never "none").

"Approved" is the policy in force (entries not expired) minus what compliance removed through the
agent (``vault_destinations`` rows in state ``removed``). A vault's candidates are every address
ever proposed on it (its ``DestinationProposed`` logs, read incrementally), the policy's targets and
the agent's own rows; each is read with ``activatesAt`` (the allowlist is a mapping, not a list).

The comparison (:func:`drift_findings`) is pure; :func:`read_vault` and :class:`ProposalLog` read
the chain. The guardian runs them on a slower schedule than sweeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from web3 import Web3

from primeguard.config.schema import PrimeguardConfig, VaultConfig
from primeguard.custody.destinations import OnChain, targets
from primeguard.custody.vault import NATIVE, vault_abi
from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import VenueKind
from primeguard.domain.observation import AccountSnapshot, WhitelistStatus

DRIFT_VENUE = "allowlist"
"""The ``venue`` of every finding this module raises (one of ``JOB_VENUES``: the sweep leaves them open)."""

PROPOSED_TOPIC = Web3.keccak(text="DestinationProposed(address,address,uint64,address)").hex()
LOG_CHUNK = 10_000  # blocks per eth_getLogs request
REORG_MARGIN = 12  # blocks read again on the next run


Pair = tuple[str, str]  # (asset address, destination), both lower-case


def _pair(asset: str, address: str) -> Pair:
    return asset.lower(), address.lower()


class ProposalLog:
    """Every (asset, destination) ever proposed on each vault, from its ``DestinationProposed``
    logs; each call reads only the blocks since the last one (less a reorg margin)."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self._pairs: dict[str, set[Pair]] = {}

    def proposed(self, w3: Any, vault: VaultConfig) -> set[Pair]:
        """The pairs proposed on ``vault`` up to the latest block. Raises whatever the node raises
        (the caller turns it into a blind spot); nothing is remembered from a failed read."""
        head = int(w3.eth.block_number)
        start = self._next.get(vault.id, 0)
        found: set[Pair] = set()
        for lo in range(start, head + 1, LOG_CHUNK):
            hi = min(lo + LOG_CHUNK - 1, head)
            for log in w3.eth.get_logs({"address": Web3.to_checksum_address(vault.address), "fromBlock": lo,
                                        "toBlock": hi, "topics": [PROPOSED_TOPIC]}):
                topics = log["topics"]
                if len(topics) >= 3:
                    found.add(("0x" + bytes(topics[1])[-20:].hex(), "0x" + bytes(topics[2])[-20:].hex()))
        pairs = self._pairs.setdefault(vault.id, set())
        pairs |= found
        self._next[vault.id] = max(0, head + 1 - REORG_MARGIN)
        return set(pairs)


@dataclass(frozen=True)
class VaultListing:
    """What one vault lists: each candidate pair's on-chain state, or ``error`` (unreadable)."""

    vault: VaultConfig
    states: dict[Pair, OnChain] = field(default_factory=dict)
    error: str | None = None


def read_vault(cfg: PrimeguardConfig, vault: VaultConfig, candidates: Iterable[Pair], log: ProposalLog
               ) -> VaultListing:
    """``activatesAt`` of every candidate and of every pair ever proposed on the vault, against the
    latest block's time. Any failed read makes the whole vault unreadable (never a partial list)."""
    chain = next((c for c in cfg.chains if c.id == vault.chain), None)
    if chain is None:
        return VaultListing(vault, error=f"chain {vault.chain} is not configured")
    try:
        w3 = Web3(Web3.HTTPProvider(chain.rpc_url, request_kwargs={"timeout": chain.timeout_s}))
        pairs = set(candidates) | log.proposed(w3, vault)
        contract = w3.eth.contract(address=Web3.to_checksum_address(vault.address), abi=vault_abi())
        now = int(w3.eth.get_block("latest")["timestamp"])
        states: dict[Pair, OnChain] = {}
        for asset, dest in sorted(pairs):
            at = int(contract.functions.activatesAt(Web3.to_checksum_address(asset),
                                                    Web3.to_checksum_address(dest)).call())
            if at == 0:
                states[(asset, dest)] = OnChain("absent")
            else:
                states[(asset, dest)] = OnChain("active" if at <= now else "pending", datetime.fromtimestamp(at, UTC))
    except Exception as exc:
        return VaultListing(vault, error=f"vault read failed ({type(exc).__name__})")
    return VaultListing(vault, states)


def vault_candidates(cfg: PrimeguardConfig, policy: Any, rows: Sequence[Any], vault: VaultConfig) -> set[Pair]:
    """The pairs the policy (every entry, expired too) and the agent's rows put on ``vault``."""
    out = {_pair(t.asset, t.address) for t in targets(cfg, policy) if t.vault.id == vault.id}
    out |= {_pair(r.asset, r.address) for r in rows if r.vault_id == vault.id}
    return out


def _symbols(cfg: PrimeguardConfig, chain: str) -> dict[str, str]:
    out = {NATIVE.lower(): "ETH"}
    out.update({t.address.lower(): t.symbol for t in cfg.tokens_on(chain)})
    return out


def _finding(code: FindingCode, severity: Severity, subject: str, message: str, *, source: str, client: str,
             chain: str | None = None, **details: Any) -> Finding:
    return Finding(code, severity, subject, message, venue=DRIFT_VENUE, chain=chain, client_id=client,
                   details={"source": source, **details})


def _book(snap: AccountSnapshot | None, unlistable: frozenset[str]) -> WhitelistStatus | None:
    """The address book a snapshot read, or ``None`` when it says nothing: the account was not read,
    or its venue has no listing endpoint (``unlistable``). A listable venue's ``enabled=None`` is an
    empty book (Binance cannot tell the switch from an empty list): what it lists is known."""
    if snap is None or not snap.ok or snap.whitelist is None:
        return None
    if snap.whitelist.enabled is None and snap.account.venue.value in unlistable:
        return None
    return snap.whitelist


def sources_read(listings: Sequence[VaultListing], snapshots: Sequence[AccountSnapshot], *, policy: Any,
                 unlistable: frozenset[str] = frozenset()) -> set[str]:
    """The sources (vault ids, CEX account ids, ``policy``) this run actually read: only their
    earlier drift findings may be closed."""
    if policy is None:
        return set()
    out = {x.vault.id for x in listings if x.error is None} | {"policy"}
    return out | {x.account.id for x in snapshots if _book(x, unlistable) is not None}


def drift_findings(cfg: PrimeguardConfig, policy: Any, rows: Sequence[Any], vaults: Sequence[VaultListing],
                   snapshots: Sequence[AccountSnapshot] | None, *, now: datetime,
                   unlistable: frozenset[str] = frozenset()) -> list[Finding]:
    """Every drift finding (see the module docstring), pure. ``rows``: the agent's vault
    destination rows; ``vaults``: what each vault lists; ``snapshots``: the CEX accounts' snapshots
    (``None``: not read); ``unlistable``: CEX venues without an address-book endpoint. Each
    finding's ``details["source"]`` names the vault or account it is about (the caller closes old
    findings only for :func:`sources_read`). ``policy`` ``None`` is one blind-spot finding: nothing
    can be judged."""
    if policy is None:
        return [_finding(FindingCode.ALLOWLIST_UNREADABLE, Severity.HIGH, "policy",
                         "no policy in force: destination drift cannot be judged", source="policy", client="")]
    out: list[Finding] = []
    removed = {(r.vault_id, *_pair(r.asset, r.address)) for r in rows if r.state == "removed"}
    for listing in vaults:
        out += _vault_drift(cfg, policy, listing, removed, now)
    out += _venue_drift(cfg, policy, snapshots, now, unlistable)
    return out


def _vault_drift(cfg: PrimeguardConfig, policy: Any, listing: VaultListing, removed: set[tuple[str, str, str]],
                 now: datetime) -> list[Finding]:
    v = listing.vault
    if listing.error is not None:
        return [_finding(FindingCode.ALLOWLIST_UNREADABLE, Severity.HIGH, v.id,
                         f"vault {v.id}'s allowlist could not be read ({listing.error}): drift there is unknown",
                         source=v.id, client=v.client, chain=v.chain)]
    out: list[Finding] = []
    symbols = _symbols(cfg, v.chain)
    entries: dict[Pair, Any] = {}
    expired: set[Pair] = set()
    for t in targets(cfg, policy):
        if t.vault.id != v.id:
            continue
        e = policy.allowlist.get((t.client, VenueKind.EVM, v.chain, t.asset_symbol, t.address))
        p = _pair(t.asset, t.address)
        if e is not None and e.expires_at <= now:
            expired.add(p)
        elif e is not None:
            entries[p] = e
    for p, seen in sorted(listing.states.items()):
        asset, dest = p
        sym = symbols.get(asset, asset)
        subject = f"{v.id}:{sym}:{dest}"
        eta = seen.eta.isoformat() if seen.eta else None
        gone = (v.id, *p) in removed
        if seen.state in ("active", "pending") and (p not in entries or gone):
            why = ("removed by compliance here, listed again on chain" if gone else
                   "its policy entry expired" if p in expired else "no approved policy entry names it")
            when = "usable now" if seen.state == "active" else f"in its timelock until {eta}"
            out.append(_finding(
                FindingCode.VAULT_DESTINATION_UNKNOWN,
                Severity.HIGH if p in expired and not gone else Severity.CRITICAL, subject,
                f"vault {v.id} lists {dest} for {sym} ({when}) but {why}: remove it "
                f"(primeguard allowlist remove {dest}) or approve it through a policy version",
                source=v.id, client=v.client, chain=v.chain, vault=v.id, asset=sym, address=dest,
                onchain=seen.state, eta=eta))
        elif p in entries and not gone:
            e = entries[p]
            usable = e.active_from <= now
            if seen.state == "absent" or (seen.state == "pending" and usable):
                state = "absent" if seen.state == "absent" else f"in its timelock until {eta}"
                out.append(_finding(
                    FindingCode.DESTINATION_MISSING, Severity.WARNING, subject,
                    f"policy entry {e.id} allows {dest} for {sym} from vault {v.id}, but the vault lists it as "
                    f"{state}: withdrawals to it are denied" + (" (primeguard allowlist sync --apply proposes it)"
                                                                 if seen.state == "absent" else ""),
                    source=v.id, client=v.client, chain=v.chain, entry=e.id, vault=v.id, asset=sym, address=dest,
                    onchain=seen.state, eta=eta))
    return out


def _venue_drift(cfg: PrimeguardConfig, policy: Any, snapshots: Sequence[AccountSnapshot] | None, now: datetime,
                 unlistable: frozenset[str]) -> list[Finding]:
    out: list[Finding] = []
    by_id = {s.account.id: s for s in snapshots or ()}
    for acct in cfg.cex_accounts:
        snap = by_id.get(acct.id)
        wl = _book(snap, unlistable)
        if wl is None:
            by_design = snap is not None and snap.ok and acct.venue in unlistable
            why = ("the venue has no endpoint listing it" if by_design else "the account was not read"
                   if snap is None or not snap.ok else "the address book was not read")
            out.append(_finding(FindingCode.ALLOWLIST_UNREADABLE, Severity.WARNING if by_design else Severity.HIGH,
                                acct.id, f"{acct.venue} account {acct.id}'s withdrawal address book cannot be checked "
                                f"({why}): drift there is unknown", source=acct.id, client=acct.client))
            continue
        approved = [e for e in policy.allowlist.values()
                    if e.client == acct.client and e.venue.value == acct.venue and e.expires_at > now]
        keys = {(e.asset, e.address.lower()) for e in approved}
        listed = {(w.asset, w.address.lower()) for w in wl.entries}
        for w in wl.entries:
            if (w.asset, w.address.lower()) in keys:
                continue
            out.append(_finding(
                FindingCode.VENUE_WHITELIST_UNKNOWN, Severity.HIGH, f"{acct.id}:{w.asset}:{w.address.lower()}",
                f"{acct.venue} account {acct.id}'s address book lists {w.address} for {w.asset}"
                + (f" ({w.label})" if w.label else "") + " but no approved policy entry names it: remove it at the "
                "venue or approve it through a policy version",
                source=acct.id, client=acct.client, account=acct.id, asset=w.asset, address=w.address,
                network=w.network))
        for e in approved:
            if e.active_from > now or (e.asset, e.address.lower()) in listed:
                continue
            out.append(_finding(
                FindingCode.DESTINATION_MISSING, Severity.WARNING, f"{acct.id}:{e.asset}:{e.address.lower()}",
                f"policy entry {e.id} allows {e.address} for {e.asset} from {acct.venue} account {acct.id}, but "
                "the venue's address book does not list it: withdrawals to it are denied",
                source=acct.id, client=acct.client, entry=e.id, account=acct.id, asset=e.asset, address=e.address))
    return out


__all__ = ["DRIFT_VENUE", "PROPOSED_TOPIC", "ProposalLog", "VaultListing", "drift_findings", "read_vault",
           "sources_read", "vault_candidates"]
