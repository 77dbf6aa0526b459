"""A destination's life: proposed (a policy change) → approved by a second compliance user →
screened → proposed to each vault it concerns on chain → active after the vault's timelock →
removed (at once: on chain, for the agent, and proposed out of the policy).

Also the gate every withdrawal passes besides the policy (:class:`DestinationGate`): the
destination is screened (at request and again, never from the cache, at execute), and for a vault
withdrawal the vault's own allowlist is read: absent, removed, still in its timelock, or
unreadable all deny.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session
from web3 import Web3

from primeguard.config.schema import PrimeguardConfig, VaultConfig
from primeguard.custody.signer import KeystoreSigner
from primeguard.custody.vault import NATIVE, VaultExecutor, vault_abi
from primeguard.domain.decision import Decision, ReasonCode
from primeguard.domain.errors import (
    CustodyError,
    InputError,
    PolicyError,
    PrimeguardError,
    ScreeningError,
    ScreeningUnavailableError,
)
from primeguard.domain.identity import Actor
from primeguard.domain.model import VenueKind
from primeguard.domain.money import parse_address
from primeguard.policy.inputs import WithdrawalRequest
from primeguard.policy.versions import VersionStore
from primeguard.safeyaml import dump_yaml, load_checked
from primeguard.screening.core import Screening, merge
from primeguard.screening.service import Screener, screening_chain
from primeguard.store import audit
from primeguard.store import destinations as dest_repo
from primeguard.store.db import Store

ALLOWLIST_KIND = "withdrawal_allowlist"


@dataclass(frozen=True, slots=True)
class Target:
    """One (vault, asset, destination) an allowlist entry puts on chain."""

    entry_id: str
    client: str
    vault: VaultConfig
    asset_symbol: str
    asset: str  # token address or NATIVE
    address: str


@dataclass(frozen=True, slots=True)
class OnChain:
    """A vault's view of a destination: ``absent``, ``pending`` (with ``eta``), ``active``, or
    ``unreadable``."""

    state: str
    eta: datetime | None = None
    detail: str = ""


@dataclass
class Step:
    """What :meth:`Destinations.push` did (or would do, in a dry run) for one target."""

    target: Target
    action: str  # proposed | would_propose | pending | active | refused | failed | unchanged
    onchain: OnChain
    detail: str = ""
    tx_hash: str | None = None

    def json(self) -> dict[str, Any]:
        return {"entry": self.target.entry_id, "vault": self.target.vault.id, "asset": self.target.asset_symbol,
                "address": self.target.address, "action": self.action, "onchain": self.onchain.state,
                "eta": self.onchain.eta.isoformat() if self.onchain.eta else None, "detail": self.detail,
                "tx_hash": self.tx_hash}


def asset_address(cfg: PrimeguardConfig, chain: str, symbol: str) -> str | None:
    """The vault-side asset of ``symbol`` on ``chain`` (NATIVE for ETH); None if not configured."""
    if symbol == "ETH":
        return NATIVE
    return next((t.address for t in cfg.tokens_on(chain) if t.symbol == symbol), None)


def targets(cfg: PrimeguardConfig, policy: Any) -> list[Target]:
    """Every (vault, asset, destination) the policy's ``evm`` allowlist entries call for."""
    out: list[Target] = []
    if policy is None:
        return out
    for e in policy.allowlist.values():
        if e.venue is not VenueKind.EVM:
            continue
        for v in cfg.vaults:
            if v.client == e.client and v.chain == e.chain:
                addr = asset_address(cfg, v.chain, e.asset)
                if addr is not None:
                    out.append(Target(e.id, e.client, v, e.asset, addr, e.address))
    return out


def read_onchain(cfg: PrimeguardConfig, vault: VaultConfig, asset: str, address: str) -> OnChain:
    """``activatesAt`` on the vault against its latest block's time."""
    chain = next((c for c in cfg.chains if c.id == vault.chain), None)
    if chain is None:
        return OnChain("unreadable", detail=f"chain {vault.chain} not configured")
    try:
        w3 = Web3(Web3.HTTPProvider(chain.rpc_url, request_kwargs={"timeout": chain.timeout_s}))
        contract = w3.eth.contract(address=Web3.to_checksum_address(vault.address), abi=vault_abi())
        at = int(contract.functions.activatesAt(Web3.to_checksum_address(asset),
                                                Web3.to_checksum_address(address)).call())
        now = int(w3.eth.get_block("latest")["timestamp"])
    except Exception as exc:
        return OnChain("unreadable", detail=f"vault read failed ({type(exc).__name__})")
    if at == 0:
        return OnChain("absent")
    eta = datetime.fromtimestamp(at, UTC)
    return OnChain("active" if at <= now else "pending", eta)


class DestinationGate:
    """Checks a withdrawal's destination beyond the policy: screening, and the vault's allowlist."""

    def __init__(self, cfg: PrimeguardConfig, screener: Screener | None = None) -> None:
        self.cfg = cfg
        self.screener = screener or Screener(cfg)

    def apply(self, session: Session, req: WithdrawalRequest, decision: Decision, *, now: datetime,
              fresh: bool, actor: str) -> Decision:
        """``decision``, or a denial adding ``sanctioned`` / ``screening_unavailable`` /
        ``not_allowlisted`` / ``allowlist_not_yet_active`` / ``blind_spot`` to its reasons."""
        chain = screening_chain(self.cfg, req.chain)
        _, deny = self.screener.decide(session, chain, req.destination, now=now, fresh=fresh, actor=actor,
                                       client_id=req.client_id)
        decision = merge(decision, deny)
        vault = next((v for v in self.cfg.vaults if v.id == req.account_id), None)
        if vault is not None:
            decision = merge(decision, self._vault_check(session, vault, req))
        return decision

    def _vault_check(self, session: Session, vault: VaultConfig, req: WithdrawalRequest) -> Decision | None:
        asset = asset_address(self.cfg, vault.chain, req.asset)
        if asset is None:
            return Decision.deny(ReasonCode.ASSET_UNKNOWN, f"{req.asset} is not configured on {vault.chain}",
                                 rule_ids=("vault",))
        row = dest_repo.get(session, vault.id, asset, req.destination)
        if row is not None and row.state == "removed":
            return Decision.deny(ReasonCode.NOT_ALLOWLISTED, f"{req.destination} was removed from vault {vault.id}'s "
                                 f"allowlist at {row.updated_at.isoformat()}", rule_ids=("vault",))
        seen = read_onchain(self.cfg, vault, asset, req.destination)
        if seen.state == "absent":
            return Decision.deny(ReasonCode.NOT_ALLOWLISTED, f"{req.destination} is not on vault {vault.id}'s "
                                 f"on-chain allowlist for {req.asset}", rule_ids=("vault",))
        if seen.state == "pending":
            assert seen.eta is not None
            return Decision.deny(ReasonCode.ALLOWLIST_NOT_YET_ACTIVE, f"{req.destination} is in vault {vault.id}'s "
                                 f"timelock until {seen.eta.isoformat()}", rule_ids=("vault",))
        if seen.state == "unreadable":
            return Decision.deny(ReasonCode.BLIND_SPOT, f"vault {vault.id}'s allowlist could not be read "
                                 f"({seen.detail}): failing closed", rule_ids=("vault",))
        return None


# --- policy files --------------------------------------------------------------------------------


def _load(text: str) -> Any:
    """The hardened reader (no anchors, aliases, bombs): policy files are user input."""
    return load_checked(text, yaml.SafeLoader)


def _allowlist_file(files: Mapping[str, str]) -> str:
    for name in sorted(files):
        data = _load(files[name])
        if isinstance(data, dict) and data.get("kind") == ALLOWLIST_KIND:
            return name
    raise PolicyError("the policy has no withdrawal_allowlist file to add destinations to")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _entries(files: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Every withdrawal-allowlist entry of ``files`` by id, as plain data (times as ISO text)."""
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(files):
        data = _load(files[name])
        if isinstance(data, dict) and data.get("kind") == ALLOWLIST_KIND:
            for e in data.get("entries") or []:
                if isinstance(e, dict):
                    out[str(e.get("id"))] = _plain(e)
    return out


def with_entry(files: Mapping[str, str], entry: dict[str, Any]) -> dict[str, str]:
    """The policy files with ``entry`` appended to the (first) withdrawal allowlist."""
    name = _allowlist_file(files)
    data = _plain(_load(files[name]))
    data["entries"] = [*(data.get("entries") or []), entry]
    return {**files, name: dump_yaml(data)}


def without_address(files: Mapping[str, str], address: str, client: str | None) -> tuple[dict[str, str], list[str]]:
    """The policy files with every allowlist entry for ``address`` (of ``client``, if given)
    dropped, and the dropped entries' ids."""
    out, dropped = dict(files), []
    for name in sorted(files):
        data = _load(files[name])
        if not (isinstance(data, dict) and data.get("kind") == ALLOWLIST_KIND):
            continue
        data = _plain(data)
        keep = []
        for e in data.get("entries") or []:
            same = str(e.get("address", "")).lower() == address.lower() and client in (None, e.get("client"))
            if same:
                dropped.append(str(e.get("id")))
            else:
                keep.append(e)
        if len(keep) != len(data.get("entries") or []):
            data["entries"] = keep
            out[name] = dump_yaml(data)
    return out, dropped


# --- the lifecycle -------------------------------------------------------------------------------


@dataclass
class RemoveResult:
    address: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    policy_version: str | None = None
    dropped_entries: list[str] = field(default_factory=list)
    note: str = ""


class Destinations:
    """Allowlist changes from request to chain (see the module docstring)."""

    def __init__(self, cfg: PrimeguardConfig, store: Store, *, config_dir: Path, versions: VersionStore,
                 policy: Callable[[], Any], screener: Screener | None = None) -> None:
        """``versions``: where policy versions are kept (the app passes the store's); ``policy``:
        returns the policy in force now (``None`` fails closed). Both come from the app layer."""
        self.cfg = cfg
        self.store = store
        self.config_dir = config_dir
        self.versions = versions
        self._policy = policy
        self.screener = screener or Screener(cfg, policy=policy)
        self._signer: KeystoreSigner | None = None

    # policy ----------------------------------------------------------------------------------

    def current_files(self) -> dict[str, str]:
        """The active policy version's files, else the config's policy directory."""
        from primeguard.policy.loader import read_policy_dir
        from primeguard.policy.versions import active_version

        active = active_version(self.versions)
        if active is not None:
            return dict(active.files)
        pdir = Path(self.cfg.policy_dir)
        return read_policy_dir(pdir if pdir.is_absolute() else self.config_dir / pdir)

    def policy(self) -> Any:
        """The policy in force now (``None``: no policy, everything fails closed)."""
        return self._policy()

    def propose(self, actor: Actor, *, client: str, venue: str, chain: str, assets: list[str], address: str,
                label: str, expires_at: datetime, entry_id: str | None = None, note: str = "",
                now: datetime | None = None) -> tuple[Any, Screening]:
        """Screen ``address`` and propose a policy version adding it (a compliance user; a second
        compliance user approves with :meth:`approve`).

        Raises:
            AuthorizationError: not a proposer role. InputError: a bad address, venue, asset, client,
            chain, label, id (or one already listed) or expiry (checked before anything is written).
            ScreeningError: the address is sanctioned (ScreeningUnavailableError: it could not be
            screened); nothing is proposed. PolicyError / PolicyApprovalError as
            :func:`~primeguard.policy.versions.propose`.
        """
        from pydantic import ValidationError

        from primeguard.domain.errors import AuthorizationError
        from primeguard.policy.schema import AllowlistEntrySpec
        from primeguard.policy.versions import PROPOSER_ROLES, propose

        now = now or datetime.now(UTC)
        if actor.role not in PROPOSER_ROLES:
            raise AuthorizationError(f"{actor.name} ({actor.role}) may not propose destinations")
        dest = parse_address(address, what="address")
        try:
            VenueKind(venue)
        except ValueError:
            raise InputError(f"unknown venue {venue!r}") from None
        if not assets:
            raise InputError("give at least one asset")
        if client not in {c.id for c in self.cfg.clients}:
            raise InputError(f"unknown client {client!r}")
        if venue == VenueKind.EVM.value and chain not in {c.id for c in self.cfg.chains}:
            raise InputError(f"chain {chain!r} is not configured (an evm destination needs a configured chain)")
        if expires_at.tzinfo is None or expires_at <= now:
            raise InputError("expires_at must be a time-zone aware time in the future")
        eid = entry_id or f"{client}-{venue}-{dest[2:10].lower()}"
        entry: dict[str, Any] = {"id": eid, "client": client, "venue": venue, "chain": chain,
                                 "address": dest, "label": label, "added_by": actor.name,
                                 "added_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                 "expires_at": expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        entry.update({"asset": assets[0]} if len(assets) == 1 else {"assets": list(assets)})
        try:  # the entry's own form, checked before anything is screened or written
            AllowlistEntrySpec.model_validate(entry)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InputError(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}") from None
        files = self.current_files()
        if eid in _entries(files):
            raise InputError(f"the allowlist already has an entry {eid!r}; give another --id")
        with self.store.session() as s:
            screening, deny = self.screener.decide(s, screening_chain(self.cfg, chain), dest, now=now, fresh=True,
                                                   actor=actor.name, client_id=client, what="allowlist addition")
            if deny is not None:
                audit.append(s, actor=actor.name, kind="destination.refused", subject=dest,
                             payload={"client": client, "reason": deny.reasons[0].value,
                                      "explanation": deny.explanation}, now=now)
        if deny is not None:
            unavailable = ReasonCode.SCREENING_UNAVAILABLE in deny.reasons
            raise (ScreeningUnavailableError if unavailable else ScreeningError)(deny.explanation)
        version = propose(self.versions, with_entry(files, entry), proposer=actor.name,
                          proposer_id=actor.user_id, role=actor.role, now=now,
                          note=note or f"allowlist: add {dest} for {client} ({venue}/{chain})")
        with self.store.session() as s:
            audit.append(s, actor=actor.name, kind="destination.proposed", subject=dest,
                         payload={"entry": entry, "policy_version": version.hash,
                                  "screening": screening.json(self.screener.advisory)}, now=now)
        return version, screening

    def proposals(self) -> list[dict[str, Any]]:
        """Proposed (not yet approved) policy versions that change the withdrawal allowlist, each
        with the entries it adds and the entry ids it drops relative to the files in force."""
        from primeguard.policy.versions import VersionState

        current = _entries(self.current_files())
        out = []
        for v in self.versions.all():
            if v.state is not VersionState.PROPOSED:
                continue
            try:
                mine = _entries(v.files)
            except PrimeguardError:
                continue  # a proposal that does not load cannot be approved either
            adds = [e for eid, e in mine.items() if current.get(eid) != e]
            drops = sorted(eid for eid in current if eid not in mine)
            if adds or drops:
                out.append({"version": v.hash, "proposed_by": v.proposed_by, "proposed_by_id": v.proposed_by_id,
                            "proposed_at": v.proposed_at.isoformat(), "note": v.note, "adds": adds, "drops": drops})
        return sorted(out, key=lambda d: str(d["proposed_at"]), reverse=True)

    def approve(self, actor: Actor, ref: str, *, now: datetime | None = None, push: bool = True
                ) -> tuple[Any, list[Step]]:
        """Approve a proposed version (a different compliance user), then :meth:`push` it to the
        vaults. Raises as :func:`~primeguard.policy.versions.approve`."""
        from primeguard.policy.versions import approve

        now = now or datetime.now(UTC)
        version = approve(self.versions, ref, approver=actor.name, approver_id=actor.user_id, role=actor.role,
                          now=now)
        return version, (self.push(actor=actor.name, now=now, dry_run=False, readd=True) if push else [])

    # chain -------------------------------------------------------------------------------------

    def _compliance(self) -> KeystoreSigner:
        if self._signer is None:
            c = self.cfg.custody
            if c is None or c.compliance_keystore is None:
                raise CustodyError("no custody.compliance_keystore in the config: destinations cannot be "
                                   "proposed to or removed from vaults")
            self._signer = KeystoreSigner.open(c.compliance_keystore, c.password, base_dir=self.config_dir)
        return self._signer

    def _send(self, vault: VaultConfig, fn_name: str, asset: str, address: str) -> str:
        """Sign with the compliance key, send, wait; the tx hash. Raises CustodyError on a revert."""
        chain = next(c for c in self.cfg.chains if c.id == vault.chain)
        gas = self.cfg.custody.gas_limit if self.cfg.custody else 250_000
        ex = VaultExecutor(chain.rpc_url, vault.address, self._compliance(), chain_id=chain.chain_id, gas_limit=gas)
        fn = getattr(ex.vault.functions, fn_name)(Web3.to_checksum_address(asset), Web3.to_checksum_address(address))
        signed = ex.signer.sign(ex._tx(fn, ex.next_nonce()))
        tx_hash = ex.broadcast(signed)
        timeout = self.cfg.custody.receipt_timeout_s if self.cfg.custody else 60
        out = ex.wait(tx_hash, timeout)
        if out.status != "confirmed":
            raise CustodyError(f"{fn_name} on vault {vault.id}: {out.status} ({out.error or 'no receipt'})")
        return tx_hash

    def push(self, *, actor: str, now: datetime | None = None, dry_run: bool = True, readd: bool = False
             ) -> list[Step]:
        """Bring every vault in line with the active policy's ``evm`` entries: propose what is absent
        (screened first), follow what is pending to active, record each step (audited).

        A destination the agent removed is not proposed again unless ``readd`` (an approval of a
        version that lists it again)."""
        now = now or datetime.now(UTC)
        steps: list[Step] = []
        for t in targets(self.cfg, self.policy()):
            seen = read_onchain(self.cfg, t.vault, t.asset, t.address)
            with self.store.session() as s:
                row = dest_repo.get(s, t.vault.id, t.asset, t.address)
                removed = row is not None and row.state == "removed"
                if seen.state == "unreadable":
                    steps.append(Step(t, "failed", seen, seen.detail))
                    continue
                if seen.state in ("pending", "active"):
                    if not dry_run and not (removed and not readd):
                        dest_repo.record(s, vault_id=t.vault.id, client_id=t.client, chain=t.vault.chain,
                                         asset=t.asset, address=t.address, state=seen.state, actor=actor,
                                         entry_id=t.entry_id, activates_at=seen.eta, now=now)
                    steps.append(Step(t, seen.state, seen))
                    continue
                if removed and not readd:
                    steps.append(Step(t, "unchanged", seen, "removed by compliance; approve a version listing "
                                                             "it again to re-add"))
                    continue
                _, deny = self.screener.decide(s, screening_chain(self.cfg, t.vault.chain), t.address, now=now,
                                               fresh=True, actor=actor, client_id=t.client,
                                               what="allowlist addition")
                if deny is not None:
                    steps.append(Step(t, "refused", seen, deny.explanation))
                    continue
            if dry_run:
                steps.append(Step(t, "would_propose", seen))
                continue
            try:
                tx_hash = self._send(t.vault, "proposeDestination", t.asset, t.address)
            except Exception as exc:
                with self.store.session() as s:
                    dest_repo.record(s, vault_id=t.vault.id, client_id=t.client, chain=t.vault.chain, asset=t.asset,
                                     address=t.address, state="failed", actor=actor, entry_id=t.entry_id,
                                     error=f"{type(exc).__name__}: {str(exc)[:300]}", now=now)
                steps.append(Step(t, "failed", seen, f"{type(exc).__name__}: {str(exc)[:300]}"))
                continue
            after = read_onchain(self.cfg, t.vault, t.asset, t.address)
            with self.store.session() as s:
                dest_repo.record(s, vault_id=t.vault.id, client_id=t.client, chain=t.vault.chain, asset=t.asset,
                                 address=t.address, state="active" if after.state == "active" else "pending",
                                 actor=actor, entry_id=t.entry_id, activates_at=after.eta, tx_hash=tx_hash, now=now)
            steps.append(Step(t, "proposed", after, tx_hash=tx_hash))
        return steps

    def remove(self, actor: Actor, address: str, *, client: str | None = None, now: datetime | None = None
               ) -> RemoveResult:
        """Remove ``address`` at once: from every vault that lists it (on chain), for the agent
        (withdrawals to it are denied from now), and propose a policy version without it (a
        second compliance user approves that clean-up; the removal does not wait for it).

        Raises:
            AuthorizationError: not compliance or admin; InputError: bad address.
        """
        from primeguard.policy.versions import PROPOSER_ROLES, propose

        if actor.role not in PROPOSER_ROLES:
            from primeguard.domain.errors import AuthorizationError

            raise AuthorizationError(f"{actor.name} ({actor.role}) may not remove destinations")
        now = now or datetime.now(UTC)
        dest = parse_address(address, what="address")
        result = RemoveResult(dest)
        pairs: dict[tuple[str, str], tuple[VaultConfig, str]] = {}
        for t in targets(self.cfg, self.policy()):
            if t.address == dest and (client is None or t.client == client):
                pairs[(t.vault.id, t.asset)] = (t.vault, t.asset)
        with self.store.session(readonly=True) as s:
            for row in dest_repo.all_rows(s):
                v = next((x for x in self.cfg.vaults if x.id == row.vault_id), None)
                if v is not None and row.address == dest and (client is None or v.client == client):
                    pairs[(v.id, row.asset)] = (v, row.asset)
        for vault, asset in pairs.values():
            seen = read_onchain(self.cfg, vault, asset, dest)
            tx_hash, error = None, None
            if seen.state in ("pending", "active", "unreadable"):
                try:
                    tx_hash = self._send(vault, "removeDestination", asset, dest)
                except Exception as exc:
                    error = f"{type(exc).__name__}: {str(exc)[:300]}"
            with self.store.session() as s:
                dest_repo.record(s, vault_id=vault.id, client_id=vault.client, chain=vault.chain, asset=asset,
                                 address=dest, state="removed", actor=actor.name, tx_hash=tx_hash, error=error,
                                 now=now)
            result.steps.append({"vault": vault.id, "asset": asset, "was": seen.state, "tx_hash": tx_hash,
                                 "error": error})
        files, dropped = without_address(self.current_files(), dest, client)
        result.dropped_entries = dropped
        if dropped:
            try:
                v = propose(self.versions, files, proposer=actor.name, proposer_id=actor.user_id, role=actor.role,
                            now=now, note=f"allowlist: remove {dest}")
                result.policy_version = v.hash
            except PolicyError as exc:
                result.note = f"the policy clean-up could not be proposed: {exc}"
        with self.store.session() as s:
            audit.append(s, actor=actor.name, kind="destination.removal", subject=dest,
                         payload={"client": client, "steps": result.steps, "dropped_entries": dropped,
                                  "policy_version": result.policy_version}, now=now)
        return result

    # status ------------------------------------------------------------------------------------

    def status(self, *, now: datetime | None = None, venues: bool = True) -> list[dict[str, Any]]:
        """Per destination: the policy's entries, each vault's on-chain state, each venue's
        address book (present / absent / unverifiable) and the screening verdict."""
        now = now or datetime.now(UTC)
        policy = self.policy()
        by_addr: dict[str, dict[str, Any]] = {}

        def slot(addr: str) -> dict[str, Any]:
            return by_addr.setdefault(addr, {"address": addr, "policy": [], "vaults": [], "venues": [],
                                             "screening": None})

        if policy is not None:
            for e in policy.allowlist.values():
                state = ("expired" if e.expires_at <= now else "pending" if e.active_from > now else "active")
                slot(e.address)["policy"].append({"entry": e.id, "client": e.client, "venue": e.venue.value,
                                                  "chain": e.chain, "asset": e.asset, "state": state,
                                                  "active_from": e.active_from.isoformat()})
        seen_pairs = set()
        for t in targets(self.cfg, policy):
            seen_pairs.add((t.vault.id, t.asset, t.address))
            oc = read_onchain(self.cfg, t.vault, t.asset, t.address)
            slot(t.address)["vaults"].append({"vault": t.vault.id, "asset": t.asset_symbol, "state": oc.state,
                                              "eta": oc.eta.isoformat() if oc.eta else None})
        with self.store.session(readonly=True) as s:
            rows = dest_repo.all_rows(s)
        for r in rows:
            if (r.vault_id, r.asset, r.address) in seen_pairs:
                continue
            v = next((x for x in self.cfg.vaults if x.id == r.vault_id), None)
            oc = read_onchain(self.cfg, v, r.asset, r.address) if v is not None else OnChain("unreadable")
            state = "removed" if r.state == "removed" and oc.state == "absent" else oc.state
            slot(r.address)["vaults"].append({"vault": r.vault_id, "asset": r.asset, "state": state,
                                              "eta": oc.eta.isoformat() if oc.eta else None})
        if venues and self.cfg.cex_accounts and by_addr:
            for addr, slot_ in by_addr.items():
                slot_["venues"] = venue_presence(self.cfg, addr, snapshots=_snapshots(self.cfg))
        with self.store.session() as s:
            for addr, slot_ in by_addr.items():
                chain = next((p["chain"] for p in slot_["policy"]), "ethereum")
                sc = self.screener.screen(s, screening_chain(self.cfg, chain), addr, now=now, actor="status")
                slot_["screening"] = sc.verdict(self.screener.advisory).value
        return list(by_addr.values())


_SNAPS: dict[int, Any] = {}


def _snapshots(cfg: PrimeguardConfig) -> Any:
    """One fresh collection per status call (cached by config identity for the call's duration)."""
    import asyncio

    from primeguard.pipeline.collect import collect

    key = id(cfg)
    if key not in _SNAPS:
        obs, _ = asyncio.run(collect(cfg))
        _SNAPS.clear()
        _SNAPS[key] = obs.snapshots
    return _SNAPS[key]


def venue_presence(cfg: PrimeguardConfig, address: str, *, snapshots: Any) -> list[dict[str, Any]]:
    """Each CEX account's address book: ``present``, ``absent`` or ``unverifiable`` (not read, or
    the venue has no listing endpoint)."""
    out = []
    for acct in cfg.cex_accounts:
        snap = next((x for x in snapshots if x.account.id == acct.id), None)
        if snap is None or not snap.ok or snap.whitelist is None or snap.whitelist.enabled is None:
            state = "unverifiable"
        else:
            hits = [e for e in snap.whitelist.entries if e.address.lower() == address.lower()]
            state = "present" if hits else "absent"
        out.append({"account": acct.id, "venue": acct.venue, "state": state})
    return out


__all__ = ["DestinationGate", "Destinations", "OnChain", "Step", "Target", "read_onchain", "targets",
           "venue_presence", "with_entry", "without_address"]
