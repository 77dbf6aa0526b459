"""Simulated withdrawal records: each venue keeps its own status codes and moves them on command.

A withdrawal accepted by a simulator starts in the venue's "processing" status (Binance ``4``
Processing, OKX ``"1"`` broadcasting, Bybit ``"Pending"``) and stays there until a test settles it
with :func:`settle` (or, when the scenario gives the account ``withdrawals: confirmed|failed``,
until the venue's withdrawal history is first read: :func:`history`): ``"confirmed"`` moves it to the venue's completed
status with a transaction hash, ``"failed"`` to its failure status with the venue's reason, and any
other string is written as the raw status (to simulate a status primeguard does not know).

Records are plain dicts on :attr:`SimAccount.withdrawals` (``id``, ``coin``, ``address``,
``amount``, ``network``, ``client_id``, ``status``, ``tx_id``, ``reason``, ``created_ms``,
``updated_ms``); the venue modules render them in their own answer shape.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from primeguard.sandbox.cex.state import SimAccount, VenueState, now_ms

# (initial, completed, failed) status of each venue, as the venue writes it
STATUSES: dict[str, tuple[Any, Any, Any]] = {
    "binance": (4, 6, 5),  # 4 Processing, 6 Completed, 5 Failure (3 Rejected, 1 Cancelled)
    "okx": ("1", "2", "-1"),  # 1 broadcasting, 2 withdraw success, -1 failed (-2 canceled)
    "bybit": ("Pending", "success", "Fail"),  # also SecurityCheck, Reject, CancelByUser, BlockchainConfirmed
}
FAILURE_REASON = "The address is not valid. Please confirm with the recipient"


def record(state: VenueState, acct: SimAccount, *, wid: str, coin: str, address: str, amount: str, network: str,
           client_id: str = "") -> dict[str, Any]:
    """Append a just-accepted withdrawal to ``acct`` in the venue's initial status; returns it."""
    now = state.server_ms()
    row: dict[str, Any] = {"id": wid, "coin": coin, "address": address, "amount": amount, "network": network,
                           "client_id": client_id, "status": STATUSES[state.venue][0], "tx_id": "", "reason": "",
                           "created_ms": now, "updated_ms": now}
    acct.withdrawals.append(row)
    return row


def history(state: VenueState, acct: SimAccount) -> list[dict[str, Any]]:
    """``acct``'s withdrawals, newest first, as the history endpoints list them; withdrawals still
    in the initial status settle first when the scenario says the venue completes (or fails) them."""
    initial = STATUSES[state.venue][0]
    if acct.withdrawal_outcome != "pending":
        for row in acct.withdrawals:
            if row["status"] == initial:
                settle(state, str(row["id"]), acct.withdrawal_outcome)
    return list(reversed(acct.withdrawals))


def find(state: VenueState, wid: str) -> tuple[SimAccount, dict[str, Any]]:
    """The account and record of withdrawal ``wid`` (KeyError when the venue has none)."""
    for acct in state.accounts.values():
        for row in acct.withdrawals:
            if str(row["id"]) == str(wid):
                return acct, row
    raise KeyError(f"{state.venue}: no withdrawal {wid!r}")


def settle(state: VenueState, wid: str, outcome: str, *, reason: str = FAILURE_REASON) -> dict[str, Any]:
    """Move withdrawal ``wid`` to ``outcome``: ``"confirmed"`` (the venue's completed status and a
    transaction hash), ``"failed"`` (its failure status, ``reason``, and the amount back on the
    account) or a raw venue status written as given. Takes the state's lock; returns the record."""
    initial, completed, failed = STATUSES[state.venue]
    with state.lock:
        acct, row = find(state, wid)
        if outcome == "confirmed":
            row["status"] = completed
            row["tx_id"] = "0x" + hashlib.sha256(f"{state.venue}:{wid}".encode()).hexdigest()
        elif outcome == "failed":
            row["status"] = failed
            row["reason"] = reason
            coin = row["coin"]
            acct.spot[coin] = acct.spot.get(coin, Decimal(0)) + Decimal(row["amount"])
        else:
            row["status"] = type(initial)(outcome) if isinstance(initial, int) and outcome.lstrip("-").isdigit() \
                else outcome
        row["updated_ms"] = now_ms()
        return row
