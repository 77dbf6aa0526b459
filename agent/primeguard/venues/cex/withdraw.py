"""Submit a withdrawal from a CEX sub-account (after policy approved it). Errors are typed by code:
:class:`AddressNotWhitelisted` (Binance -4035, OKX 58203/58207, Bybit 131093),
:class:`InsufficientFunds`, :class:`VenuePermissionDenied` (the key may not withdraw),
:class:`VenueAuthError`, :class:`VenueUnavailable`. Nothing is retried here: a withdrawal is sent
at most once per call, with the caller's ``request_id`` as the venue's client id where it has one.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from primeguard.config.schema import CexAccountConfig
from primeguard.domain.errors import VenueBadResponse
from primeguard.domain.money import decimal_str, parse_quantity
from primeguard.venues.cex.client import CexClientPool
from primeguard.venues.cex.collect import check_accounts
from primeguard.venues.cex.errors import translate
from primeguard.venues.cex.levers import _binance_write
from primeguard.venues.cex.normalize import _data


async def submit_withdrawal(account: CexAccountConfig, cred_id: str, *, asset: str, amount: Decimal, address: str,
                            network: str, request_id: str, pool: CexClientPool | None = None,
                            base_dir: Path | None = None) -> str:
    """Send one withdrawal; returns the venue's withdrawal id.

    Raises:
        VenueError subclasses (see module docstring); InputError for a non-positive amount.
    """
    check_accounts([account])
    qty = parse_quantity(amount, what="withdrawal amount")
    if pool is None:
        async with CexClientPool(base_dir=base_dir) as own:
            return await submit_withdrawal(account, cred_id, asset=asset, amount=qty, address=address,
                                           network=network, request_id=request_id, pool=own)
    ex = pool.exchange(account, cred_id)
    try:
        if account.venue == "binance":
            res = await _binance_write(ex, ex.sapiPostCapitalWithdrawApply({
                "coin": asset, "address": address, "amount": decimal_str(qty), "network": network,
                "withdrawOrderId": request_id}))
            wid = res.get("id") if isinstance(res, dict) else None
        elif account.venue == "okx":
            data = _data(await ex.privatePostAssetWithdrawal({
                "ccy": asset, "amt": decimal_str(qty), "dest": "4", "toAddr": address, "chain": f"{asset}-{network}",
                "clientId": request_id[:32]}), "okx")
            wid = data[0].get("wdId") if data else None
        else:
            res = _data(await ex.privatePostV5AssetWithdrawCreate({
                "coin": asset, "chain": network, "address": address, "amount": decimal_str(qty),
                "timestamp": int(time.time() * 1000), "requestId": request_id[:32], "accountType": "FUND"}), "bybit")
            wid = res.get("id")
    except Exception as exc:
        raise translate(exc, account.venue) from None
    if not wid:
        raise VenueBadResponse("withdrawal accepted without an id", venue=account.venue)
    return str(wid)
