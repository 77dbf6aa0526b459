"""Submit a withdrawal from a CEX sub-account (after policy approved it). Errors are typed by the
venue's code (each exchange module's ``CODES``): :class:`AddressNotWhitelisted`,
:class:`InsufficientFunds`, :class:`VenuePermissionDenied` (the key may not withdraw),
:class:`VenueAuthError`, :class:`VenueUnavailable`. Nothing is retried here: a withdrawal is sent
at most once per call, with the caller's ``request_id`` as the venue's client id where it has one.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

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
