"""Submit a withdrawal from a CEX sub-account (after policy approved it), and read it back. Errors are typed by the
venue's code (each exchange module's ``CODES``): :class:`AddressNotWhitelisted`,
:class:`InsufficientFunds`, :class:`VenuePermissionDenied` (the key may not withdraw),
:class:`VenueAuthError`, :class:`VenueUnavailable`. Nothing is retried here: a withdrawal is sent
at most once per call, with the caller's ``request_id`` as the venue's client id where it has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from primeguard.config.schema import CexAccountConfig
from primeguard.domain.errors import VenueBadResponse
from primeguard.domain.money import parse_quantity
from primeguard.venues.cex.client import CexClientPool
from primeguard.venues.cex.collect import check_accounts
from primeguard.venues.cex.errors import translate
from primeguard.venues.cex.registry import exchange_for


async def submit_withdrawal(account: CexAccountConfig, cred_id: str, *, asset: str, amount: Decimal, address: str,
                            network: str, request_id: str, pool: CexClientPool | None = None,
                            base_dir: Path | None = None) -> str:
    """Send one withdrawal of ``amount`` (in ``asset`` units, exact) and return the venue's
    withdrawal id. Sent at most once per call; never retried.

    Raises:
        ConfigError: a malformed account, an unknown credential or an unreadable secret.
        InputError: a non-positive or malformed amount.
        VenueError subclasses (see the module docstring); VenueBadResponse when the venue accepted
            the request without giving an id.
    """
    check_accounts([account])
    qty = parse_quantity(amount, what="withdrawal amount")
    if pool is None:
        async with CexClientPool(base_dir=base_dir) as own:
            return await submit_withdrawal(account, cred_id, asset=asset, amount=qty, address=address,
                                           network=network, request_id=request_id, pool=own)
    ex = pool.exchange(account, cred_id)
    try:
        wid = await exchange_for(account.venue).submit_withdrawal(ex, asset=asset, amount=qty, address=address,
                                                                  network=network, request_id=request_id)
    except Exception as exc:
        raise translate(exc, account.venue) from None
    if not wid:
        raise VenueBadResponse("withdrawal accepted without an id", venue=account.venue)
    return wid


@dataclass(frozen=True)
class VenueWithdrawal:
    """A withdrawal as the venue reports it now.

    ``state``: ``pending``, ``confirmed``, ``failed`` (from the exchange's ``withdrawal_states``) or
    ``unknown`` (a status primeguard does not know, or the venue does not list the withdrawal at
    all: ``status`` is then ``"absent"``). ``status`` is the venue's own code as a string;
    ``reason`` the venue's failure text, or the status label when it gives none.
    """

    id: str
    state: str
    status: str
    tx_hash: str | None = None
    reason: str = ""


def withdrawal_state(venue: str, raw: Mapping[str, Any]) -> VenueWithdrawal:
    """Map one raw venue withdrawal record (ccxt's ``info``) to a :class:`VenueWithdrawal`. Pure.
    An unknown status is ``unknown``, never a success; a confirmed record without a transaction hash
    is ``unknown`` too (nothing proves what left)."""
    exchange = exchange_for(venue)
    status = "" if raw.get(exchange.withdrawal_status_field) is None else str(raw[exchange.withdrawal_status_field])
    state, label = exchange.withdrawal_states.get(status, ("unknown", f"status {status!r} unknown to primeguard"))
    tx = next((str(raw[k]) for k in ("txId", "txID") if raw.get(k)), None)
    reason_field = exchange.withdrawal_reason_field
    reason = str(raw.get(reason_field) or "") if reason_field else ""
    if state == "confirmed" and not tx:
        state, label = "unknown", f"status {status!r} ({label}) without a transaction hash"
    wid = next((str(raw[k]) for k in ("id", "wdId", "withdrawId") if raw.get(k) not in (None, "")), "")
    return VenueWithdrawal(wid, state, status, tx, reason or label)


async def read_withdrawal(account: CexAccountConfig, cred_id: str, withdrawal_id: str, *,
                          pool: CexClientPool | None = None, base_dir: Path | None = None) -> VenueWithdrawal:
    """The venue's current record of withdrawal ``withdrawal_id`` through ccxt's ``fetch_withdrawals``
    (read with ``cred_id``, normally the monitoring key). A withdrawal the venue does not list comes
    back ``unknown`` with status ``"absent"``.

    Raises:
        ConfigError; VenueError subclasses when the venue cannot be read (classified by code).
    """
    check_accounts([account])
    if pool is None:
        async with CexClientPool(base_dir=base_dir) as own:
            return await read_withdrawal(account, cred_id, withdrawal_id, pool=own)
    ex = pool.exchange(account, cred_id)
    try:
        rows = await ex.fetch_withdrawals()
    except Exception as exc:
        raise translate(exc, account.venue) from None
    if not isinstance(rows, list):
        raise VenueBadResponse("withdrawal history is not a list", venue=account.venue)
    for t in rows:
        info = t.get("info") if isinstance(t, dict) else None
        if isinstance(info, Mapping):
            found = withdrawal_state(account.venue, info)
            if found.id == str(withdrawal_id):
                return found
    return VenueWithdrawal(str(withdrawal_id), "unknown", "absent",
                           reason="the venue does not list this withdrawal")
