"""dYdX credentials in the shared vocabulary: v4 authenticators, unscannable authenticators and
legacy v3 STARK keys, each with its default findings. Pure: no I/O.

Holder: the node does not say who holds a permissioned key. Every authenticator is reported as
held by the client (the strictest rules apply to client keys) unless the caller says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import Account, Capability, Credential, Holder, VenueKind
from primeguard.venues.dydx.analysis import AuthenticatorAnalysis

VENUE = VenueKind.DYDX.value
AUTHENTICATOR_KIND = "dydx_authenticator"
V3_STARK_KIND = "dydx_v3_stark"


def authenticator_credential(
    account: Account, analysis: AuthenticatorAnalysis, *, holder: Holder = Holder.CLIENT,
    markets: Mapping[int, str] | None = None,
) -> tuple[Credential, tuple[Finding, ...]]:
    """One analysed authenticator → a Credential plus its findings.

    Args:
        account: the dYdX account (address) the authenticator belongs to.
        analysis: the verdict from :func:`~primeguard.venues.dydx.analysis.analyze_authenticator`.
        holder: who holds the key (default: the client).
        markets: clob pair id → ticker, to name the markets a trading key may trade.
    """
    details: dict[str, Any] = analysis.to_json()
    details["address"] = account.address
    if not analysis.unknown:
        if analysis.trade_clob_pairs is None:
            details["trade_markets"] = "all"
        else:
            names = markets or {}
            details["trade_markets"] = sorted(names.get(i, f"clob:{i}") for i in analysis.trade_clob_pairs)
    cred = Credential(
        id=f"{account.id}:authenticator:{analysis.authenticator_id}", account_id=account.id,
        venue=VenueKind.DYDX, kind=AUTHENTICATOR_KIND, holder=holder, capabilities=analysis.capabilities,
        details=MappingProxyType(details),
    )
    return cred, tuple(authenticator_findings(account, cred, analysis))


def authenticator_findings(account: Account, cred: Credential, analysis: AuthenticatorAnalysis) -> list[Finding]:
    """The findings one analysed authenticator raises (fund-moving power, unknown parts, who holds it). Pure."""
    out: list[Finding] = []
    label = f"authenticator {analysis.authenticator_id} ({analysis.type}) on {account.address}"
    base = {"authenticator_id": analysis.authenticator_id, "holder": cred.holder.value}

    def add(code: FindingCode, severity: Severity, message: str, **extra: Any) -> None:
        out.append(Finding(code, severity, cred.id, message, venue=VENUE, client_id=account.client_id,
                           details=MappingProxyType({**base, **extra})))

    if analysis.unknown:
        add(FindingCode.AUTHENTICATOR_UNKNOWN, Severity.CRITICAL,
            f"{label} cannot be analysed ({analysis.error}): treated as risky, able to do anything",
            error=analysis.error)
        return out
    if analysis.anyone_may_submit:
        unsigned = [i for i, p in enumerate(analysis.paths) if p.alive and not p.path.signed]
        add(FindingCode.DYDX_KEY_UNSIGNED_PATH, Severity.CRITICAL,
            f"{label}: anyone may submit through path(s) {unsigned}, which require no signature",
            paths=unsigned)
    if analysis.can_move_funds:
        msgs = sorted(analysis.fund_moving_messages)
        if analysis.unfiltered:
            how = "any message (a path has no MessageFilter)"
        else:
            how = ", ".join(m.rsplit(".", 1)[-1] for m in msgs) or "orders placed by anyone"
        add(FindingCode.DYDX_KEY_CAN_MOVE_FUNDS, Severity.CRITICAL, f"{label} can move funds via {how}",
            fund_moving_messages=msgs, anyone_may_trade=analysis.anyone_may_trade)
    if analysis.can_grant:
        msgs = sorted(analysis.grant_messages)
        add(FindingCode.DYDX_KEY_CAN_GRANT, Severity.CRITICAL,
            f"{label} can grant itself or others more power ({', '.join(m.rsplit('.', 1)[-1] for m in msgs)})",
            grant_messages=msgs)
    return out


def unscanned_credential(account: Account, reason: str, *, holder: Holder = Holder.CLIENT) -> tuple[
        Credential, tuple[Finding, ...]]:
    """The node could not be asked: whatever authenticators exist are unknown, hence risky."""
    details = MappingProxyType({"address": account.address, "analysable": False, "error": reason,
                                "explanation": f"authenticators could not be listed ({reason}): "
                                               "treated as able to do anything"})
    cred = Credential(id=f"{account.id}:authenticators:unscanned", account_id=account.id, venue=VenueKind.DYDX,
                      kind=AUTHENTICATOR_KIND, holder=holder, capabilities=frozenset({Capability.UNKNOWN}),
                      details=details)
    finding = Finding(FindingCode.AUTHENTICATOR_UNKNOWN, Severity.CRITICAL, cred.id,
                      f"authenticators of {account.address} could not be listed ({reason}): treated as risky",
                      venue=VENUE, client_id=account.client_id, details=MappingProxyType({"error": reason}))
    return cred, (finding,)


def v3_stark_credentials(account: Account, holders: Iterable[Holder]) -> tuple[
        tuple[Credential, ...], tuple[Finding, ...]]:
    """Legacy dYdX v3 STARK keys someone still holds: each can fast-withdraw to any L1 address."""
    creds: list[Credential] = []
    findings: list[Finding] = []
    for i, holder in enumerate(holders):
        text = ("can fast-withdraw to any L1 address (v3 POST /v3/fast-withdrawals needs only the API key "
                "and the STARK key; v3 keys have no scopes)")
        cred = Credential(
            id=f"{account.id}:v3-stark:{i}", account_id=account.id, venue=VenueKind.DYDX, kind=V3_STARK_KIND,
            holder=holder, capabilities=frozenset({Capability.FAST_WITHDRAW, Capability.TRADE_FUTURES}),
            details=MappingProxyType({"address": account.address, "explanation": text, "index": i}),
        )
        creds.append(cred)
        findings.append(Finding(
            FindingCode.DYDX_V3_FAST_WITHDRAW, Severity.CRITICAL if holder is not Holder.OPERATOR else Severity.HIGH,
            cred.id, f"a dYdX v3 STARK key held by the {holder.value} {text}", venue=VENUE,
            client_id=account.client_id, details=MappingProxyType({"holder": holder.value}),
        ))
    return tuple(creds), tuple(findings)
