"""What each CEX key can do, as findings, and the capability report rows.

Finding subjects are ``"{account}/{credential}"`` for key findings and the account id for account
findings, so dedupe keys never collide between accounts that reuse credential ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import LEVER_POWERS, Account, Capability, Credential, Holder
from primeguard.domain.observation import AccountSnapshot, WhitelistStatus

_WRITE = frozenset(Capability) - {Capability.READ}


def key_subject(account_id: str, cred_id: str) -> str:
    return f"{account_id}/{cred_id}"


def credential_findings(account: Account, cred: Credential, now: datetime) -> list[Finding]:
    """Findings for one inspected key. Keys that could not be inspected get the read failure's
    finding instead (their capabilities are UNKNOWN, which policies treat as "can do anything")."""
    out: list[Finding] = []
    subject = key_subject(account.id, cred.id)
    venue = account.venue.value

    def add(code: FindingCode, severity: Severity, message: str) -> None:
        out.append(Finding(code, severity, subject, message, venue=venue, client_id=account.client_id,
                           details={"credential": cred.id, "holder": cred.holder.value,
                                    "capabilities": sorted(c.value for c in cred.capabilities)}))

    unknown = " (it reports permissions primeguard does not know)" if Capability.UNKNOWN in cred.capabilities else ""
    if cred.holder == Holder.CLIENT:
        if cred.can(Capability.WITHDRAW):
            add(FindingCode.KEY_CAN_WITHDRAW, Severity.CRITICAL,
                f"client key {cred.id} on {account.address} can withdraw to outside addresses{unknown}")
        if cred.can(Capability.UNIVERSAL_TRANSFER):
            add(FindingCode.KEY_UNIVERSAL_TRANSFER, Severity.HIGH,
                f"client key {cred.id} on {account.address} can move funds to other (sub-)accounts{unknown}")
    if cred.holder in (Holder.OPERATOR, Holder.KEY_ADMIN) and cred.can(Capability.WITHDRAW):
        add(FindingCode.KEY_CAN_WITHDRAW, Severity.CRITICAL,
            f"{cred.holder.value} key {cred.id} on {account.address} can withdraw to outside addresses{unknown}: "
            "the PB's lever keys only trade, move funds between the PB's own accounts or manage keys")
    if cred.ip_restricted is False:
        writes = bool(cred.capabilities & _WRITE)
        add(FindingCode.KEY_NOT_IP_BOUND, Severity.WARNING if writes else Severity.INFO,
            f"{cred.holder.value} key {cred.id} is not bound to IP addresses")
    is_master = cred.details.get("is_master")
    if is_master is True and cred.holder not in (Holder.MASTER, Holder.KEY_ADMIN):  # key_admin lives on the master
        add(FindingCode.MASTER_KEY_IN_USE, Severity.CRITICAL if cred.holder == Holder.CLIENT else Severity.HIGH,
            f"key {cred.id}, configured as {cred.holder.value}, belongs to the master account")
    elif cred.holder == Holder.MASTER:
        risky = cred.ip_restricted is not True or cred.can(Capability.WITHDRAW)
        add(FindingCode.MASTER_KEY_IN_USE, Severity.WARNING if risky else Severity.INFO,
            f"primeguard holds master key {cred.id} (for key levers)"
            + ("; it is not IP-bound or can withdraw" if risky else ""))
    if cred.expires_at is not None and cred.expires_at <= now:
        add(FindingCode.KEY_EXPIRED, Severity.WARNING,
            f"{cred.holder.value} key {cred.id} expired at {cred.expires_at.isoformat()}")
    return out


def whitelist_findings(account: Account, wl: WhitelistStatus | None, creds: Sequence[Credential],
                       reason: str = "") -> list[Finding]:
    """WHITELIST_OFF / WHITELIST_UNVERIFIABLE, more severe when a configured key can withdraw."""
    if wl is None or wl.enabled is True:
        return []
    can_withdraw = [c.id for c in creds if c.can(Capability.WITHDRAW)]
    details: dict[str, Any] = {"keys_that_can_withdraw": can_withdraw}
    venue = account.venue.value
    if wl.enabled is False:
        return [Finding(FindingCode.WHITELIST_OFF, Severity.HIGH if can_withdraw else Severity.WARNING, account.id,
                        f"withdrawal whitelist is off on {venue} sub-account {account.address}", venue=venue,
                        client_id=account.client_id, details=details)]
    why = f" ({reason})" if reason else ""
    return [Finding(FindingCode.WHITELIST_UNVERIFIABLE, Severity.WARNING if can_withdraw else Severity.INFO,
                    account.id, f"withdrawal whitelist of {venue} sub-account {account.address} cannot be "
                    f"verified{why}", venue=venue, client_id=account.client_id, details=details)]


def capabilities_report(snapshots: Iterable[AccountSnapshot]) -> list[dict[str, Any]]:
    """One JSON-ready row per CEX credential: who holds it, what it can do, what is wrong with it.

    The rows carry no secret: only ids, holders, capability names, venue flags and finding codes.
    """
    rows: list[dict[str, Any]] = []
    for snap in snapshots:
        acct = snap.account
        if not acct.venue.is_cex:
            continue
        wl = snap.whitelist
        whitelist = "unknown" if wl is None else {True: "on", False: "off", None: "unverifiable"}[wl.enabled]
        for cred in sorted(snap.credentials, key=lambda c: c.id):
            subject = key_subject(acct.id, cred.id)
            codes = sorted({f.code.value for f in snap.findings if f.subject == subject})
            rows.append({
                "account": acct.id, "client": acct.client_id, "venue": acct.venue.value,
                "sub_account": acct.address, "credential": cred.id, "holder": cred.holder.value,
                "capabilities": sorted(c.value for c in cred.capabilities), "moves_funds": cred.moves_funds,
                "levers": list(LEVER_POWERS.get(cred.holder, ())), "ip_restricted": cred.ip_restricted,
                "expires_at": None if cred.expires_at is None else cred.expires_at.isoformat(),
                "is_master": cred.details.get("is_master"), "inspected": cred.details.get("inspected", True),
                "whitelist": whitelist, "account_ok": snap.ok, "findings": codes,
                "observed_at": snap.observed_at.isoformat(),
            })
    rows.sort(key=lambda r: (r["client"], r["account"], r["credential"]))
    return rows
