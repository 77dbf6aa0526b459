"""The on-chain sanctions oracle read: ``isSanctioned(address) -> bool`` (the interface the
public sanctions oracle contracts expose). Any failure is "could not answer", never "clear"."""

from __future__ import annotations

from typing import Any

from web3 import Web3

from primeguard.screening.core import SourceAnswer, SourceStatus

ORACLE_ABI: list[dict[str, Any]] = [{
    "type": "function", "name": "isSanctioned", "stateMutability": "view",
    "inputs": [{"name": "addr", "type": "address"}], "outputs": [{"name": "", "type": "bool"}]}]


def ask_oracle(rpc_url: str, oracle: str, address: str, *, source: str, timeout_s: float = 5) -> SourceAnswer:
    """One ``isSanctioned`` call: HIT, CLEAR, or UNAVAILABLE (with the failure's type, never a URL)."""
    try:
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
        contract = w3.eth.contract(address=Web3.to_checksum_address(oracle), abi=ORACLE_ABI)
        answer = contract.functions.isSanctioned(Web3.to_checksum_address(address)).call()
    except Exception as exc:
        return SourceAnswer(source, SourceStatus.UNAVAILABLE, f"oracle call failed ({type(exc).__name__})")
    if not isinstance(answer, bool):
        return SourceAnswer(source, SourceStatus.UNAVAILABLE, "oracle answered a non-boolean")
    return SourceAnswer(source, SourceStatus.HIT if answer else SourceStatus.CLEAR,
                        "listed by the on-chain oracle" if answer else "")


__all__ = ["ORACLE_ABI", "ask_oracle"]
